"""A release of a model of realistic size on this CPU: SmolLM2-360M's shape, random weights, the whole
`taxreg build --release` with a few training steps (issue 13's figures).

    python bench/realistic.py                      # ~20-40 min on 2 busy cores; needs ~8 GB of memory
    python bench/realistic.py --steps 2 --rounds 3 --out /tmp/realistic --json /tmp/realistic.json

1. A LlamaConfig of SmolLM2-360M's shape (hidden 960, 32 layers, 15 heads, 5 KV heads, MLP 2560, vocabulary 49152,
   tied embeddings, rope_theta 100000, context 8192) with random weights, and the demo's byte-level BPE trained on
   the embedded taxonomy (as many tokens as its text gives; the embedding keeps 49152 rows, as a padded vocabulary
   does), saved as a local folder with a chat template and a license in its README.
2. A scratch folder with a taxreg.toml naming it (`[model] base`, a few `[train] steps`, `[export] variants` fp32,
   int8 and int4) and `taxreg build --release 1.0.0` run there as a child process: its wall time and peak RSS from
   `os.wait4`, and each stage's wall time and peak RSS from the build's catalog row (the pipeline resets the
   process's peak, VmHWM, before every stage: builder/peak_memory.py).
3. The ONNX folders' sizes, and decode speed of each variant (one thread, a --prompt-token prompt then --tokens
   greedy tokens with the KV cache, interleaved over --rounds, medians) beside the bytes of weights a decode step
   reads and this machine's one-thread read bandwidth measured in the same run (bench/inference.py's numpy
   matrix-vector over a matrix the size of the fp32 weights): roofline share = tok/s x bytes/token / bandwidth.

Targets (issue 13): int8 decode >= 80% of the roofline; int4 faster than int8; export peak RSS <= 3x the fp32
weights; no stage holds more than one extra copy of the weights (peak - the build's start <= 2x the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch/onnxruntime load their thread pools
sys.path.insert(0, str(Path(__file__).resolve().parent))

import inference  # bench/inference.py: its runtimes and bandwidth probe

REPO = Path(__file__).resolve().parents[1]
SHAPE = {"hidden_size": 960, "num_hidden_layers": 32, "num_attention_heads": 15, "num_key_value_heads": 5,
         "intermediate_size": 2560, "vocab_size": 49152, "max_position_embeddings": 8192, "tie_word_embeddings": True}
VARIANTS = {"fp32": "onnx", "int8": "onnx-int8", "int4": "onnx-int4"}
EMBEDDING_STD = 0.25  # builder/model/demo.py's: logits with a margin, so agreement figures mean something


def build_base(folder: Path) -> int:
    """SmolLM2-360M's shape with random weights, and the demo tokenizer; returns the stored parameters."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from builder.model.demo import DemoSpec, build_tokenizer, taxonomy_corpus
    from registry.config import ValidationConfig

    texts = taxonomy_corpus(REPO / "taxonomy", ValidationConfig()).texts
    tokenizer = build_tokenizer(texts, DemoSpec(vocab=SHAPE["vocab_size"], context=SHAPE["max_position_embeddings"]))
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SHAPE, rope_theta=100000.0, **ids))
    with torch.no_grad():  # as the demo model: at std 0.02 the tied logits are all but flat, and top-1 is noise
        model.get_input_embeddings().weight.normal_(0.0, EMBEDDING_STD)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n\n# SmolLM2-360M-shaped, random weights\n",
                                      encoding="utf-8")
    return inference.parameters(folder)


def run_build(work: Path, base: Path, steps: int) -> dict[str, Any]:
    (work / "taxreg.toml").write_text(
        f'[model]\nbase = "{base}"\n\n[train]\nsteps = {steps}\nbatch_size = 1\nmax_length = 128\n\n'
        '[export]\nvariants = ["fp32", "int8", "int4"]\n', encoding="utf-8")
    command = [str(Path(sys.executable).parent / "taxreg"), "build", str(REPO / "taxonomy"), "--build-dir",
               str(work / "build"), "--release", "1.0.0"]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": str(os.cpu_count() or 1)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    output = proc.stdout.read() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"taxreg build failed:\n{output}")
    import duckdb

    con = duckdb.connect(str(work / "build" / "catalog.duckdb"), read_only=True)
    try:
        stats = json.loads(con.execute("SELECT stats FROM build ORDER BY started_at DESC LIMIT 1").fetchall()[0][0])
    finally:
        con.close()
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "stages": stats, "output": output}


