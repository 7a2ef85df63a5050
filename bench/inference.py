"""Inference speed: PyTorch eager vs onnxruntime fp32 vs int8, side by side in one run (issue 4's figure).

    python bench/inference.py                          # demo model + a ~190M random-weight Granite (~3-5 min)
    python bench/inference.py --models demo --rounds 7

For each model: build it (the demo with `init_demo_model` on the embedded taxonomy; the large one from a
GraniteConfig with random weights and the demo's tokenizer), run the real `taxreg export --no-adapter` in a child
process (its wall time, peak RSS and parity figures are reported), then time each runtime on the same prompt with
threads pinned to 1: prefill of a --prompt-token prompt, then --tokens greedy tokens with the KV cache. The runtimes
are interleaved (the order rotates every round) and the figures are medians over --rounds, with CPU time beside.
Targets: int8 >= 5x eager decode tokens/s, fp32 >= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch/onnxruntime load their thread pools

REPO = Path(__file__).resolve().parents[1]
LARGE = {"hidden_size": 1024, "num_hidden_layers": 12, "num_attention_heads": 16, "num_key_value_heads": 8,
         "intermediate_size": 2816, "vocab_size": 49152, "max_position_embeddings": 4096}


def build_demo(folder: Path) -> Path:
    from builder.model.demo import DemoSpec, init_demo_model

    init_demo_model(REPO / "taxonomy", folder, DemoSpec())
    return folder


def build_large(folder: Path, demo: Path) -> Path:
    """A ~190M-parameter Granite with random weights (Granite 3.x multipliers) and the demo's tokenizer."""
    import torch
    from transformers import GraniteConfig, GraniteForCausalLM

    torch.manual_seed(0)
    config = GraniteConfig(**LARGE, tie_word_embeddings=True, embedding_multiplier=12.0, residual_multiplier=0.22,
                           attention_multiplier=1 / 64, logits_scaling=8.0, rope_theta=10000.0,
                           bos_token_id=0, eos_token_id=0, pad_token_id=0)
    GraniteForCausalLM(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (demo / name).is_file():
            shutil.copy2(demo / name, folder / name)
    return folder


def run_export(base: Path, out: Path) -> dict[str, Any]:
    """`taxreg export` in a child process: wall time, peak RSS (ru_maxrss of the child) and parity figures."""
    command = [str(Path(sys.executable).parent / "taxreg"), "export", "--base-model", str(base), "--no-adapter",
               "--out", str(out), "--catalog", str(out / "catalog.duckdb"), "--dataset", str(out / "no-dataset")]
    (out / "no-dataset").mkdir(parents=True, exist_ok=True)  # empty: the export's fixed parity prompts
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    output = proc.stdout.read() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export of {base} failed:\n{output}")
    report = json.loads((out / "parity.json").read_text())
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "parity": {v: {k: r.get(k) for k in ("max_abs_diff", "top1_agreement", "greedy_identical", "passed")}
                       for v, r in report["variants"].items()}}


