"""Bad input to `taxreg model init` and `taxreg train`: a clear error naming the file (and line) and what to do,
exit 2, nothing written or removed; Ctrl-C, killed runs and damaged checkpoints. A real tiny demo model and real
dataset files, one or two training steps each."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app

pytest.importorskip("peft", reason="peft is a dependency of the project: pip install -e '.[dev]'")

REPO = Path(__file__).resolve().parents[1]
TAXONOMY = str(REPO / "taxonomy")
TAXREG = [sys.executable, "-c", "from builder.cli import main; main()"]
TINY = ["--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "128",
        "--vocab", "512", "--context", "256", "--no-catalog", "--taxonomy", TAXONOMY]
FAST = ["--no-catalog", "--batch-size", "2", "--max-length", "96", "--threads", "1", "--logging-steps", "1",
        "--eval-steps", "100"]
ROW = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where do owls live?"},
                    {"role": "assistant", "content": "In forests, deserts and towns."}]}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def refused(*args: str, expected: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "hint:" in result.output, result.output
    assert "Traceback" not in result.output and "report it if it looks like a bug" not in result.output
    return str(result.output)


def write_rows(folder: Path, rows: list[Any], split: str = "train") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("errors") / "base"
    result = invoke("model", "init", "--out", str(out), *TINY)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("errors-data") / "ds"
    write_rows(folder, [ROW] * 8)
    write_rows(folder, [ROW] * 2, "test")
    return folder


def train(base: Path, dataset: Path, out: Path, *more: str) -> list[str]:
    return ["train", "--base-model", str(base), "--dataset", str(dataset), "--out", str(out),
            "--checkpoints", str(out.parent / "checkpoints"), *FAST, *more]


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write in: a read-only tmpfs as root (who ignores permissions), else mode 0555."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], check=False,
                             capture_output=True)
    if mounted.returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


# 1. --out that is not an adapter folder is refused, before training, and left as it was
@pytest.mark.parametrize("what", ["file", "dataset", "base", "other-folder"])
def test_out_that_is_not_an_adapter_is_left_untouched(base: Path, dataset: Path, tmp_path: Path, what: str) -> None:
    copy = tmp_path / "copy"
    if what == "file":
        out = tmp_path / "fileout"
        out.write_text("keep\n", encoding="utf-8")
    elif what == "other-folder":
        out = tmp_path / "notes"
        out.mkdir()
        (out / "keep.txt").write_text("keep\n", encoding="utf-8")
    else:
        out = copy
        shutil.copytree(dataset if what == "dataset" else base, out)
    before = sorted((p.name, p.read_bytes()) for p in out.rglob("*") if p.is_file()) if out.is_dir() else \
        out.read_bytes()
    expected = "is a file" if what == "file" else "is not a LoRA adapter folder"
    refused(*train(base, copy if what == "dataset" else dataset, out, "--max-steps", "1"), expected=expected)
    after = sorted((p.name, p.read_bytes()) for p in out.rglob("*") if p.is_file()) if out.is_dir() else \
        out.read_bytes()
    assert after == before
    assert not (tmp_path / "checkpoints").exists()  # refused before training


# 2. nothing to learn: said so, with the dataset hint; the max-length hint only when truncation is the cause
@pytest.mark.parametrize("rows", ["empty", "no-assistant"])
def test_nothing_to_learn_names_the_file(base: Path, tmp_path: Path, rows: str) -> None:
    data = tmp_path / "ds"
    no_answer = {"messages": ROW["messages"][:2]}
    path = write_rows(data, [] if rows == "empty" else [no_answer] * 3)
    expected = f"{path} is empty" if rows == "empty" else f"{path} has no assistant turn"
    output = refused(*train(base, data, tmp_path / "out", "--max-steps", "1"), expected=expected)
    assert "taxreg dataset build" in output and "--max-length" not in output


def test_truncation_still_says_raise_max_length(base: Path, tmp_path: Path) -> None:
    data = tmp_path / "ds"
    long_prompt = {"messages": [{"role": "user", "content": "owl " * 200}, ROW["messages"][2]]}
    write_rows(data, [long_prompt] * 2)
    refused(*train(base, data, tmp_path / "out", "--max-steps", "1"), expected="raise --max-length")


# 3. unreadable dataset files: path and line
def test_non_utf8_train_file_names_path_and_line(base: Path, tmp_path: Path) -> None:
    data = tmp_path / "ds"
    path = write_rows(data, [ROW] * 2)
    path.write_bytes(path.read_bytes() + b'{"messages": "caf\xe9"}\n')
    output = refused(*train(base, data, tmp_path / "out", "--max-steps", "1"), expected=f"{path}:3: not UTF-8")
    assert "UnicodeDecodeError" not in output


def test_train_file_that_is_a_folder(base: Path, tmp_path: Path) -> None:
    data = tmp_path / "ds"
    (data / "train.jsonl").mkdir(parents=True)
    refused(*train(base, data, tmp_path / "out"), expected=f"{data / 'train.jsonl'} is not a file")


# 4. outputs that cannot be written are found before any work
def test_unwritable_out_and_checkpoints_are_refused_first(base: Path, dataset: Path, tmp_path: Path,
                                                          read_only: Path) -> None:
    refused(*train(base, dataset, read_only / "adapter", "--max-steps", "1"), expected="--out")
    result = invoke("train", "--base-model", str(base), "--dataset", str(dataset), "--out",
                    str(tmp_path / "adapter"), "--checkpoints", str(read_only / "ck"), *FAST, "--max-steps", "1")
    assert result.exit_code == 2 and "--checkpoints" in result.output and "cannot be written" in result.output
    assert not (tmp_path / "adapter").exists()
    refused("model", "init", "--out", str(read_only / "base"), *TINY, expected="cannot be written")


# 5, 6. model init: odd head size, an --out whose config.json is not an object
def test_odd_head_size_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "base"
    refused("model", "init", "--out", str(out), *TINY, "--hidden", "12", "--heads", "4", expected="even")
    assert not out.exists()


def test_init_out_with_a_non_object_config_is_not_a_demo_folder(tmp_path: Path) -> None:
    out = tmp_path / "base"
    out.mkdir()
    (out / "config.json").write_text("[1]", encoding="utf-8")
    refused("model", "init", "--out", str(out), *TINY, expected="is not a taxreg demo model")
    assert (out / "config.json").read_text(encoding="utf-8") == "[1]"


# 7. a damaged newest checkpoint is dropped: the run starts from the one before it (here: from scratch)
def test_damaged_checkpoint_is_dropped_not_resumed(base: Path, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "adapter"
    args = train(base, dataset, out, "--max-steps", "3", "--save-steps", "1")
    assert invoke(*args).exit_code == 0
    [damaged] = list((tmp_path / "checkpoints").glob("*/checkpoint-2"))
    optimizer = damaged / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[: optimizer.stat().st_size // 2])
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "resumed from step" not in result.output
    config = json.loads((out / "training_config.json").read_text(encoding="utf-8"))
    assert config["results"]["global_step"] == 3


# 8. Ctrl-C says what was kept and exits 130
def test_ctrl_c_says_the_outputs_are_intact(base: Path, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "adapter"
    # Python leaves SIGINT alone when it starts ignored, as in a shell's background jobs (CI may run us so);
    # at a terminal, Ctrl-C raises KeyboardInterrupt, which this handler restores
    interruptible = [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                                           "from builder.cli import main; main()"]
    process = subprocess.Popen([*interruptible, *train(base, dataset, out, "--max-steps", "100000")], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith("train step"):
            break
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=60)[1]
    assert process.returncode == 130, "".join(lines) + rest
    assert "interrupted:" in rest and "left as they were" in rest and "resume" in rest
    assert "Traceback" not in rest and not out.exists()


# 9. temp folders a killed run left beside its output are removed by the next run; nothing else is
def stale_and_kept(parent: Path, name: str) -> tuple[list[Path], list[Path]]:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)
    stale = [parent / f".{name}.tmp-0123456789ab", parent / f".{name}.tmp-{gone.stdout.strip()}-0123456789ab"]
    kept = [parent / f".{name}.tmp-{os.getpid()}-0123456789ab",  # a live process: maybe still writing
            parent / f".{name}.tmpx", parent / ".other.tmp-0123456789ab", parent / f".{name}.old-0123456789ab"]
    for path in stale + kept:
        path.mkdir(parents=True, exist_ok=True)
        (path / "file").write_text("x", encoding="utf-8")
    return stale, kept


def test_stale_temp_folders_are_removed(base: Path, dataset: Path, tmp_path: Path) -> None:
    stale, kept = stale_and_kept(tmp_path, "adapter")
    assert invoke(*train(base, dataset, tmp_path / "adapter", "--max-steps", "1")).exit_code == 0
    stale_base, kept_base = stale_and_kept(tmp_path, "base")
    assert invoke("model", "init", "--out", str(tmp_path / "base"), *TINY).exit_code == 0
    assert not [p for p in stale + stale_base if p.exists()]
    assert all((p / "file").is_file() for p in kept + kept_base)


# 10. help and checks agree; a file as --base-model
def test_step_and_epoch_limits_agree_with_the_help(base: Path, dataset: Path, tmp_path: Path) -> None:
    help_text = invoke("train", "--help").output
    assert "x>=0.0" not in help_text and "-1: off" in help_text
    refused(*train(base, dataset, tmp_path / "out", "--epochs", "0"), expected="--epochs must be > 0")
    result = invoke(*train(base, dataset, tmp_path / "out", "--max-steps", "-3"))
    assert result.exit_code == 2 and "--max-steps" in result.output
    refused(*train(base, dataset, tmp_path / "out", "--max-steps", "0"), expected="--max-steps must be >= 1")


def test_base_model_that_is_a_file(dataset: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    refused(*train(afile, dataset, tmp_path / "out"), expected="a file, not a folder")