def weights_read_mb(folder: Path) -> float:
    """MB of initializers a decode step reads: every one some node other than a Gather reads (the embedding table
    is only gathered from: one row per token), external data included; works for int4's 3-D MatMulNBits blobs."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(folder / "model.onnx")).graph
    readers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.op_type)
    return sum(numpy_helper.to_array(init).nbytes for init in graph.initializer
               if readers.get(init.name, {"Gather"}) != {"Gather"}) / 1e6


def decode_speed(model_dir: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    import random

    runtimes = [inference.Ort(v, model_dir / folder) for v, folder in VARIANTS.items()
                if (model_dir / folder).is_dir()]
    prompt = random.Random(0).choices(range(4, 4000), k=args.prompt)
    for runtime in runtimes:
        runtime.generate(prompt, 2)
    samples: dict[str, list[float]] = {r.name: [] for r in runtimes}
    for round_ in range(args.rounds):
        shift = round_ % len(runtimes)
        for runtime in runtimes[shift:] + runtimes[:shift]:
            samples[runtime.name].append(runtime.generate(prompt, args.tokens)[2])
    return {name: {"decode_tok_s": args.tokens / statistics.median(rows), "decode_tok_s_min": args.tokens / max(rows),
                   "decode_tok_s_max": args.tokens / min(rows)} for name, rows in samples.items()}


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".onnx", ".data")) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--prompt", type=int, default=30)
    parser.add_argument("--out", type=Path, help="working folder, kept (default: a temp folder, removed)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-realistic-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        load = os.getloadavg()
        base = work / "SmolLM2-360M-shape"
        parameters = build_base(base)
        fp32_mb = parameters * 4 / 1e6
        build = run_build(work, base, args.steps)
        model_dir = work / "build" / "model"
        sizes = {v: folder_mb(model_dir / f) for v, f in VARIANTS.items() if (model_dir / f).is_dir()}
        read = {v: weights_read_mb(model_dir / f) for v, f in VARIANTS.items() if (model_dir / f).is_dir()}
        speed = decode_speed(model_dir, args)
        bandwidth = inference.stream_bandwidth(fp32_mb)
        report = {"parameters": parameters, "fp32_weights_mb": fp32_mb, "load_before": load, "build": build,
                  "onnx_mb": sizes, "weights_read_mb": read, "decode": speed, "stream_gb_s": bandwidth,
                  "load_after": os.getloadavg()}
        for variant, figures in speed.items():
            figures["roofline"] = figures["decode_tok_s"] * read[variant] / 1000 / bandwidth
        show(report)
        if args.json:
            args.json.write_text(json.dumps({k: v for k, v in report.items()}, indent=2, default=str))
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def show(report: dict[str, Any]) -> None:
    weights, build = report["fp32_weights_mb"], report["build"]
    print(f"\n## SmolLM2-360M shape: {report['parameters'] / 1e6:.1f}M parameters, fp32 weights {weights:.0f} MB; "
          f"load {report['load_before'][0]:.2f} before, {report['load_after'][0]:.2f} after")
    print(f"taxreg build --release: {build['wall_s']:.0f} s wall, {build['cpu_s']:.0f} s CPU, peak RSS "
          f"{build['peak_rss_mb']:.0f} MB ({build['peak_rss_mb'] / weights:.2f}x the fp32 weights)")
    print("| stage | status | seconds | peak RSS MB | x fp32 weights |\n|---|---|---|---|---|")
    for name, stage in build["stages"].items():
        peak = stage.get("peak_rss_mb")
        print(f"| {name} | {stage['status']} | {stage['seconds']:.1f} | {peak if peak is not None else '?'} | "
              f"{peak / weights:.2f} |" if peak is not None else f"| {name} | {stage['status']} | "
              f"{stage['seconds']:.1f} | ? | ? |")
    print("| variant | ONNX MB | weights read MB/token | decode tok/s [min-max] | GB/s | roofline |\n"
          "|---|---|---|---|---|---|")
    for variant, figures in report["decode"].items():
        read = report["weights_read_mb"][variant]
        print(f"| {variant} | {report['onnx_mb'][variant]:.0f} | {read:.0f} | {figures['decode_tok_s']:.2f} "
              f"[{figures['decode_tok_s_min']:.2f}-{figures['decode_tok_s_max']:.2f}] | "
              f"{figures['decode_tok_s'] * read / 1000:.2f} | {figures['roofline']:.0%} |")
    print(f"one thread reads {report['stream_gb_s']:.1f} GB/s (numpy matrix-vector over {weights:.0f} MB)")
    export = build["stages"].get("export", {}).get("peak_rss_mb")
    decode = report["decode"]
    print("targets: int8 >= 80% roofline: " + (f"{decode['int8']['roofline']:.0%}" if "int8" in decode else "n/a")
          + "; int4 faster than int8: "
          + (f"{decode['int4']['decode_tok_s']:.2f} vs {decode['int8']['decode_tok_s']:.2f} tok/s"
             if {"int4", "int8"} <= set(decode) else "n/a")
          + "; export peak RSS <= 3x fp32: " + (f"{export / weights:.2f}x" if export else "n/a"))


if __name__ == "__main__":
    sys.exit(main())