class Eager:
    name = "pytorch-eager"

    def __init__(self, base: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()

    def generate(self, prompt: list[int], tokens: int) -> tuple[float, float, float, float]:
        torch = self.torch
        ids = torch.tensor([prompt])
        mask = torch.ones_like(ids)
        pos = torch.arange(len(prompt))[None]
        with torch.inference_mode():
            wall, cpu = time.perf_counter(), time.process_time()
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            prefill = (time.perf_counter() - wall, time.process_time() - cpu)
            wall, cpu = time.perf_counter(), time.process_time()
            cache, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(tokens):
                mask = torch.cat([mask, torch.ones_like(token)], dim=1)
                pos = pos[:, -1:] + 1
                out = self.model(input_ids=token, attention_mask=mask, position_ids=pos, past_key_values=cache,
                                 use_cache=True)
                cache, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        return (*prefill, time.perf_counter() - wall, time.process_time() - cpu)


class Ort:
    def __init__(self, name: str, folder: Path) -> None:
        from transformers import AutoConfig

        from builder.model.onnx_graph import CacheShape
        from builder.model.parity import OrtModel

        self.name = name
        self.model = OrtModel(folder / "model.onnx", CacheShape.of(AutoConfig.from_pretrained(folder)), threads=1)

    def generate(self, prompt: list[int], tokens: int) -> tuple[float, float, float, float]:
        import numpy as np

        ids = np.array([prompt], dtype=np.int64)
        mask = np.ones_like(ids)
        pos = np.arange(len(prompt), dtype=np.int64)[None]
        wall, cpu = time.perf_counter(), time.process_time()
        logits, past = self.model(ids, mask, pos, self.model.empty_past(1))
        prefill = (time.perf_counter() - wall, time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        token = logits[:, -1].argmax(-1)[:, None].astype(np.int64)
        for _ in range(tokens):
            mask = np.concatenate([mask, np.ones_like(token)], axis=1)
            pos = pos[:, -1:] + 1
            logits, past = self.model(token, mask, pos, past)
            token = logits[:, -1].argmax(-1)[:, None].astype(np.int64)
        return (*prefill, time.perf_counter() - wall, time.process_time() - cpu)


def streamed_mb(folder: Path) -> float:
    """MB of weights a decode step reads: every 2-D initializer except a table only gathered from (embeddings)."""
    import onnx

    graph = onnx.load(str(folder / "model.onnx")).graph
    readers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.op_type)
    return sum(len(init.raw_data) for init in graph.initializer
               if len(init.dims) == 2 and readers.get(init.name, {"Gather"}) != {"Gather"}) / 1e6


def stream_bandwidth(mb: float) -> float:
    """GB/s one thread gets multiplying a vector by an fp32 matrix of `mb` MB (numpy's BLAS): the decode ceiling."""
    import numpy as np

    matrix = np.ones((int(mb * 1e6 / 4096), 1024), dtype=np.float32)
    vector = np.ones(1024, dtype=np.float32)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        matrix @ vector
        times.append(time.perf_counter() - start)
    return matrix.nbytes / statistics.median(times[1:]) / 1e9


def parameters(base: Path) -> int:
    """Stored parameters (tied embeddings counted once, as safetensors stores them once)."""
    from safetensors import safe_open

    total = 0
    for file in base.glob("*.safetensors"):
        with safe_open(str(file), "np") as handle:
            total += sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys())  # noqa: SIM118
    return total


