"""The stage runner's contract, on real data stages and real catalogs: a new stage is one module whose `needs`
fold into its key, the order is checked, a failed COMMIT says why, SOURCE_DATE_EPOCH is refused the same way by
every command, a forged release folder is never adopted, and the same build reached by another path skips."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from builder import settings
from builder.cli import app
from builder.pipeline import StageReport, run_build
from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult
from builder.stages import STAGES
from registry.catalog.connection import open_catalog, transaction
from registry.errors import CatalogError, RegistryError
from registry.release.manifest import read_manifest
from tests.conftest import EXAMPLE_TAXONOMY
from tests.releasing import build_data, cut

runner = CliRunner()


class Probe(BuildStage):
    """A throwaway stage after the dataset, as a contributor would add one: it counts its runs."""

    name = "probe"
    needs = ("dataset",)

    def __init__(self) -> None:
        self.runs = 0

    def key(self, ctx: BuildContext) -> Any:
        return {"probe": 1}

    def run(self, ctx: BuildContext) -> StageResult:
        self.runs += 1
        return StageResult(f"run {self.runs}")


def data_build(taxonomy: Path, build: Path, stages: tuple[Any, ...] = STAGES, **options: Any) -> dict[str, StageReport]:
    opts = BuildOptions(taxonomy, build, site=False, model=False, **options)
    return {r.name: r for r in run_build(opts, settings.load().validation(), lambda reports: None, stages)}


@pytest.fixture
def taxonomy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy"))


def test_a_new_stage_reruns_when_what_it_needs_changed_and_not_otherwise(taxonomy: Path, tmp_path: Path) -> None:
    probe, build = Probe(), tmp_path / "build"
    stages = (*STAGES, probe)
    assert data_build(taxonomy, build, stages)["probe"].status == "ran"
    assert data_build(taxonomy, build, stages)["probe"].status == "skipped"
    leaf = next(taxonomy.rglob("qna.yaml"))
    leaf.write_text(leaf.read_text(encoding="utf-8") + "# a comment: a new version, the same samples\n",
                    encoding="utf-8")
    again = data_build(taxonomy, build, stages)
    assert (again["generate"].status, again["dataset"].status, again["probe"].status) == ("ran", "ran", "skipped")
    leaf.write_text(leaf.read_text(encoding="utf-8").replace("?", "? (edited)", 1), encoding="utf-8")
    edited = data_build(taxonomy, build, stages)
    assert (edited["dataset"].status, edited["probe"].status) == ("ran", "ran")  # the dataset's bytes changed
    assert probe.runs == 2


def test_a_stage_that_needs_a_later_one_is_refused(taxonomy: Path, tmp_path: Path) -> None:
    probe = Probe()
    with pytest.raises(RegistryError, match="needs dataset, which do not come before it"):
        data_build(taxonomy, tmp_path / "build", (probe, *STAGES))


@pytest.fixture
def tiny_disk(tmpfs: Callable[[str], Path]) -> Path:
    """A 4 MB tmpfs (as root), to fill up."""
    return tmpfs("4m")


def test_a_failed_commit_reports_its_own_error_and_keeps_the_catalog(tiny_disk: Path) -> None:
    catalog = tiny_disk / "catalog.duckdb"
    with open_catalog(catalog) as con:
        con.execute("CREATE TABLE probe (s VARCHAR)")
        con.execute("INSERT INTO probe VALUES ('before')")
        con.execute("CHECKPOINT")
        free = os.statvfs(tiny_disk)
        (tiny_disk / "fill").write_bytes(b"x" * (free.f_bavail * free.f_frsize - 8192))
        with pytest.raises(CatalogError) as failed, transaction(con):  # small enough to reach COMMIT in memory
            con.execute("INSERT INTO probe SELECT repeat('y', 1000) || i FROM range(2000) r(i)")
    assert "No space left on device" in str(failed.value) and "no transaction is active" not in str(failed.value)
    assert "previous catalog is intact" in (failed.value.hint or "")
    (tiny_disk / "fill").unlink()
    with duckdb.connect(str(catalog), read_only=True) as con:
        assert con.execute("SELECT s FROM probe").fetchall() == [("before",)]


@pytest.fixture(scope="module")
def data_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_data(tmp_path_factory.mktemp("built") / "build")


@pytest.mark.parametrize("command", [
    ["build", str(EXAMPLE_TAXONOMY), "--build-dir", "{build}"],
    ["dataset", "build", "--catalog", "{build}/catalog.duckdb", "--out", "{build}/datasets"],
    ["release", "cut", "9.0.0", "--build-dir", "{build}", "--no-model"],
    ["export", "--base-model", "{build}/nothing", "--out", "{build}/model", "--no-catalog"],
])
def test_a_bad_source_date_epoch_gets_the_same_message_from_every_command(
        data_built: Path, tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    build = Path(shutil.copytree(data_built, tmp_path / "build"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "abc")
    result = runner.invoke(app, [part.replace("{build}", str(build)) for part in command])
    assert result.exit_code == 2, result.output
    assert "error: SOURCE_DATE_EPOCH='abc' is not a whole number of seconds since 1970" in result.output
    assert "hint: unset it" in result.output and "Traceback" not in result.output
    assert not (build / "releases" / "9.0.0").exists()


def test_a_forged_release_folder_is_never_adopted(data_built: Path, tmp_path: Path) -> None:
    """A self-consistent folder (every gate marked passed, SHA256SUMS and manifest in agreement) that no cut of
    this catalog started is refused; the catalog records no release."""
    other = Path(shutil.copytree(data_built, tmp_path / "other"))
    forged = cut(other, "9.9.8")  # a real release of another catalog: as consistent as a forgery can be
    build = Path(shutil.copytree(data_built, tmp_path / "build"))
    shutil.copytree(forged, build / "releases" / "9.9.8")
    result = runner.invoke(app, ["release", "cut", "9.9.8", "--build-dir", str(build), "--no-model"])
    assert result.exit_code == 2 and "no interrupted cut of 9.9.8 in this catalog wrote it" in result.output
    with duckdb.connect(str(build / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM release").fetchall() == [(0,)]


def test_the_same_build_reached_by_another_path_skips_its_stages(
        taxonomy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = data_build(taxonomy, Path("build"), release="0.1.0")
    assert first["release"].status == "ran"
    again = data_build(taxonomy, tmp_path / "build", release="0.1.0")  # absolute this time
    assert {r.status for r in again.values()} == {"skipped"}, {n: r.status for n, r in again.items()}
    assert read_manifest(tmp_path / "build" / "releases" / "0.1.0")[0].version == "0.1.0"
