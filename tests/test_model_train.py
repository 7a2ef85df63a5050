"""The demo base model and `taxreg train`, run for real on the embedded taxonomy: determinism of `model init`,
LoRA with assistant-only labels, falling losses, the catalog rows, repeatable adapters, resume after kill -9,
and a 2-process torchrun (gloo)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app

pytestmark = pytest.mark.slow  # real models or whole builds: left out of `pytest -m "not slow"`

pytest.importorskip("peft", reason="peft is a dependency of the project: pip install -e '.[dev]'")

REPO = Path(__file__).resolve().parents[1]
TAXONOMY = str(REPO / "taxonomy")
TAXREG = [sys.executable, "-c", "from builder.cli import main; main()"]
# few, short steps: the whole file stays well under two minutes on a busy 2-core machine
FAST = ["--batch-size", "4", "--max-length", "96", "--threads", "1", "--logging-steps", "1"]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def ok(*args: str) -> Any:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def query(catalog: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb

    con = duckdb.connect(str(catalog), read_only=True)
    try:
        return list(con.execute(sql).fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """index -> generate -> dataset build -> model init, into a fresh folder."""
    root = tmp_path_factory.mktemp("train")
    catalog, datasets, base = root / "catalog.duckdb", root / "datasets", root / "model" / "base"
    ok("index", TAXONOMY, "--catalog", str(catalog))
    ok("generate", TAXONOMY, "--catalog", str(catalog))
    ok("dataset", "build", "--catalog", str(catalog), "--out", str(datasets))
    ok("model", "init", "--out", str(base), "--taxonomy", TAXONOMY)
    return {"root": root, "catalog": catalog, "dataset": datasets / "default", "base": base}


@pytest.fixture(scope="module")
def trained(built: dict[str, Path]) -> dict[str, Any]:
    adapter = built["root"] / "model" / "adapter"
    result = ok("train", "--base-model", str(built["base"]), "--dataset", str(built["dataset"]), "--out",
                str(adapter), "--catalog", str(built["catalog"]), "--max-steps", "8", "--eval-steps", "4",
                "--save-steps", "4", *FAST)
    config = json.loads((adapter / "training_config.json").read_text(encoding="utf-8"))
    return {**built, "adapter": adapter, "config": config, "output": result.output}


def test_demo_model_is_deterministic_and_labeled(built: dict[str, Path], tmp_path: Path) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    ok("model", "init", "--out", str(again), "--taxonomy", TAXONOMY)
    ok("model", "init", "--out", str(other), "--taxonomy", TAXONOMY, "--seed", "1")
    names = sorted(p.name for p in built["base"].iterdir())
    assert {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json", "README.md",
            "special_tokens_map.json", "generation_config.json"} <= set(names)
    assert not [n for n in names if n.endswith((".bin", ".pt"))]
    for name in names:
        assert (again / name).read_bytes() == (built["base"] / name).read_bytes(), name
    assert (other / "model.safetensors").read_bytes() != (built["base"] / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (built["base"] / "tokenizer.json").read_bytes()
    config = json.loads((built["base"] / "config.json").read_text(encoding="utf-8"))
    assert config["taxreg_demo_model"] is True and config["model_type"] == "granite"
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_key_value_heads"]) == (256, 4, 2)
    assert config["tie_word_embeddings"] is True and config["rope_theta"] == 10000.0
    assert (config["embedding_multiplier"], config["residual_multiplier"], config["logits_scaling"]) == (12, 0.22, 8)
    assert "demo model" in (built["base"] / "README.md").read_text(encoding="utf-8").lower()
    tok_config = json.loads((built["base"] / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast" and "{%- generation %}" in tok_config[
        "chat_template"]


def test_demo_model_loads_and_masks_assistant_tokens(built: dict[str, Path]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(built["base"])
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where do owls live?"},
                {"role": "assistant", "content": "In forests, deserts and towns."}]
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
    answer = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(answer) == "In forests, deserts and towns.<|end_of_text|>"
    assert tokenizer.decode(tokenizer.encode("Ünïcödé ✓ text")) == "Ünïcödé ✓ text"  # byte-level: no unknowns
    model = AutoModelForCausalLM.from_pretrained(built["base"], use_safetensors=True)
    params = sum(p.numel() for p in model.parameters())
    assert 3_000_000 < params < 6_000_000
    with torch.no_grad():
        logits = model(torch.tensor([encoded["input_ids"]])).logits
    assert logits.shape == (1, len(encoded["input_ids"]), len(tokenizer))


def test_template_without_markers_gives_the_same_labels(built: dict[str, Path]) -> None:
    from transformers import PreTrainedTokenizerFast

    from builder.model import chat_data

    tokenizer = PreTrainedTokenizerFast.from_pretrained(built["base"])
    rows = chat_data.read_conversations(chat_data.dataset_files(built["dataset"])["test"])[:6]
    marked = chat_data.encode(rows, tokenizer, 512)
    tokenizer.chat_template = tokenizer.chat_template.replace("{%- generation %}", "").replace(
        "{%- endgeneration %}", "")
    by_span = chat_data.encode(rows, tokenizer, 512)
    assert marked.stats.answer_tokens > 0
    for m, s in zip(marked.examples, by_span.examples, strict=True):
        assert m["input_ids"] == s["input_ids"]
        extra = [i for i, (a, b) in enumerate(zip(m["labels"], s["labels"], strict=True)) if a != b]
        # the span of a turn also holds the separator after its end-of-text (one newline per answer)
        assert all(m["labels"][i] == chat_data.IGNORE and tokenizer.decode([s["labels"][i]]) == "\n" for i in extra)
        assert len(extra) == 1
    assert all(e["labels"][0] == chat_data.IGNORE for e in marked.examples)  # the prompt is never a target


def test_train_loss_falls_and_the_run_is_recorded(trained: dict[str, Any]) -> None:
    adapter, config, catalog = trained["adapter"], trained["config"], trained["catalog"]
    assert {"adapter_model.safetensors", "adapter_config.json", "training_config.json", "README.md",
            "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in adapter.iterdir()}
    results = config["results"]
    assert results["global_step"] == 8
    losses = [e["loss"] for e in results["log_history"] if "loss" in e]
    assert len(losses) == 8 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1
    assert results["eval_loss"] < results["eval_loss_first"] - 0.05
    assert config["base_model"]["demo"] is True and config["params"]["lr"] == 0.01  # the demo's default lr
    assert config["chat_template"]["assistant_mask"] == "generation markers"
    assert set(config["versions"]) >= {"torch", "transformers", "peft"}
    assert "train loss" in trained["output"] and "DEMO" in (adapter / "README.md").read_text(encoding="utf-8")

    [(run_id, status, seed)] = query(catalog, "SELECT run_id, status, random_seed FROM run WHERE stage = 'train'")
    assert status == "succeeded" and seed == 0
    inputs = set(query(catalog, f"SELECT input_kind, input_id, role FROM run_input WHERE run_id = '{run_id}'"))
    files = config["dataset"]["files"]
    assert ("dataset", files["train"]["sha256"], "train") in inputs and ("dataset", files["test"]["sha256"],
                                                                        "eval") in inputs
    assert {r[0] for r in query(catalog, "SELECT dataset_id FROM dataset")} >= {
        files["train"]["sha256"], files["test"]["sha256"]}  # the inputs are the dataset table's rows
    assert ("model_artifact", config["base_model"]["artifact_id"], "base") in inputs
    assert ("external_model", config["base_model"]["model_ref"], "base") in inputs
    kinds = dict(query(catalog, f"SELECT kind, artifact_id FROM model_artifact WHERE run_id = '{run_id}'"))
    assert kinds["base"] == config["base_model"]["artifact_id"]
    listed = dict(query(catalog, f"SELECT relpath, sha256 FROM artifact_file WHERE artifact_id = '{kinds['adapter']}'"))
    from registry.catalog.models import hash_directory

    assert listed == {f.relpath: f.sha256 for f in hash_directory(adapter).files}
    assert hash_directory(adapter).artifact_id == kinds["adapter"]
    [(license_id,)] = query(catalog, "SELECT license_spdx FROM external_model")
    assert license_id == "Apache-2.0"


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft calls a transformers API deprecated for v6
def test_adapter_loads_and_changes_the_model(trained: dict[str, Any]) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 99, 300, 42]])
    base = AutoModelForCausalLM.from_pretrained(trained["base"], use_safetensors=True).eval()
    with torch.no_grad():
        before = base(ids).logits
        merged = PeftModel.from_pretrained(base, trained["adapter"]).merge_and_unload().eval()
        after = merged(ids).logits
    assert (before - after).abs().max() > 1e-3


def test_same_seed_gives_the_same_adapter_bytes(trained: dict[str, Any], tmp_path: Path) -> None:
    again = tmp_path / "adapter"
    ok("train", "--base-model", str(trained["base"]), "--dataset", str(trained["dataset"]), "--out", str(again),
       "--no-catalog", "--checkpoints", str(tmp_path / "checkpoints"), "--max-steps", "8", "--eval-steps", "4",
       "--save-steps", "4", *FAST)
    for name in ("adapter_model.safetensors", "adapter_config.json", "training_config.json"):
        assert (again / name).read_bytes() == (trained["adapter"] / name).read_bytes(), name


def test_resume_after_kill_continues_from_the_checkpoint(built: dict[str, Path], tmp_path: Path) -> None:
    out, checkpoints = tmp_path / "adapter", tmp_path / "checkpoints"
    args = ["train", "--base-model", str(built["base"]), "--dataset", str(built["dataset"]), "--no-catalog",
            "--max-steps", "20", "--save-steps", "2", "--eval-steps", "100", *FAST]
    command = [*TAXREG, *args, "--out", str(out), "--checkpoints", str(checkpoints)]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("*/checkpoint-*/trainer_state.json")):
        assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not out.exists()  # killed before the end: no adapter was put in place
    saved = max(int(p.parent.name.split("-")[1]) for p in checkpoints.glob("*/checkpoint-*/trainer_state.json"))
    assert saved < 20
    second = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "resumed from step" in second.stderr
    config = json.loads((out / "training_config.json").read_text(encoding="utf-8"))
    steps = [e["step"] for e in config["results"]["log_history"] if "loss" in e]
    assert config["results"]["global_step"] == 20 and steps[-1] == 20 and saved in steps
    # the resumed run restored weights, optimizer, schedule, data order and RNG: it ends where one run would
    whole = tmp_path / "uninterrupted"
    ok(*args, "--out", str(whole), "--checkpoints", str(tmp_path / "other"))
    assert (whole / "adapter_model.safetensors").read_bytes() == (out / "adapter_model.safetensors").read_bytes()


def test_a_finished_run_trained_again_gives_the_same_files(built: dict[str, Path], tmp_path: Path) -> None:
    """Its checkpoint at the last step is not resumed (the Trainer would take one step more): the rerun resumes
    from the one before and ends at the same step with the same adapter bytes."""
    out = tmp_path / "adapter"
    args = ["train", "--base-model", str(built["base"]), "--dataset", str(built["dataset"]), "--no-catalog",
            "--max-steps", "4", "--save-steps", "2", "--eval-steps", "100", *FAST, "--out", str(out),
            "--checkpoints", str(tmp_path / "checkpoints")]
    ok(*args)
    first = (out / "adapter_model.safetensors").read_bytes()
    assert list(tmp_path.glob("checkpoints/*/checkpoint-4"))
    again = ok(*args)
    assert "resumed from step 2" in again.output
    config = json.loads((out / "training_config.json").read_text(encoding="utf-8"))
    assert config["results"]["global_step"] == 4
    assert max(e["step"] for e in config["results"]["log_history"]) == 4
    assert (out / "adapter_model.safetensors").read_bytes() == first


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_process_launchers(built: dict[str, Path], tmp_path: Path, launcher: str) -> None:
    out = tmp_path / "adapter"
    catalog = tmp_path / "catalog.duckdb"
    (tmp_path / "catalog.duckdb").write_bytes(built["catalog"].read_bytes())
    before = query(catalog, "SELECT count(*) FROM run WHERE stage = 'train'")[0][0]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch = {
        "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                     "--master_addr", "127.0.0.1", "--master_port", str(port)],
        # --multi_gpu with no GPU: accelerate runs the two processes as CPU DDP over gloo.
        "accelerate": [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                       "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                       "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)],
    }[launcher]
    command = [*launch, str(Path(sys.executable).parent / "taxreg"), "train", "--base-model",
               str(built["base"]), "--dataset", str(built["dataset"]), "--out", str(out), "--catalog", str(catalog),
               "--max-steps", "2", "--eval-steps", "100", "--save-steps", "100", *FAST]
    done = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "training_config.json").read_text(encoding="utf-8"))
    assert config["distributed"]["world_size"] == 2 and config["results"]["global_step"] == 2
    assert done.stderr.count("adapter -> ") == 1  # rank 0 alone reports and writes
    assert query(catalog, "SELECT count(*) FROM run WHERE stage = 'train'")[0][0] == before + 1


@pytest.mark.parametrize("problem", ["missing", "pickle", "bad-json", "no-dataset"])
def test_bad_inputs_get_a_clear_error(built: dict[str, Path], tmp_path: Path, problem: str) -> None:
    base, dataset = tmp_path / "base", built["dataset"]
    if problem == "pickle":
        base.mkdir()
        (base / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
        (base / "pytorch_model.bin").write_bytes(b"not loaded")
    elif problem == "bad-json":
        base.mkdir()
        (base / "config.json").write_text("{", encoding="utf-8")
    elif problem == "no-dataset":
        base, dataset = built["base"], tmp_path / "nothing"
    result = invoke("train", "--base-model", str(base), "--dataset", str(dataset), "--out", str(tmp_path / "out"),
                    "--no-catalog")
    assert result.exit_code == 2
    expected = {"missing": "no base model folder", "pickle": "pickled weights are never loaded",
                "bad-json": "is not valid JSON", "no-dataset": "no dataset folder"}[problem]
    assert expected in result.output and "hint:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_any_local_causal_lm_trains(built: dict[str, Path], tmp_path: Path) -> None:
    """A Llama-architecture folder whose chat template has no generation markers: LoRA finds every linear layer,
    the assistant tokens come from each turn's span, and the non-demo default learning rate applies."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    base, out = tmp_path / "llama", tmp_path / "adapter"
    tokenizer = PreTrainedTokenizerFast.from_pretrained(built["base"])
    tokenizer.chat_template = (
        "{% for m in messages %}<|start_of_role|>{{ m['role'] }}<|end_of_role|>{{ m['content'] }}<|end_of_text|>"
        "{% endfor %}{% if add_generation_prompt %}<|start_of_role|>assistant<|end_of_role|>{% endif %}")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                 max_position_embeddings=256)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    ok("train", "--base-model", str(base), "--dataset", str(built["dataset"]), "--out", str(out), "--no-catalog",
       "--checkpoints", str(tmp_path / "checkpoints"), "--max-steps", "2", "--eval-steps", "100", *FAST)
    config = json.loads((out / "training_config.json").read_text(encoding="utf-8"))
    assert config["chat_template"]["assistant_mask"] == "token span of each assistant turn"
    assert config["base_model"]["demo"] is False and config["params"]["lr"] == 2e-4
    assert config["base_model"]["model_ref"].startswith("llama@")
    adapter_config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    adapted = {name.rsplit(".", 1)[-1] for name in adapter_config["target_modules"]}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert "DEMO" not in (out / "README.md").read_text(encoding="utf-8")
