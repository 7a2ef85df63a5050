"""Evaluation speed: `taxreg eval` on the embedded taxonomy with the demo model, and the scorer against a plain
PyTorch loop computing the same numbers, in the same run (issue 14's figures).

    python bench/eval.py                                  # builds the demo (taxreg build, ~3 min), then measures
    python bench/eval.py --build /tmp/b --repeat 5        # an existing build folder (trained, exported)
    python bench/eval.py --build /tmp/b --large           # also a ~190M-parameter Granite (random weights)

Figures:
- the wall time of `taxreg eval` (a child process, as a user runs it: imports, the base graph, both models, the
  bootstrap, the catalog), median of --repeat runs;
- per model: time per 1,000 scored items on onnxruntime (`builder.evaluation.scoring`: one prefill per prompt,
  every choice scored from its KV cache, greedy answers decoded from it) and with the plain PyTorch loop
  (`builder.evaluation.reference`: each choice a full forward, each greedy token a full forward), both on one
  thread, interleaved over the repeats; the ratio; and the largest difference between their log-likelihoods
  (target: under 1e-4) and how many greedy answers are identical.
The large model is bench/realistic.py's when that file exists, else bench/inference.py's LARGE config; it has
random weights (its figures are about speed, not quality), and --large-items limits its items.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch/onnxruntime load their thread pools

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def taxreg(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "builder.cli", *args], cwd=REPO, capture_output=True, text=True,
                          check=False, env={**os.environ, "SOURCE_DATE_EPOCH": "1767225600"})
    if done.returncode != 0:
        raise SystemExit(f"taxreg {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def encoded(build: Path, folder: Path, limit: int | None, max_new_tokens: int) -> tuple[list[Any], Any]:
    from builder.evaluation.evalset import build_eval_set
    from builder.evaluation.scoring import Tokenizer
    from registry.catalog.connection import open_read_only

    with open_read_only(build / "catalog.duckdb") as con:
        chosen = build_eval_set(con, build / "datasets" / "default", 0)
    tokens = Tokenizer(folder)
    items = [tokens.encode(i.messages, list(i.choices) or [i.reference], i.correct or 0, max_new_tokens)
             for i in chosen.items][:limit]
    return items, tokens


def compare(name: str, onnx: Path, torch_model: Any, build: Path, args: argparse.Namespace,
            limit: int | None) -> dict[str, Any]:
    import torch

    from builder.evaluation.reference import torch_scores
    from builder.evaluation.scoring import Scorer

    torch.set_num_threads(1)
    items, tokens = encoded(build, onnx, limit, args.max_new_tokens)
    scorer = Scorer(onnx, threads=1)
    times: dict[str, list[float]] = {"onnxruntime": [], "pytorch": []}
    results: dict[str, Any] = {}
    for round_ in range(args.repeat):
        order = ["onnxruntime", "pytorch"] if round_ % 2 == 0 else ["pytorch", "onnxruntime"]
        for runtime in order:
            started = time.perf_counter()
            if runtime == "onnxruntime":
                results[runtime] = scorer.score(items, args.max_new_tokens, tokens.eos, tokens.pad)
            else:
                results[runtime] = torch_scores(torch_model, items, args.max_new_tokens, tokens.eos)
            times[runtime].append(time.perf_counter() - started)
    ort, ref = results["onnxruntime"], results["pytorch"]
    diff = max(abs(a - b) for x, y in zip(ort, ref, strict=True) for a, b in zip(x.logprobs, y.logprobs, strict=True))
    per_k = {k: statistics.median(v) / len(items) * 1000 for k, v in times.items()}
    return {"model": name, "items": len(items), "choices": sum(len(i.continuations) for i in items),
            "onnxruntime_s_per_1000": round(per_k["onnxruntime"], 2), "pytorch_s_per_1000": round(per_k["pytorch"], 2),
            "ratio": round(per_k["pytorch"] / per_k["onnxruntime"], 2), "max_logprob_diff": diff,
            "same_answers": f"{sum(x.answer == y.answer for x, y in zip(ort, ref, strict=True))}/{len(items)}",
            "min_max_s": {k: [round(min(v), 3), round(max(v), 3)] for k, v in times.items()}}


def large_model(work: Path, demo_base: Path) -> tuple[Path, Any]:
    """A realistic-size model exported with `taxreg export --no-adapter` (its ONNX) and loaded in PyTorch."""
    from builder.model import base_model

    realistic = REPO / "bench" / "realistic.py"
    source = realistic if realistic.is_file() else REPO / "bench" / "inference.py"
    spec = importlib.util.spec_from_file_location("bench_model", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = module.build_large(work / "large", demo_base)
    taxreg("export", "--base-model", str(folder), "--no-adapter", "--out", str(work / "large-out"), "--no-catalog",
           "--prompts", "2", "--greedy-tokens", "4", "--int8-fp32-share", "0")
    return work / "large-out" / "onnx", base_model.load(folder)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, help="an existing build folder (default: build one in a temp folder)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--large", action="store_true", help="also the realistic-size model")
    parser.add_argument("--large-items", type=int, default=12)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    build = args.build or work / "build"
    if args.build is None:
        print(f"building the demo into {build} (taxreg build) ...", flush=True)
        taxreg("build", str(REPO / "taxonomy"), "--build-dir", str(build))
    walls = [taxreg("eval", "--model", str(build / "model"), "--dataset", str(build / "datasets" / "default"),
                    "--catalog", str(build / "catalog.duckdb")) for _ in range(args.repeat)]
    figures: dict[str, Any] = {"taxreg_eval_wall_s": {"median": round(statistics.median(walls), 2),
                                                      "min": round(min(walls), 2), "max": round(max(walls), 2)}}
    print(f"taxreg eval on the embedded taxonomy: median {figures['taxreg_eval_wall_s']['median']} s "
          f"(min {figures['taxreg_eval_wall_s']['min']}, max {figures['taxreg_eval_wall_s']['max']}, "
          f"{args.repeat} runs)", flush=True)
    from builder.model.export import load_merged, quiet_libraries

    with quiet_libraries():
        tuned = load_merged(build / "model" / "base", build / "model" / "adapter")[0]
        rows = [compare("demo (fine-tuned, 4M)", build / "model" / "onnx", tuned, build, args, None)]
        if args.large:
            onnx, model = large_model(work, build / "model" / "base")
            rows.append(compare("large (random weights)", onnx, model, build, args, args.large_items))
    figures["scoring"] = rows
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
