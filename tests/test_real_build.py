"""`taxreg build --release` of a real (non-demo) base model named in taxreg.toml: the release's card, manifest,
BOMs and site name it as the model fine-tuned, with its digest and license; nothing changed skips, another base
retrains; and every base that cannot be released is refused before any stage runs, the release and site kept."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.model.onnx_graph import genai_available
from registry.catalog.models import hash_directory
from tests.conftest import EXAMPLE_TAXONOMY
from tests.tiny_models import make_base

pytest.importorskip("onnxruntime", reason="onnxruntime is part of the project's dependencies: pip install -e '.[dev]'")

MODEL_STAGES = ("base model", "train", "export", "evaluate")
VARIANTS = ["fp32", "int8", *(["int4"] if genai_available() else [])]
TOML = ('[model]\nbase = "smol"\n\n[train]\nsteps = 2\nbatch_size = 4\nmax_length = 256\nrank = 4\n\n'
        f'[export]\nvariants = {json.dumps(VARIANTS)}\n')


def taxreg(work: Path, *args: str) -> str:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1767225600", "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-m", "builder.cli", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def build(work: Path, *extra: str) -> dict[str, str]:
    """The build's stage lines ('✓ train  ran ...') as {stage: ran | skipped}."""
    output = taxreg(work, "build", str(work / "taxonomy"), "--build-dir", str(work / "build"), *extra)
    found = {}
    for line in output.splitlines():
        words = line[2:].split()
        for size in (2, 1):
            if len(words) > size and " ".join(words[:size]) in (*MODEL_STAGES, "release", "site", "dataset") \
                    and words[size] in ("ran", "skipped"):
                found[" ".join(words[:size])] = words[size]
    return found


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("real-build")
    shutil.copytree(EXAMPLE_TAXONOMY, work / "taxonomy")
    base = make_base("llama3", work / "smol")
    (work / "taxreg.toml").write_text(TOML, encoding="utf-8")
    stages = build(work, "--release", "1.0.0", "--license", "CC-BY-4.0")
    return {"work": work, "base": base, "stages": stages, "release": work / "build" / "releases" / "1.0.0"}


def test_the_release_names_the_base_model_with_its_digest_and_license(released: dict[str, Any]) -> None:
    assert released["stages"] == dict.fromkeys((*MODEL_STAGES, "release", "site", "dataset"), "ran")
    release, base = released["release"], released["base"]
    digest = hash_directory(base).artifact_id
    weights = hashlib.sha256((base / "model.safetensors").read_bytes()).hexdigest()
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    named = manifest["inputs"]["base_model"]
    assert named == {"model_ref": f"smol@{digest[:16]}", "revision": digest, "license": "Apache-2.0",
                     "weights_sha256": weights, "output_terms": None}
    assert manifest["model"]["base_model"] == named["model_ref"] and manifest["model"]["base_model_relation"] == \
        "finetune"
    shipped = {a["kind"] for a in manifest["model"]["artifacts"]}
    assert shipped == {"adapter", "onnx", "onnx_int8", *(["onnx_int4"] if genai_available() else [])}
    assert manifest["inputs"]["config"]["build"]["train"]["steps"] == 2
    assert manifest["inputs"]["config"]["build"]["export_variants"] == VARIANTS
    card = (release / "model" / "README.md").read_text(encoding="utf-8")
    assert f"base_model: {named['model_ref']}" in card and digest in card and weights in card
    assert "| license | Apache-2.0 |" in card and "demo" not in card.split("---")[1]
    cyclonedx = json.loads((release / "bom" / "cyclonedx.json").read_text(encoding="utf-8"))
    [component] = [c for c in cyclonedx["components"] if c["bom-ref"] == "base-model"]
    assert component["version"] == digest and component["licenses"] == [{"expression": "Apache-2.0"}]
    assert component["hashes"] == [{"alg": "SHA-256", "content": weights}]
    spdx = (release / "bom" / "spdx.json").read_text(encoding="utf-8")
    assert digest in spdx and weights in spdx and "base-model/license" in spdx
    verified = taxreg(released["work"], "release", "verify", str(release))
    assert "match" in verified
    site = released["work"] / "build" / "site"
    page = (site / "releases" / "1.0.0" / "index.html").read_text(encoding="utf-8")
    assert named["model_ref"] in page and digest[:12] in page and "Apache-2.0" in page
    con = duckdb.connect(str(released["work"] / "build" / "catalog.duckdb"), read_only=True)
    try:
        [(train_run,)] = con.execute("SELECT run_id FROM run WHERE stage = 'train'").fetchall()
    finally:
        con.close()
    run_page = (site / "runs" / train_run / "index.html").read_text(encoding="utf-8")
    assert named["model_ref"] in run_page and "Apache-2.0" in run_page


