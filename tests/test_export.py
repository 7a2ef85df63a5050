"""`taxreg export` on a real tiny Granite: the ONNX contract, the parity gate, the catalog, and failure safety."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.model.onnx_graph import genai_available

pytestmark = pytest.mark.slow  # real models or whole builds: left out of `pytest -m "not slow"`

pytest.importorskip("onnxruntime", reason="onnxruntime is part of the project's dependencies: pip install -e '.[dev]'")
pytest.importorskip("peft", reason="peft is part of the model extra: pip install -e '.[dev]'")

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "128",
        "--vocab", "512", "--context", "256"]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def ok(*args: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real pipeline on the embedded taxonomy: index, generate, dataset, a tiny demo model, 3 LoRA steps,
    then export into a fresh folder."""
    root = tmp_path_factory.mktemp("export")
    catalog, datasets = root / "catalog.duckdb", root / "datasets"
    base, adapter, out = root / "model" / "base", root / "model" / "adapter", root / "model"
    taxonomy = str(REPO / "taxonomy")
    ok("index", taxonomy, "--catalog", str(catalog))
    ok("generate", taxonomy, "--catalog", str(catalog))
    ok("dataset", "build", "--catalog", str(catalog), "--out", str(datasets))
    ok("model", "init", "--out", str(base), "--taxonomy", taxonomy, *TINY)
    ok("train", "--base-model", str(base), "--dataset", str(datasets / "default"), "--out", str(adapter),
       "--catalog", str(catalog), "--max-steps", "3", "--batch-size", "4", "--max-length", "128", "--rank", "4",
       "--alpha", "8", "--eval-steps", "100", "--save-steps", "100", "--threads", "1")
    result = invoke("export", "--base-model", str(base), "--adapter", str(adapter), "--out", str(out),
                    "--catalog", str(catalog), "--dataset", str(datasets / "default"))
    assert result.exit_code == 0, result.output
    assert "fp32: max |logit diff|" in result.output and "passed" in result.output
    return {"root": root, "base": base, "adapter": adapter, "out": out, "catalog": catalog,
            "dataset": datasets / "default"}


