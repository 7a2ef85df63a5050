"""Mixed int8 (builder/model/mixed_int8.py): when all-int8 misses 95% top-1, the matmuls that cause it stay fp32.

The model is a real tiny demo Granite with a planted "massive activation": two MLP channels of layer 0 are scaled
up by 1000 on the way in (up_proj rows) and down on the way out (down_proj columns), and that layer's MLP is made
to dominate the residual stream. In fp32 the planted model computes what it did; in per-tensor int8 the two
channels swallow every other one, as in trained models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app

pytest.importorskip("onnxruntime", reason="onnxruntime is part of the project's dependencies: pip install -e '.[dev]'")

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "128",
        "--vocab", "512", "--context", "256"]
DOWN, UP = "model.layers.0.mlp.down_proj", "model.layers.0.mlp.up_proj"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("mixed")
    base = root / "base"
    result = invoke("model", "init", "--out", str(base), "--taxonomy", str(REPO / "taxonomy"), "--no-catalog", *TINY)
    assert result.exit_code == 0, result.output
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    mlp = model.model.layers[0].mlp
    with torch.no_grad():
        mlp.up_proj.weight[:2] *= 1000
        mlp.down_proj.weight[:, :2] /= 1000
        mlp.down_proj.weight *= 1e5
    model.save_pretrained(base)
    dataset = root / "dataset"
    dataset.mkdir()
    for split, topics in {"train": ("rivers", "bees", "tides", "maps"), "test": ("clouds", "ferns", "owls")}.items():
        rows = [{"messages": [{"role": "user", "content": f"Tell me one fact about {topic}."},
                              {"role": "assistant", "content": f"A fact about {topic}."}]} for topic in topics]
        (dataset / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"root": root, "base": base, "dataset": dataset}


def export(paths: dict[str, Path], out: str, share: str) -> dict[str, Any]:
    folder = paths["root"] / out
    result = invoke("export", "--base-model", str(paths["base"]), "--no-adapter", "--out", str(folder),
                    "--catalog", str(paths["root"] / "catalog.duckdb"), "--dataset", str(paths["dataset"]),
                    "--int8-fp32-share", share)
    assert result.exit_code == 0, result.output
    report = json.loads((folder / "parity.json").read_text())
    assert report["variants"]["fp32"]["passed"]  # the planted model is still exported exactly
    return {"output": result.output, "int8": report["variants"]["int8"], "folder": folder}


def op_counts(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def test_all_int8_misses_the_target_and_the_planted_matmuls_stay_fp32(planted: dict[str, Path]) -> None:
    plain = export(planted, "all-int8", "0")
    assert plain["int8"]["fp32_matmuls"] == [] and plain["int8"]["calibration"] is None
    assert plain["int8"]["top1_agreement"] < 0.5 and not plain["int8"]["passed"]

    mixed = export(planted, "mixed", "0.2")
    int8 = mixed["int8"]
    assert int8["fp32_matmuls"] == [DOWN, UP]  # ranked: the swallowed input first, then the outlier weights
    assert int8["top1_agreement"] >= 0.95 and int8["passed"] and int8["greedy_identical"]
    assert int8["calibration"] == "dataset:dataset/train.jsonl"  # chosen on train, measured on test
    assert f"kept in fp32: {DOWN}, {UP}" in mixed["output"]
    config = json.loads((mixed["folder"] / "onnx-int8" / "config.json").read_text())
    assert config["taxreg_onnx"]["quantization"] == f"int8 (onnxruntime quantize_dynamic; kept in fp32: {DOWN}, {UP})"
    plain_ops, mixed_ops = (op_counts(r["folder"] / "onnx-int8" / "model.onnx") for r in (plain, mixed))
    quantized = ("MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")
    assert sum(mixed_ops.get(op, 0) for op in quantized) == sum(plain_ops.get(op, 0) for op in quantized) - 2
    assert mixed_ops.get("MatMul", 0) == plain_ops.get("MatMul", 0) + 2


def test_the_model_card_names_what_stays_fp32(planted: dict[str, Path]) -> None:
    from builder.release.cards import _mixed_int8

    folder = planted["root"] / "mixed"
    if not (folder / "parity.json").is_file():
        export(planted, "mixed", "0.2")
    lines = _mixed_int8(json.loads((folder / "parity.json").read_text()))
    assert f"(`{DOWN}`, `{UP}`)" in lines[0] and "under 95%" in lines[0]
    assert _mixed_int8(json.loads((planted["root"] / "all-int8" / "parity.json").read_text())) == []


def test_the_weight_budget_bounds_what_stays_fp32(planted: dict[str, Path]) -> None:
    # 10% of this model's matmul weights holds one of the two 8192-weight matrices: the best single one is kept
    int8 = export(planted, "budget", "0.1")["int8"]
    assert int8["fp32_matmuls"] == [DOWN]


def test_every_linear_maps_to_its_matmul_and_the_ranking_is_deterministic(planted: dict[str, Path]) -> None:
    import torch

    from builder.model import mixed_int8, onnx_graph, parity
    from builder.model.export import load_merged

    model, tokenizer = load_merged(planted["base"], None)
    folder = planted["root"] / "all-int8"
    if not (folder / "onnx" / "model.onnx").is_file():
        export(planted, "all-int8", "0")
    nodes = mixed_int8.matmul_nodes(model, onnx_graph.untied(folder / "onnx" / "model.onnx").graph)
    linears = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert sorted(nodes) == sorted(linears) and len(set(nodes.values())) == len(linears) == 15
    assert "lm_head" in nodes  # the tied head, through its untied copy

    prompts = parity.load_eval_set(planted["dataset"], tokenizer, 4, split="train")
    batch = parity.left_pad(prompts.prompts, int(tokenizer.pad_token_id))
    first, second = mixed_int8.rank_linears(model, batch), mixed_int8.rank_linears(model, batch)
    assert first == second and [s.module for s in first[:2]] == [DOWN, UP]
    assert first[0].logit_mse > 100 * first[2].logit_mse