def test_nothing_changed_skips_and_another_base_retrains(released: dict[str, Any]) -> None:
    work = released["work"]
    again = build(work)
    assert all(again[s] == "skipped" for s in MODEL_STAGES), again
    make_base("llama3", work / "other", seed=1)
    other = build(work, "--base-model", str(work / "other"))
    assert all(other[s] == "ran" for s in MODEL_STAGES), other
    # the same files in another folder are the same base: the same key, so nothing would rerun
    from builder.settings import ModelSettings
    from builder.stage import BuildContext, BuildOptions
    from builder.stages.base_model import STAGE
    from registry.config import ValidationConfig

    shutil.copytree(work / "other", work / "copy")
    keys = [STAGE.key(BuildContext(BuildOptions(work / "taxonomy", work / "build",
                                                model_settings=ModelSettings(base=work / name)), ValidationConfig()))
            for name in ("other", "copy", "smol")]
    assert keys[0] == keys[1] != keys[2]


def _not_causal(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(architectures=["LlamaForSequenceClassification"])
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")


def _pickles(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def _no_template(folder: Path) -> None:
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    path.write_text(json.dumps(config), encoding="utf-8")


def _more_tokens(folder: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(40)])
    tokenizer.save_pretrained(folder)


def _config_edit(**values: Any) -> Any:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config.update(values)
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return edit


BAD_BASES = {
    "not a causal LM": (_not_causal, "describes LlamaForSequenceClassification (llama), not a decoder-only causal LM"),
    "pickle-only weights": (_pickles, "has no .safetensors weights (found pytorch_model.bin)"),
    "no chat template": (_no_template, "tokenizer has no chat template"),
    "tokenizer too big": (_more_tokens, "but the model's embedding only 516 rows"),
    "config against weights": (_config_edit(vocab_size=1000), "the embedding in the safetensors has 516 rows but "
                                                              "config.json says vocab_size 1000"),
    "unsupported family": (_config_edit(model_type="phi3", architectures=["Phi3ForCausalLM"]),
                           "model_type 'phi3' (Phi3ForCausalLM) is a family taxreg's ONNX export does not handle"),
    "rope by length": (_config_edit(rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4}),
                       "rope scaling 'dynamic' (Llama) depends on the sequence length"),
}


@pytest.mark.parametrize("problem", [*BAD_BASES, "missing folder in taxreg.toml"])
def test_a_base_that_cannot_be_released_is_refused_before_any_stage(released: dict[str, Any], problem: str,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    work = released["work"]
    kept = {name: digests(work / "build" / name) for name in ("releases", "site", "model")}
    builds_before = _builds(work)
    monkeypatch.chdir(tmp_path)
    if problem in BAD_BASES:
        spoil, expected = BAD_BASES[problem]
        bad = shutil.copytree(released["base"], tmp_path / "bad")
        spoil(bad)
        (tmp_path / "taxreg.toml").write_text(TOML.replace('"smol"', '"bad"'), encoding="utf-8")
    else:
        expected = "[model] base = 'gone': no folder at"
        (tmp_path / "taxreg.toml").write_text(TOML.replace('"smol"', '"gone"'), encoding="utf-8")
    result = CliRunner().invoke(app, ["build", str(work / "taxonomy"), "--build-dir", str(work / "build"),
                                      "--release", "2.0.0"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split()) and "hint:" in result.output
    assert "Traceback" not in result.output
    assert {name: digests(work / "build" / name) for name in kept} == kept
    assert _builds(work) == builds_before  # refused before the build was even recorded


def _builds(work: Path) -> int:
    con = duckdb.connect(str(work / "build" / "catalog.duckdb"), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM build").fetchall()[0][0])
    finally:
        con.close()


def test_train_and_export_refuse_a_tokenizer_past_the_embedding(released: dict[str, Any], tmp_path: Path) -> None:
    """`taxreg train --base-model` and `taxreg export` load the folder themselves: the same refusal, not an index
    error in the middle of training."""
    from builder.model import base_model
    from registry.errors import RegistryError

    bad = shutil.copytree(released["base"], tmp_path / "bad")
    _more_tokens(bad)
    with pytest.raises(RegistryError, match="tokenizer has 556 tokens but the model's embedding only 516 rows"):
        base_model.load(bad)