def merged_model(paths: dict[str, Path]) -> Any:
    from builder.model.export import load_merged

    return load_merged(paths["base"], paths["adapter"])[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_writes_both_variants_and_fp32_passes_parity(exported: dict[str, Path]) -> None:
    out = exported["out"]
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] is True and report["eval_set"] == f"dataset:{exported['dataset'].name}/test.jsonl"
    fp32, int8 = report["variants"]["fp32"], report["variants"]["int8"]
    assert fp32["passed"] and fp32["gate"] and fp32["max_abs_diff"] <= 1e-4 and fp32["greedy_identical"]
    assert fp32["top1_agreement"] == 1.0 and fp32["n_prompts"] == 8 and fp32["n_tokens"] == 32
    assert fp32["thresholds"] == {"max_abs_diff": 1e-4, "greedy_identical": True}
    assert not int8["gate"] and int8["thresholds"] == {"top1_agreement": 0.95}
    assert 0.5 < int8["top1_agreement"] <= 1.0 and int8["max_abs_diff"] > fp32["max_abs_diff"]
    # all-int8 under 95%: the matmuls were ranked on the train split (tests/test_mixed_int8.py)
    ranked = int8["all_int8_top1_agreement"] < 0.95
    assert int8["calibration"] == ("dataset:default/train.jsonl" if ranked else None)
    assert int8["top1_agreement"] >= int8["all_int8_top1_agreement"] and (ranked or not int8["fp32_matmuls"])
    assert {"torch", "transformers", "onnxruntime", "onnx"} <= set(report["versions"])
    for name in ("onnx", "onnx-int8"):
        folder = out / name
        assert {"model.onnx", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json"} <= {p.name for p in folder.iterdir()}
        config = json.loads((folder / "config.json").read_text())
        base_config = json.loads((exported["base"] / "config.json").read_text())
        assert config["rope_theta"] == base_config["rope_parameters"]["rope_theta"] == 10000.0
        assert config["taxreg_demo_model"] is True
        assert (config["num_hidden_layers"], config["num_key_value_heads"], config["head_dim"]) == (2, 2, 16)
        assert config["max_position_embeddings"] == 256
        generation = json.loads((folder / "generation_config.json").read_text())
        assert generation["eos_token_id"] == base_config["eos_token_id"]
    assert (out / "onnx-int8" / "model.onnx").stat().st_size < (out / "onnx" / "model.onnx").stat().st_size
    assert not list(out.glob(".export-*"))


def test_plain_onnxruntime_runs_prefill_and_a_cached_decode_step_like_pytorch(exported: dict[str, Path]) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(exported["out"] / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    layers = [f"past_key_values.{i}.{k}" for i in range(2) for k in ("key", "value")]
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "position_ids", *layers]
    assert [o.name for o in session.get_outputs()] == [
        "logits", *(f"present.{i}.{k}" for i in range(2) for k in ("key", "value"))]
    ids = np.array([[3, 3, 50, 90, 170], [30, 80, 50, 90, 170]], dtype=np.int64)  # row 0 left-padded
    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=np.int64)
    pos = np.clip(mask.cumsum(-1) - 1, 0, None)
    empty = np.zeros((2, 2, 0, 16), dtype=np.float32)
    logits, *present = session.run(None, {"input_ids": ids, "attention_mask": mask, "position_ids": pos,
                                          **dict.fromkeys(layers, empty)})
    assert present[0].shape == (2, 2, 5, 16)
    token = logits[:, -1].argmax(-1)[:, None].astype(np.int64)
    mask2, pos2 = np.concatenate([mask, np.ones_like(token)], 1), pos[:, -1:] + 1
    step, *present2 = session.run(None, {"input_ids": token, "attention_mask": mask2, "position_ids": pos2,
                                         **dict(zip(layers, present, strict=True))})
    assert step.shape == (2, 1, logits.shape[-1]) and present2[0].shape == (2, 2, 6, 16)

    model = merged_model(exported)
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                    position_ids=torch.from_numpy(pos), use_cache=True)
        ref_step = model(input_ids=torch.from_numpy(token), attention_mask=torch.from_numpy(mask2),
                         position_ids=torch.from_numpy(pos2), past_key_values=ref.past_key_values, use_cache=True)
    real = mask.astype(bool)
    assert np.abs(logits - ref.logits.numpy())[real].max() <= 1e-4
    assert np.abs(step - ref_step.logits.numpy()).max() <= 1e-4

    int8 = ort.InferenceSession(str(exported["out"] / "onnx-int8" / "model.onnx"), providers=["CPUExecutionProvider"])
    q_logits = int8.run(["logits"], {"input_ids": ids, "attention_mask": mask, "position_ids": pos,
                                     **dict.fromkeys(layers, empty)})[0]
    assert q_logits.shape == logits.shape and np.isfinite(q_logits).all()


def test_norms_and_rope_run_as_onnxruntime_kernels_up_to_the_last_position(exported: dict[str, Path]) -> None:
    """The exporter fuses RMSNorm and RoPE (its cos/sin table is max_position_embeddings long) and traces grouped
    attention without per-group copies of the cache; a decode step at the last position still matches PyTorch."""
    from collections import Counter

    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    path = exported["out"] / "onnx" / "model.onnx"
    ops = Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    assert ops["RotaryEmbedding"] == 2 * 2  # query and key of both layers
    assert ops["SimplifiedLayerNormalization"] + ops["SkipSimplifiedLayerNormalization"] == 2 * 2 + 1
    assert ops["IsNaN"] == 0 and ops["Neg"] == 0 and ops["Expand"] < 2 * 2
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    layers = [f"past_key_values.{i}.{k}" for i in range(2) for k in ("key", "value")]
    context = 256
    ids = np.random.default_rng(0).integers(3, 500, (1, context - 1), dtype=np.int64)
    mask, pos = np.ones_like(ids), np.arange(context - 1, dtype=np.int64)[None]
    _, *present = session.run(None, {"input_ids": ids, "attention_mask": mask, "position_ids": pos,
                                     **dict.fromkeys(layers, np.zeros((1, 2, 0, 16), dtype=np.float32))})
    token, last = np.array([[7]], dtype=np.int64), np.array([[context - 1]], dtype=np.int64)
    step = session.run(["logits"], {"input_ids": token, "attention_mask": np.ones((1, context), dtype=np.int64),
                                    "position_ids": last, **dict(zip(layers, present, strict=True))})[0]
    model = merged_model(exported)
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(ids), use_cache=True)
        ref_step = model(input_ids=torch.from_numpy(token), position_ids=torch.from_numpy(last),
                         past_key_values=ref.past_key_values, use_cache=True)
    assert np.abs(step - ref_step.logits.numpy()).max() <= 1e-4


