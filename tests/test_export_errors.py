"""Bad inputs to `taxreg export` (and the strict base-model loader `taxreg train` shares, builder/model/base_model.py):
each is refused before any loading or tracing, with exit 2, a message naming the file and a hint; nothing is
written to --out. Real tiny models and files, no mocks."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app

pytest.importorskip("onnxruntime", reason="onnxruntime is part of the project's dependencies: pip install -e '.[dev]'")
pytest.importorskip("peft", reason="peft is part of the model extra: pip install -e '.[dev]'")

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "128",
        "--vocab", "512", "--context", "256", "--no-catalog", "--taxonomy", str(REPO / "taxonomy")]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny bases of the same shape (seeds 0 and 7), a one-step adapter trained on the first, a dataset."""
    root = tmp_path_factory.mktemp("export-errors")
    dataset = root / "dataset"
    dataset.mkdir()
    rows = [{"messages": [{"role": "user", "content": f"Name a colour, {i}."},
                          {"role": "assistant", "content": "Blue."}]} for i in range(6)]
    for split in ("train", "test"):
        (dataset / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, seed in (("base", "0"), ("other", "7")):
        result = invoke("model", "init", "--out", str(root / name), "--seed", seed, *TINY)
        assert result.exit_code == 0, result.output
    result = invoke("train", "--base-model", str(root / "base"), "--dataset", str(dataset), "--out",
                    str(root / "adapter"), "--no-catalog", "--max-steps", "1", "--batch-size", "2", "--rank", "2",
                    "--max-length", "64", "--threads", "1")
    assert result.exit_code == 0, result.output
    return {"root": root, "base": root / "base", "other": root / "other", "adapter": root / "adapter",
            "dataset": dataset}


def export(models: dict[str, Path], out: Path, *args: str) -> Any:
    return invoke("export", "--out", str(out), "--dataset", str(models["dataset"]), *args)


def refused(result: Any, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "error: " in result.output and "hint: " in result.output and "Traceback" not in result.output
    for word in words:
        assert word in result.output, (word, result.output)


def copy(models: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(models[name], tmp_path / name))


def test_weights_that_do_not_fit_the_architecture_are_refused_not_initialised(models: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    renamed = copy(models, "base", tmp_path)
    weights = load_file(renamed / "model.safetensors")
    save_file({f"foo.{k}": v for k, v in weights.items()}, renamed / "model.safetensors")
    out = tmp_path / "out"
    refused(export(models, out, "--base-model", str(renamed), "--no-adapter", "--no-catalog"),
            "do not match its config.json", "missing from the files", "foo.model.embed_tokens.weight")
    assert not (out / "onnx").exists()
    # `taxreg train` reads the base through the same loader
    trained = invoke("train", "--base-model", str(renamed), "--dataset", str(models["dataset"]), "--out",
                     str(tmp_path / "adapter"), "--no-catalog", "--max-steps", "1")
    refused(trained, "do not match its config.json")

    config = json.loads((renamed / "config.json").read_text())
    config["hidden_size"] = 128
    save_file(weights, renamed / "model.safetensors")
    (renamed / "config.json").write_text(json.dumps(config))
    refused(export(models, out, "--base-model", str(renamed), "--no-adapter", "--no-catalog"), "of the wrong shape")


def test_a_non_causal_architecture_and_broken_files_are_named(models: dict[str, Path], tmp_path: Path) -> None:
    base = copy(models, "base", tmp_path)
    out, config = tmp_path / "out", json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "model_type": "bert", "architectures": ["BertModel"]}))
    refused(export(models, out, "--base-model", str(base), "--no-adapter", "--no-catalog"),
            "describes BertModel (bert), not a decoder-only causal LM")
    (base / "config.json").write_text(json.dumps(config))
    data = (base / "model.safetensors").read_bytes()
    (base / "model.safetensors").write_bytes(data[: len(data) // 2])
    refused(export(models, out, "--base-model", str(base), "--no-adapter", "--no-catalog"),
            f"cannot load {base} as a causal language model", "SafetensorError")
    (base / "config.json").write_text("{")
    refused(export(models, out, "--base-model", str(base), "--no-adapter", "--no-catalog"),
            f"{base / 'config.json'} is not valid JSON")
    assert not (out / "onnx").exists()


def test_an_adapter_trained_on_another_base_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    result = export(models, tmp_path / "out", "--base-model", str(models["other"]), "--adapter",
                    str(models["adapter"]), "--no-catalog")
    refused(result, "was trained on another base model", str(models["other"]))


def test_broken_adapters_are_named(models: dict[str, Path], tmp_path: Path) -> None:
    adapter, out = copy(models, "adapter", tmp_path), tmp_path / "out"
    args = ("--base-model", str(models["base"]), "--adapter", str(adapter), "--no-catalog")
    (adapter / "adapter_model.safetensors").rename(adapter / "adapter_model.bin")
    refused(export(models, out, *args), "no adapter_model.safetensors (found adapter_model.bin)",
            "pickled weights are never loaded")
    (adapter / "adapter_model.bin").rename(adapter / "adapter_model.safetensors")
    config = (adapter / "adapter_config.json").read_text()
    (adapter / "adapter_config.json").write_text("{nope")
    refused(export(models, out, *args), f"{adapter / 'adapter_config.json'} is not valid JSON")
    (adapter / "adapter_config.json").write_text(config)
    data = (adapter / "adapter_model.safetensors").read_bytes()
    (adapter / "adapter_model.safetensors").write_bytes(data[:40])
    refused(export(models, out, *args), f"cannot load the LoRA adapter at {adapter}")
    assert not (out / "onnx").exists()


def test_bad_dataset_output_and_catalog_paths_are_refused_first(models: dict[str, Path], tmp_path: Path) -> None:
    base = ("--base-model", str(models["base"]), "--no-adapter")
    bad = tmp_path / "bad-dataset"
    bad.mkdir()
    (bad / "test.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{oops\n')
    refused(invoke("export", "--out", str(tmp_path / "o"), "--dataset", str(bad), *base, "--no-catalog"),
            f"{bad / 'test.jsonl'}:2: not a JSON object")
    refused(invoke("export", "--out", str(tmp_path / "o"), "--dataset", str(tmp_path / "typo"), *base,
                   "--no-catalog"), f"no dataset folder at {tmp_path / 'typo'}")
    (tmp_path / "a-file").write_text("keep")
    refused(export(models, tmp_path / "a-file", *base, "--no-catalog"), "is a file")
    assert (tmp_path / "a-file").read_text() == "keep"
    (tmp_path / "junk.duckdb").write_text("not a database")
    refused(export(models, tmp_path / "o", *base, "--catalog", str(tmp_path / "junk.duckdb")),
            "cannot open the catalog")
    assert not (tmp_path / "o" / "onnx").exists()


def test_temporary_folders_of_dead_exports_are_removed(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    dead, live, old = out / ".export-999999999-abc", out / f".export-{os.getpid()}-def", out / ".export-0a1b2c3d4e5f"
    for folder in (dead, live, old):
        folder.mkdir(parents=True)
    result = export(models, out, "--base-model", str(models["base"]), "--no-adapter", "--no-catalog")
    assert result.exit_code == 0, result.output
    assert not dead.exists() and not old.exists() and live.exists()  # a running export's folder is left alone
    assert (out / "onnx" / "model.onnx").is_file()
