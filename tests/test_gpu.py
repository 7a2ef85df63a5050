"""The GPU path: LoRA training on CUDA (bf16 where the GPU has it), the export's parity gate on onnxruntime-gpu's
CUDA provider, and serving on it. Skipped with the reason where there is no GPU or no `gpu` extra (bench/gpu.sh runs
the same on a GPU machine); the refusal without the provider is checked everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from tests.releasing import build_data
from tests.tiny_models import make_base

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is part of the project's dependencies")
CUDA_EP = "CUDAExecutionProvider" in ort.get_available_providers()


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.skipif(CUDA_EP, reason="this onnxruntime has the CUDA provider: the refusal cannot happen")
def test_export_on_cuda_without_the_provider_is_refused_before_loading(tmp_path: Path) -> None:
    base = make_base("granite", tmp_path / "base")
    result = CliRunner().invoke(app, ["export", "--base-model", str(base), "--no-adapter", "--out",
                                      str(tmp_path / "out"), "--no-catalog", "--device", "cuda"])
    assert result.exit_code == 2, result.output
    assert "--device cuda: this onnxruntime" in result.output and "has no CUDAExecutionProvider" in result.output
    assert "gpu extra" in " ".join(result.output.split()) and not (tmp_path / "out").exists()


def test_an_unknown_export_device_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "--no-adapter", "--device", "tpu", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--device 'tpu'" in result.output


@pytest.mark.skipif(not CUDA_EP, reason="no CUDAExecutionProvider: install the gpu extra in its own environment "
                                        "(README, 'Export and parity') on a machine with a GPU")
def test_train_export_and_serve_on_cuda(tmp_path: Path) -> None:
    if not _cuda():
        pytest.skip("torch sees no CUDA device (a CPU build of torch, or no GPU)")
    from builder.model.export import ExportOptions, export
    from builder.model.train import TrainOptions, train
    from builder.serve import Device
    from builder.serve.engine import Engine, Sampling

    dataset = build_data(tmp_path / "build") / "datasets" / "default"
    base, adapter = make_base("qwen3", tmp_path / "base"), tmp_path / "adapter"
    train(TrainOptions(base, dataset, adapter, None, max_steps=2, batch_size=4, max_length=256, rank=4,
                       eval_steps=100, save_steps=100))
    config = json.loads((adapter / "training_config.json").read_text(encoding="utf-8"))
    assert config["deterministic"] is False and config["results"]["global_step"] == 2
    outcome = export(ExportOptions(base, adapter, tmp_path, None, dataset, device="cuda"))
    assert outcome.report["passed"] and outcome.report["variants"]["fp32"]["greedy_identical"]
    engine = Engine(tmp_path / "onnx", Device.CUDA)
    assert engine.provider == "CUDAExecutionProvider"
    served = engine.complete(engine.prompt_ids(engine.codec.render_chat([{"role": "user", "content": "Hi"}])),
                             Sampling(max_tokens=8, temperature=0))
    assert served.tokens[0] >= 1