def bench_model(name: str, base: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    import random

    import torch

    torch.set_num_threads(1)
    export = run_export(base, out)
    runtimes: list[Any] = [Eager(base), Ort("onnxruntime-fp32", out / "onnx"),
                           Ort("onnxruntime-int8", out / "onnx-int8")]
    vocab = json.loads((out / "onnx" / "config.json").read_text())["vocab_size"]
    prompt = random.Random(0).choices(range(min(vocab, 4096)), k=args.prompt)
    for runtime in runtimes:  # warm-up: first-call allocations and graph init are not what we measure
        runtime.generate(prompt, 2)
    samples: dict[str, list[tuple[float, float, float, float]]] = {r.name: [] for r in runtimes}
    for round_ in range(args.rounds):
        shift = round_ % len(runtimes)
        for runtime in runtimes[shift:] + runtimes[:shift]:
            samples[runtime.name].append(runtime.generate(prompt, args.tokens))
    results = {}
    for runtime_name, rows in samples.items():
        prefill = statistics.median(r[0] for r in rows)
        decode = statistics.median(r[2] for r in rows)
        results[runtime_name] = {
            "prefill_ms": prefill * 1000, "prefill_cpu_ms": statistics.median(r[1] for r in rows) * 1000,
            "decode_tok_s": args.tokens / decode, "decode_cpu_ms_per_token":
                statistics.median(r[3] for r in rows) * 1000 / args.tokens,
            "decode_tok_s_min": args.tokens / max(r[2] for r in rows),
            "decode_tok_s_max": args.tokens / min(r[2] for r in rows)}
    eager = results["pytorch-eager"]
    for figures in results.values():
        figures["decode_speedup"] = figures["decode_tok_s"] / eager["decode_tok_s"]
        figures["prefill_speedup"] = eager["prefill_ms"] / figures["prefill_ms"]
    sizes = {"onnxruntime-fp32": out / "onnx", "onnxruntime-int8": out / "onnx-int8", "pytorch-eager": base}
    count = parameters(base)
    for runtime_name, folder in sizes.items():
        figures = results[runtime_name]
        figures["size_mb"] = sum(p.stat().st_size for p in folder.iterdir()
                                 if p.suffix in (".onnx", ".data", ".safetensors")) / 1e6
        # eager reads every fp32 weight per step (tied embeddings: the head reads the table once)
        figures["streamed_mb"] = count * 4 / 1e6 if folder == base else streamed_mb(folder)
        figures["weights_gb_s"] = figures["streamed_mb"] * figures["decode_tok_s"] / 1000
    bandwidth = stream_bandwidth(results["pytorch-eager"]["streamed_mb"])
    return {"model": name, "parameters": count, "export": export, "runtimes": results, "stream_gb_s": bandwidth}


def show(report: dict[str, Any], args: argparse.Namespace) -> None:
    export = report["export"]
    print(f"\n## {report['model']}: {report['parameters'] / 1e6:.1f}M parameters, prompt {args.prompt} tokens, "
          f"{args.tokens} greedy tokens, 1 thread, medians of {args.rounds} interleaved rounds")
    print(f"export: {export['wall_s']:.1f} s wall, {export['cpu_s']:.1f} s CPU, "
          f"peak RSS {export['peak_rss_mb']:.0f} MB;"
          " parity " + ", ".join(f"{v} max|diff| {p['max_abs_diff']:.2g} top-1 {p['top1_agreement']:.1%}"
                                 for v, p in export["parity"].items()))
    print("| runtime | prefill ms (CPU) | decode tok/s [min-max] | CPU ms/token | vs eager decode | "
          "vs eager prefill | size MB | weights MB/token | weights GB/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in report["runtimes"].items():
        print(f"| {name} | {r['prefill_ms']:.1f} ({r['prefill_cpu_ms']:.1f}) | {r['decode_tok_s']:.1f} "
              f"[{r['decode_tok_s_min']:.1f}-{r['decode_tok_s_max']:.1f}] | {r['decode_cpu_ms_per_token']:.2f} | "
              f"{r['decode_speedup']:.2f}x | {r['prefill_speedup']:.2f}x | {r['size_mb']:.1f} | "
              f"{r['streamed_mb']:.1f} | {r['weights_gb_s']:.1f} |")
    print(f"one thread streams {report['stream_gb_s']:.1f} GB/s through a matrix the size of the fp32 weights "
          "(numpy matrix-vector): the decode ceiling when weights do not fit in cache")
    int8, fp32 = report["runtimes"]["onnxruntime-int8"], report["runtimes"]["onnxruntime-fp32"]
    print(f"targets: int8 >= 5x eager: {int8['decode_speedup']:.2f}x "
          f"({'met' if int8['decode_speedup'] >= 5 else 'NOT met'}); fp32 >= 1.5x: {fp32['decode_speedup']:.2f}x "
          f"({'met' if fp32['decode_speedup'] >= 1.5 else 'NOT met'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,large", help="comma-separated: demo, large")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--prompt", type=int, default=30)
    parser.add_argument("--out", type=Path, help="working folder, kept (default: a temp folder, removed)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-inference-"))
    wanted = args.models.split(",")
    reports = []
    try:
        demo = build_demo(work / "demo" / "base")
        if "demo" in wanted:
            reports.append(bench_model("demo (taxreg model init)", demo, work / "demo", args))
            show(reports[-1], args)
        if "large" in wanted:
            large = build_large(work / "large" / "base", demo)
            reports.append(bench_model("random-weight Granite", large, work / "large", args))
            show(reports[-1], args)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
