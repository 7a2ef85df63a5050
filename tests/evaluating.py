"""Helpers of the evaluation tests: a trained model merged into a new base and trained again, and a dataset in which
one contribution's answers are shuffled (what makes it regress on purpose)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from builder.cli import app
from registry.catalog.query import run_query


def ok(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return str(result.output)


def train(base: Path, dataset: Path, out: Path, catalog: Path, steps: int, lr: float = 3e-2) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    ok("train", "--base-model", str(base), "--dataset", str(dataset), "--out", str(out), "--catalog", str(catalog),
       "--max-steps", str(steps), "--batch-size", "8", "--max-length", "192", "--rank", "8", "--alpha", "16",
       "--lr", str(lr),
       "--eval-steps", "1000", "--save-steps", "1000", "--threads", "1", "--no-resume")
    return out


def export(model: Path, catalog: Path, dataset: Path) -> None:
    ok("export", "--base-model", str(model / "base"), "--adapter", str(model / "adapter"), "--out", str(model),
       "--catalog", str(catalog), "--dataset", str(dataset), "--prompts", "2", "--greedy-tokens", "4",
       "--int8-fp32-share", "0")


def merge(base: Path, adapter: Path, out: Path) -> Path:
    """base + adapter merged and saved as a model folder of its own (safetensors, tokenizer, the demo mark)."""
    from builder.model.export import load_merged, quiet_libraries

    with quiet_libraries():
        model, tokenizer = load_merged(base, adapter)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    source = json.loads((base / "config.json").read_text(encoding="utf-8"))
    config.update({k: v for k, v in source.items() if k.startswith("taxreg_")})
    (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return out


def samples_of(catalog: Path, contribution_id: str) -> set[str]:
    return {str(r[0]) for r in run_query(catalog, "SELECT DISTINCT sample_id FROM sample_lineage "
                                                  f"WHERE contribution_id = '{contribution_id}'").rows}


def shuffled_dataset(dataset: Path, out: Path, ids: set[str], donors: set[str], copies: int = 16) -> Path:
    """The dataset with the answers of the samples `ids` replaced by a shuffled copy of the answers of the samples
    `donors` (each such row `copies` times): a model trained on it learns that the contribution's questions are
    answered with another leaf's words, and unlearns its own. The rows keep their ids (the evaluation set is still
    drawn around them)."""
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = [json.loads(line) for line in
                                  (dataset / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    others = [r["messages"][-1]["content"] for r in rows if r["id"] in donors]
    random.Random(0).shuffle(others)
    written, k = [], 0
    for row in rows:
        if row["id"] not in ids:
            written.append(row)
            continue
        for _ in range(copies):
            messages = [dict(m) for m in row["messages"]]
            messages[-1]["content"] = others[k % len(others)]
            k += 1
            written.append({**row, "messages": messages})
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in written), encoding="utf-8")
    shutil.copyfile(dataset / "test.jsonl", out / "test.jsonl")
    return out
