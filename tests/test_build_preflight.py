"""`taxreg build` refuses bad options before it opens the catalog (nothing changes), clears what killed model
stages left, and prints findings with their line numbers intact. Real catalog, real CLI, real files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder import settings
from builder.cli import app
from builder.pipeline import run_build
from builder.stage import BuildOptions
from registry.catalog.indexer import index
from tests.conftest import EXAMPLE_TAXONOMY

runner = CliRunner()


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    build = tmp_path / "build"
    build.mkdir()
    index(EXAMPLE_TAXONOMY, build / "catalog.duckdb")
    return build


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("args", "env", "words"), [
    (["--force", "bogus"], {}, "--force bogus: no such stage"),
    (["--release", "0.3.0\n"], {}, "--release"),
    (["--release", "../escape"], {}, "must be 1-64 letters"),
    (["--license", "NOT(("], {}, "is not an SPDX license expression"),
    ([], {"SOURCE_DATE_EPOCH": "garbage"}, "SOURCE_DATE_EPOCH='garbage' is not a whole number"),
    ([], {"SOURCE_DATE_EPOCH": "-5"}, "is not a whole number"),
])
def test_bad_options_fail_before_the_catalog_is_touched(indexed: Path, args: list[str], env: dict[str, str],
                                                        words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = sha(indexed / "catalog.duckdb")
    result = runner.invoke(app, ["build", str(EXAMPLE_TAXONOMY), "--build-dir", str(indexed), *args])
    assert result.exit_code == 2, result.output
    assert words in result.output and "hint: " in result.output and "Traceback" not in result.output
    assert sha(indexed / "catalog.duckdb") == before
    assert not (indexed / ".taxreg" / "stages.json").exists() and not (indexed / "datasets").exists()  # no stage ran


def test_a_missing_taxonomy_fails_first(indexed: Path, tmp_path: Path) -> None:
    before = sha(indexed / "catalog.duckdb")
    result = runner.invoke(app, ["build", str(tmp_path / "nowhere"), "--build-dir", str(indexed)])
    assert result.exit_code == 2 and "is not a directory" in result.output
    assert sha(indexed / "catalog.duckdb") == before


def test_temporary_folders_of_killed_model_stages_are_cleared(tmp_path: Path) -> None:
    build = tmp_path / "build"
    model = build / "model"
    dead = [model / ".export-999999999-0123456789ab", model / ".export-0123456789ab",
            model / ".adapter.tmp-999999999-0123456789ab", model / ".base.tmp-0123456789ab"]
    live = [model / f".export-{os.getpid()}-0123456789ab", model / "keep-me"]
    for folder in dead + live:
        folder.mkdir(parents=True)
    options = BuildOptions(EXAMPLE_TAXONOMY, build, site=False, model=False)  # the model stages do not even run
    run_build(options, settings.load().validation(), lambda reports: None)
    assert not [p for p in dead if p.exists()] and all(p.exists() for p in live)


def test_line_numbers_are_printed_as_numbers(tmp_path: Path) -> None:
    leaf = tmp_path / "taxonomy" / "compositional_skills" / "writing" / "qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text("".join(f"# note {i}\n" for i in range(99)) + "version: 2\n  bad: [unclosed\n")
    result = runner.invoke(app, ["validate", str(tmp_path / "taxonomy")])
    assert result.exit_code == 1
    assert "qna.yaml:100:" in result.output or "qna.yaml:101:" in result.output
    assert "\U0001f4af" not in result.output  # rich's :100: emoji
