#!/usr/bin/env bash
# The GPU path in one run (issue 13), under 8 minutes on one GPU: a venv with torch and the `gpu` extra
# (onnxruntime-gpu), a tiny Qwen3 built from its config class, LoRA on CUDA (bf16 where supported), the export's
# parity gate on CUDAExecutionProvider, one served request on --device cuda, and the figures.
#
#   bash bench/gpu.sh                   # creates .venv-gpu (needs PyPI: torch's default wheel is the CUDA one)
#   VENV=/path/to/venv bash bench/gpu.sh   # an environment that already has torch (CUDA) and '.[gpu]'
#
# Never run it in the CPU environment: the gpu extra replaces onnxruntime with onnxruntime-gpu (README).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-gpu}
WORK=$(mktemp -d /tmp/bench-gpu-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0          # the CUDA build (the PyPI default on Linux x86_64)
  "$VENV/bin/pip" install -q -e '.[gpu]' pytest      # onnxruntime-gpu, never with the CPU onnxruntime
fi
PY="$VENV/bin/python"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" - <<'EOF'
import onnxruntime, torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device {torch.cuda.get_device_name(0)}, "
      f"bf16 {torch.cuda.is_bf16_supported()}; onnxruntime {onnxruntime.__version__} {onnxruntime.get_available_providers()}")
assert torch.cuda.is_available() and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
EOF

# the same checks as tests/test_gpu.py (they skip without a GPU), then the figures
"$PY" -m pytest -q tests/test_gpu.py --basetemp="$WORK/pytest" -p no:cacheprovider

WORK="$WORK" "$PY" - <<'EOF'
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, ".")
from builder.model.export import ExportOptions, export
from builder.model.train import TrainOptions, train
from builder.serve import Device
from builder.serve.engine import Engine, Sampling
from tests.releasing import build_data
from tests.tiny_models import make_base

work = Path(os.environ["WORK"]) / "figures"
dataset = build_data(work / "build") / "datasets" / "default"
base, adapter = make_base("qwen3", work / "base"), work / "adapter"
t = time.perf_counter()
outcome = train(TrainOptions(base, dataset, adapter, None, max_steps=20, batch_size=8, max_length=256, rank=8,
                             eval_steps=100, save_steps=100))
train_s = time.perf_counter() - t
t = time.perf_counter()
exported = export(ExportOptions(base, adapter, work, None, dataset, device="cuda"))
export_s = time.perf_counter() - t
engine = Engine(work / "onnx", Device.CUDA)
ids = engine.prompt_ids(engine.codec.render_chat([{"role": "user", "content": "Where do chickadees live?"}]))
engine.complete(ids, Sampling(max_tokens=4, temperature=0))  # warm-up
t = time.perf_counter()
served = engine.complete(ids, Sampling(max_tokens=64, temperature=0))
decode_s = time.perf_counter() - t
fp32 = exported.report["variants"]["fp32"]
print(json.dumps({"train_s": round(train_s, 1), "train_tokens_per_s": outcome.results["timing"].get(
    "train_tokens_per_second"), "loss": [outcome.results["train_loss_first"], outcome.results["train_loss_last"]],
    "export_s": round(export_s, 1), "parity_fp32_cuda": {k: fp32[k] for k in ("max_abs_diff", "top1_agreement",
    "greedy_identical", "passed")}, "int8_top1_cuda": exported.report["variants"]["int8"]["top1_agreement"],
    "serve_provider": engine.provider, "served_tokens": served.tokens[0],
    "served_tokens_per_s": round(served.tokens[0] / decode_s, 1)}, indent=1))
EOF
echo "bench/gpu.sh: $(( $(date +%s) - start )) s"