def test_exported_tokenizer_loads_with_pretrained_tokenizer_fast(exported: dict[str, Path]) -> None:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    original = AutoTokenizer.from_pretrained(exported["base"])
    messages = [{"role": "user", "content": "Where do chickadees live?"}]
    prompt = original.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    for name in ("onnx", "onnx-int8"):
        folder = exported["out"] / name
        tok_config = json.loads((folder / "tokenizer_config.json").read_text())
        assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"
        assert tok_config["chat_template"] == original.chat_template
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
        assert tokenizer.eos_token == original.eos_token and tokenizer.model_max_length == 256
        text = "What is a taxonomy? A tree of knowledge, ünïcode and all."
        assert tokenizer(text)["input_ids"] == original(text)["input_ids"]
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
        assert tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == prompt
        assert "assistant" in prompt


def test_catalog_records_the_export_run_its_inputs_and_artifacts(exported: dict[str, Path]) -> None:
    from registry.catalog.connection import open_read_only

    con = open_read_only(exported["catalog"])
    try:
        [(run_id, status)] = con.execute("SELECT run_id, status FROM run WHERE stage = 'export'").fetchall()
        assert status == "succeeded"
        roles = set(con.execute("SELECT role, input_kind FROM run_input WHERE run_id = ?", [run_id]).fetchall())
        int8 = json.loads((exported["out"] / "parity.json").read_text())["variants"]["int8"]
        calibrated = {("int8 calibration", "dataset")} if int8["calibration"] else set()
        assert roles == {("adapter", "model_artifact"), ("base", "external_model"), ("base", "model_artifact"),
                         ("eval", "dataset"), ("train (through the adapter)", "dataset"),
                         ("eval (through the adapter)", "dataset"), *calibrated}
        # a takedown of any contribution in the training data reaches the exported models
        [(contribution,)] = con.execute("SELECT contribution_id FROM sample_lineage sl JOIN dataset_member dm "
                                        "USING (sample_id) LIMIT 1").fetchall()
        hit = {kind for what, _, kind in con.execute("SELECT * FROM takedown_impact(?)", [contribution]).fetchall()
               if what == "model"}
        assert {"onnx", "onnx_int8"} <= hit
        artifacts = con.execute("SELECT kind, artifact_id, path, metrics->>'passed', "
                                "CAST(metrics->>'top1_agreement' AS DOUBLE) FROM model_artifact "
                                "WHERE run_id = ? ORDER BY kind", [run_id]).fetchall()
        assert artifacts[0][4] == 1.0 and 0.5 < artifacts[1][4] <= 1.0
        assert [(a[0], a[3]) for a in artifacts] == [("onnx", "true"), ("onnx_int8", "true")]
        for kind, artifact_id, path, _, _ in artifacts:
            files = dict(con.execute("SELECT relpath, sha256 FROM artifact_file WHERE artifact_id = ?",
                                     [artifact_id]).fetchall())
            assert Path(path) == exported["out"] / ("onnx" if kind == "onnx" else "onnx-int8")
            assert files == {p.name: sha256(p) for p in Path(path).iterdir()}
    finally:
        con.close()


def test_failed_parity_exits_1_and_leaves_the_previous_export_intact(exported: dict[str, Path]) -> None:
    out = exported["out"]
    before = {p.relative_to(out).as_posix(): sha256(p) for p in out.rglob("*") if p.is_file()}
    result = invoke("export", "--base-model", str(exported["base"]), "--adapter", str(exported["adapter"]),
                    "--out", str(out), "--catalog", str(exported["catalog"]), "--dataset",
                    str(exported["dataset"]), "--max-diff", "0")
    assert result.exit_code == 1, result.output
    assert "failed the parity gate" in result.output and "previous export is untouched" in result.output
    failed = json.loads((out / "parity.failed.json").read_text())
    assert failed["passed"] is False and failed["variants"]["fp32"]["thresholds"]["max_abs_diff"] == 0
    after = {p.relative_to(out).as_posix(): sha256(p) for p in out.rglob("*") if p.is_file()}
    assert after.pop("parity.failed.json") and after == before
    assert not list(out.glob(".export-*"))
    from registry.catalog.connection import open_read_only

    con = open_read_only(exported["catalog"])
    try:
        statuses = sorted(s for (s,) in con.execute("SELECT status FROM run WHERE stage = 'export'").fetchall())
        kinds = con.execute("SELECT count(*) FROM model_artifact WHERE kind LIKE 'onnx%'").fetchall()[0][0]
    finally:
        con.close()
    assert statuses == ["failed", "succeeded"] and kinds == 2  # a refused export adds no artifact


