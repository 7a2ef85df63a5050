"""Mixed int8 (builder/model/mixed_int8.py): when all-int8 misses 95% top-1, the matmuls that cause it stay fp32.

The model is a real tiny demo Granite with a planted "massive activation": two MLP channels of layer 0 are scaled
up by 1000 on the way in (up_proj rows) and down on the way out (down_proj columns), and that layer's MLP is made
to dominate the residual stream. In fp32 the planted model computes what it did; in per-tensor int8 the two
channels swallow every other one, as in trained models.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.model import mixed_int8
from builder.model.mixed_int8 import Sensitivity

pytestmark = pytest.mark.slow  # real models or whole builds: left out of `pytest -m "not slow"`

pytest.importorskip("onnxruntime", reason="onnxruntime is part of the project's dependencies: pip install -e '.[dev]'")

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "128",
        "--vocab", "512", "--context", "256"]
DOWN, UP = "model.layers.0.mlp.down_proj", "model.layers.0.mlp.up_proj"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def write_split(folder: Path, split: str, topics: tuple[str, ...]) -> None:
    rows = [{"messages": [{"role": "user", "content": f"Tell me one fact about {topic}."},
                          {"role": "assistant", "content": f"A fact about {topic}."}]} for topic in topics]
    folder.mkdir(exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The planted model exported five ways: all-int8, mixed twice, within a 10% budget, and without a train split."""
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
    write_split(root / "dataset", "train", ("rivers", "bees", "tides", "maps"))
    write_split(root / "dataset", "test", ("clouds", "ferns", "owls"))
    write_split(root / "test-only", "test", ("clouds", "ferns", "owls"))
    runs = {"all-int8": ("dataset", "0"), "mixed": ("dataset", "0.2"), "again": ("dataset", "0.2"),
            "budget": ("dataset", "0.1"), "no-train": ("test-only", "0.2")}
    exports: dict[str, Any] = {"root": root, "base": base, "dataset": root / "dataset"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        for name, (dataset, share) in runs.items():
            folder = root / name
            result = invoke("export", "--base-model", str(base), "--no-adapter", "--out", str(folder),
                            "--catalog", str(root / "catalog.duckdb"), "--dataset", str(root / dataset),
                            "--int8-fp32-share", share)
            assert result.exit_code == 0, result.output
            report = json.loads((folder / "parity.json").read_text())
            assert report["variants"]["fp32"]["passed"]  # the planted model is still exported exactly
            exports[name] = {"output": result.output, "int8": report["variants"]["int8"], "folder": folder}
    return exports


def op_counts(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def test_all_int8_misses_the_target_and_the_planted_matmuls_stay_fp32(planted: dict[str, Any]) -> None:
    plain, mixed = planted["all-int8"], planted["mixed"]
    assert plain["int8"]["fp32_matmuls"] == [] and plain["int8"]["calibration"] is None
    assert plain["int8"]["top1_agreement"] < 0.5 and not plain["int8"]["passed"]
    int8 = mixed["int8"]
    assert int8["fp32_matmuls"] == [DOWN, UP]  # ranked: the swallowed input first, then the outlier weights
    assert int8["top1_agreement"] >= 0.95 and int8["passed"] and int8["greedy_identical"]
    assert int8["all_int8_top1_agreement"] == plain["int8"]["top1_agreement"]
    assert int8["fp32_weight_share"] == round(2 * 8192 / (2 * 36864 + 512 * 64), 4)  # of the graph's matmuls
    assert int8["calibration"] == "dataset:dataset/train.jsonl"  # ranked on train, measured on test
    assert f"int8 with {DOWN}, {UP} in fp32" in mixed["output"] and f"kept in fp32: {DOWN}, {UP}" in mixed["output"]
    config = json.loads((mixed["folder"] / "onnx-int8" / "config.json").read_text())
    assert config["taxreg_onnx"]["quantization"] == f"int8 (onnxruntime quantize_dynamic; kept in fp32: {DOWN}, {UP})"
    plain_ops, mixed_ops = (op_counts(r["folder"] / "onnx-int8" / "model.onnx") for r in (plain, mixed))
    quantized = ("MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")
    assert sum(mixed_ops.get(op, 0) for op in quantized) == sum(plain_ops.get(op, 0) for op in quantized) - 2
    assert mixed_ops.get("MatMul", 0) == plain_ops.get("MatMul", 0) + 2


def test_two_mixed_exports_write_the_same_bytes(planted: dict[str, Any]) -> None:
    def digests(folder: Path) -> dict[str, str]:
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".duckdb"}

    first, second = digests(planted["mixed"]["folder"]), digests(planted["again"]["folder"])
    assert first == second and "onnx-int8/model.onnx" in first and "parity.json" in first


def test_the_budget_bounds_what_stays_fp32_and_the_best_graph_ships(planted: dict[str, Any]) -> None:
    # 10% of the matmul weights holds one of the two 8192-weight matrices: up_proj does not fit, so the search
    # ends with the down_proj graph, which is better than all-int8 though under the target
    int8, plain = planted["budget"]["int8"], planted["all-int8"]["int8"]
    assert int8["fp32_matmuls"] == [DOWN] and int8["top1_agreement"] > plain["top1_agreement"]
    ops = op_counts(planted["budget"]["folder"] / "onnx-int8" / "model.onnx")
    assert ops.get("MatMul", 0) == op_counts(planted["all-int8"]["folder"] / "onnx-int8" / "model.onnx").get(
        "MatMul", 0) + 1


def test_without_a_train_split_calibration_uses_its_own_prompts(planted: dict[str, Any]) -> None:
    int8 = planted["no-train"]["int8"]
    assert int8["calibration"] == "calibration prompts (builder/model/mixed_int8)"
    assert int8["fp32_matmuls"][0] == DOWN


def test_the_model_card_names_what_stays_fp32(planted: dict[str, Any]) -> None:
    from builder.release.cards import mixed_int8_note

    mixed = json.loads((planted["mixed"]["folder"] / "parity.json").read_text())
    [line, _] = mixed_int8_note(mixed)
    assert f"(`{DOWN}`, `{UP}`" in line and "all-int8 top-1 agreement was" in line and "95%" in line
    assert mixed_int8_note(json.loads((planted["all-int8"]["folder"] / "parity.json").read_text())) == []


def test_every_linear_maps_to_its_matmul_and_the_ranking_is_deterministic(planted: dict[str, Any]) -> None:
    import torch

    from builder.model import onnx_graph, parity
    from builder.model.export import load_merged

    model, tokenizer = load_merged(planted["base"], None)
    graph = onnx_graph.untied(planted["all-int8"]["folder"] / "onnx" / "model.onnx").graph
    nodes = mixed_int8.matmul_nodes(model, graph)
    linears = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert sorted(nodes) == sorted(linears) and len(set(nodes.values())) == len(linears) == 15
    assert "lm_head" in nodes  # the tied head, through its untied copy

    prompts = parity.load_eval_set(planted["dataset"], tokenizer, 4, split="train")
    batch = parity.left_pad(prompts.prompts, int(tokenizer.pad_token_id))
    first, second = mixed_int8.rank_linears(model, batch), mixed_int8.rank_linears(model, batch)
    assert first == second and [s.module for s in first[:2]] == [DOWN, UP]
    assert first[0].logit_mse > 100 * first[2].logit_mse


def test_linears_with_equal_weights_pair_with_their_own_matmuls(planted: dict[str, Any]) -> None:
    import torch

    from builder.model import onnx_graph
    from builder.model.export import load_merged

    model, _ = load_merged(planted["base"], None)
    graph = onnx_graph.untied(planted["all-int8"]["folder"] / "onnx" / "model.onnx").graph
    before = mixed_int8.matmul_nodes(model, graph)
    layers = model.model.layers
    with torch.no_grad():  # the model side only: both k_proj now look alike, the graph still tells them apart
        layers[1].self_attn.k_proj.weight.copy_(layers[0].self_attn.k_proj.weight)
    after = mixed_int8.matmul_nodes(model, graph)
    assert after["model.layers.0.self_attn.k_proj"] == before["model.layers.0.self_attn.k_proj"]
    assert "model.layers.1.self_attn.k_proj" not in after  # its weights are in no MatMul: left out, not guessed


def sens(module: str, weights: int, mse: float) -> Sensitivity:
    return Sensitivity(module, weights, mse)


def test_candidates_follow_the_rank_within_the_budget() -> None:
    ranked = [sens("a", 50, 9.0), sens("b", 5, 4.0), sens("c", 20, 2.0), sens("d", 25, 0.05), sens("e", 0, 0.0)]
    nodes = {name: f"node_{name}" for name in "abcde"}
    # budget 30% of 100 weights: a (50) does not fit and is skipped, b and c do; d scores under 1/100 of a
    assert [s.module for s in mixed_int8.candidates(ranked, nodes, 0.3)] == ["b", "c"]
    assert [s.module for s in mixed_int8.candidates(ranked, nodes, 1.0)] == ["a", "b", "c"]
    assert [s.module for s in mixed_int8.candidates(ranked, {"c": "n"}, 1.0)] == ["c"]  # only what the graph holds
    many = [sens(f"m{i}", 1, 10.0 - i / 10) for i in range(20)]
    assert len(mixed_int8.candidates(many, {s.module: "n" for s in many}, 1.0)) == mixed_int8.LIMIT
    assert mixed_int8.candidates([], {}, 0.5) == []


def test_the_search_ships_the_best_graph_not_the_last() -> None:
    chosen = [sens(m, 1, 1.0) for m in ("a", "b", "c")]
    scores = {(): 0.80, ("a",): 0.90, ("a", "b"): 0.86, ("a", "b", "c"): 0.88}
    built: list[tuple[str, ...]] = []

    def measure(kept: tuple[str, ...]) -> dict[str, Any]:
        built.append(kept)
        return {"top1_agreement": scores[kept]}

    kept, figures = mixed_int8.search(chosen, measure, 0.95, {"top1_agreement": scores[()]})
    assert kept == ["a"] and figures["top1_agreement"] == 0.90
    assert built == [("a",), ("a", "b"), ("a", "b", "c"), ("a",)]  # the best one is rebuilt last: it ships
    built.clear()
    scores[("a", "b")] = 0.97
    assert mixed_int8.search(chosen, measure, 0.95, {"top1_agreement": 0.80})[0] == ["a", "b"]
    assert built == [("a",), ("a", "b")]  # stops at the target, and the graph in place is that one
    built.clear()
    assert mixed_int8.search([], measure, 0.95, {"top1_agreement": 0.80}) == ([], {"top1_agreement": 0.80})
    assert built == []


def test_the_fake_rounding_is_what_onnxruntime_computes(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 32)).astype(np.float32)
    x[:, :2] *= 300  # outlier channels: what int8 gets wrong, and what the ranking must see
    weight = rng.normal(size=(32, 16)).astype(np.float32)  # ONNX MatMul B: [in, out]
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 16])],
                              [numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "f.onnx"))
    quantize_dynamic(tmp_path / "f.onnx", tmp_path / "q.onnx", weight_type=QuantType.QInt8)
    real = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    linear = torch.nn.Linear(32, 16, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight.T))
        fake = mixed_int8._int8_linear(linear, torch.from_numpy(x)).numpy()
    int8_error = np.abs(real - x @ weight).max()
    assert int8_error > 1.0 and np.abs(real - fake).max() < int8_error / 1000