def test_the_gate_catches_a_slightly_corrupted_graph(exported: dict[str, Path], tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from builder.model import parity
    from builder.model.onnx_graph import CacheShape

    graph = onnx.load(str(exported["out"] / "onnx" / "model.onnx"))
    biggest = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    weights = numpy_helper.to_array(biggest).copy()
    weights.flat[: weights.size // 10] += 1e-3  # a small numeric drift, as a wrong fusion would make
    biggest.CopyFrom(numpy_helper.from_array(weights, biggest.name))
    onnx.save(graph, str(tmp_path / "model.onnx"))

    model = merged_model(exported)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(exported["base"])
    batch = parity.left_pad(parity.load_eval_set(None, tokenizer, 4).prompts, int(tokenizer.pad_token_id))
    reference = parity.torch_reference(model, batch, 8)
    shape = CacheShape.of(model.config)
    good = parity.check_variant("fp32", parity.OrtModel(exported["out"] / "onnx" / "model.onnx", shape), batch,
                                reference, parity.Thresholds(), gate=True)
    bad = parity.check_variant("fp32", parity.OrtModel(tmp_path / "model.onnx", shape), batch, reference,
                               parity.Thresholds(), gate=True)
    assert good.passed and good.max_abs_diff <= 1e-4
    assert not bad.passed and bad.max_abs_diff > 1e-4


def test_eval_prompts_come_from_the_dataset_test_split(exported: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from builder.model import parity

    tokenizer = AutoTokenizer.from_pretrained(exported["base"])
    rows = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Question {i}?"},
                          {"role": "assistant", "content": f"Answer {i}."}]} for i in range(12)]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    eval_set = parity.load_eval_set(tmp_path, tokenizer, n_prompts=8)
    assert eval_set.source == f"dataset:{tmp_path.name}/test.jsonl"  # no local path and len(eval_set.prompts) == 8
    first = tokenizer.decode(eval_set.prompts[0])
    assert "Question 0?" in first and "Be brief." in first and "Answer 0." not in first
    fixed = parity.load_eval_set(tmp_path / "absent", tokenizer, n_prompts=3)
    assert fixed.source == "fixed" and len(fixed.prompts) == 3


def test_bad_inputs_get_a_clear_error_and_exit_2(exported: dict[str, Path], tmp_path: Path) -> None:
    missing = invoke("export", "--base-model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                     "--catalog", str(tmp_path / "c.duckdb"))
    assert missing.exit_code == 2 and "taxreg model init" in missing.output
    no_adapter = invoke("export", "--base-model", str(exported["base"]), "--adapter", str(tmp_path / "none"),
                        "--out", str(tmp_path / "o"), "--catalog", str(tmp_path / "c.duckdb"))
    assert no_adapter.exit_code == 2 and "--no-adapter" in no_adapter.output
    if not genai_available():
        int4 = invoke("export", "--base-model", str(exported["base"]), "--no-adapter", "--int4",
                      "--out", str(tmp_path / "o"), "--catalog", str(tmp_path / "c.duckdb"))
        assert int4.exit_code == 2 and "onnxruntime-genai" in int4.output
    assert not (tmp_path / "o" / "onnx").exists()


@pytest.mark.skipif(not genai_available(),
                    reason="--int4 needs onnxruntime-genai (pip install onnxruntime-genai in the CPU environment)")
def test_int4_is_built_with_genai_and_its_agreement_recorded(exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = invoke("export", "--base-model", str(exported["base"]), "--adapter", str(exported["adapter"]),
                    "--out", str(out), "--catalog", str(tmp_path / "c.duckdb"), "--dataset", str(exported["dataset"]),
                    "--int4")
    assert result.exit_code == 0, result.output
    int4 = json.loads((out / "parity.json").read_text())["variants"]["int4"]
    assert not int4["gate"] and 0.5 < int4["top1_agreement"] <= 1.0
    from transformers import PreTrainedTokenizerFast

    assert PreTrainedTokenizerFast.from_pretrained(out / "onnx-int4").eos_token is not None