def test_a_big_model_keeps_one_copy_of_its_weights_across_trials(planted: dict[str, Any], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.model import onnx_graph

    monkeypatch.setattr(onnx_graph, "_too_big", lambda model, limit: True)  # external data, as above 1.9 GB
    fp32, out = planted["all-int8"]["folder"] / "onnx" / "model.onnx", tmp_path / "int8"
    onnx_graph.quantize_int8(fp32, out, tmp_path / "scratch")
    size = (out / "model.onnx.data").stat().st_size
    onnx_graph.quantize_int8(fp32, out, tmp_path / "scratch", ("node_linear_6",))
    assert (out / "model.onnx.data").stat().st_size > size  # one fp32 matrix more, not a second copy of all
    onnx_graph.quantize_int8(fp32, out, tmp_path / "scratch")
    assert (out / "model.onnx.data").stat().st_size == size


def test_many_linears_are_preselected_by_one_pass(planted: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.model import parity
    from builder.model.export import load_merged

    model, tokenizer = load_merged(planted["base"], None)
    batch = parity.left_pad(parity.load_eval_set(planted["dataset"], tokenizer, 4, split="train").prompts,
                            int(tokenizer.pad_token_id))
    monkeypatch.setattr(mixed_int8, "PRESELECT", 4)
    ranked = mixed_int8.rank_linears(model, batch)
    assert len(ranked) == 15 and sum(1 for s in ranked if s.logit_mse > 0) == 4  # 4 forward passes, not 15
    assert [s.module for s in ranked[:2]] == [DOWN, UP]
