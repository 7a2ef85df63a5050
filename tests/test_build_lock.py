"""One writer per build folder (issue 17.2): every command that writes a build folder takes its lock, with real
processes holding it; and a cut ships only what its gates saw, from a dataset of the catalog as it is."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.layout import BuildLayout
from builder.release import cut as cut_module
from builder.release.cut import CutOptions, cut_release
from registry.catalog.connection import open_catalog
from registry.catalog.indexer import index
from registry.errors import RegistryError
from tests.conftest import EXAMPLE_TAXONOMY, REPO, TaxonomyMaker, skill_yaml
from tests.releasing import build_data, rows

runner = CliRunner()


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def data_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_data(tmp_path_factory.mktemp("locked") / "build")


@pytest.fixture
def held(data_built: Path, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A copy of the built folder whose lock another process holds until the returned file exists."""
    build = Path(shutil.copytree(data_built, tmp_path / "build"))
    holding, done = tmp_path / "holding", tmp_path / "done"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time, pathlib\nfrom builder.buildlock import build_lock\n"
        f"with build_lock(pathlib.Path({str(build)!r})):\n"
        f"    pathlib.Path({str(holding)!r}).touch()\n"
        f"    while not pathlib.Path({str(done)!r}).exists():\n        time.sleep(0.05)\n")], cwd=REPO)
    try:
        _wait_for(holding)
        yield build, done
    finally:
        done.touch()
        holder.wait(timeout=30)


def commands(build: Path) -> dict[str, list[str]]:
    """Every command that writes a build folder, pointed at `build` by the paths it takes."""
    layout, tax = BuildLayout(build), str(EXAMPLE_TAXONOMY)
    catalog, model = ["--catalog", str(layout.catalog)], layout.model
    return {
        "index": ["index", tax, *catalog],
        "generate": ["generate", tax, *catalog],
        "import-sdg": ["import-sdg", str(build / "nothing"), tax, *catalog],
        "dataset build": ["dataset", "build", *catalog, "--out", str(layout.datasets)],
        "model init": ["model", "init", "--out", str(model.base), "--taxonomy", tax, "--no-catalog"],
        "train": ["train", "--base-model", str(model.base), "--dataset", str(layout.dataset()), "--out",
                  str(model.adapter), *catalog],
        "export": ["export", "--out", str(model.root), "--no-catalog"],
        "site": ["site", *catalog, "--out", str(layout.site)],
        "release cut": ["release", "cut", "9.9.9", "--build-dir", str(build), "--no-model"],
        "takedown": ["takedown", "compositional_skills/linguistics/antonyms", "--reason", "x", "--build-dir",
                     str(build)],
    }


@pytest.mark.parametrize("name", list(commands(Path("build"))))
def test_every_writer_refuses_a_build_folder_another_process_writes(held: tuple[Path, Path], name: str) -> None:
    build, _ = held
    before = rows(build, "SELECT count(*) FROM index_run") + rows(build, "SELECT count(*) FROM run")
    result = runner.invoke(app, commands(build)[name])
    assert result.exit_code == 2, result.output
    assert f"{build} is being written by pid" in result.output and "--wait" in result.output, result.output
    assert rows(build, "SELECT count(*) FROM index_run") + rows(build, "SELECT count(*) FROM run") == before


def test_a_writer_with_wait_queues_behind_the_holder(held: tuple[Path, Path]) -> None:
    build, done = held
    waiting = subprocess.Popen([sys.executable, "-m", "builder.cli", "index", str(EXAMPLE_TAXONOMY), "--catalog",
                                str(build / "catalog.duckdb"), "--wait", "120"], cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)
    assert waiting.poll() is None  # still queued: the holder has the folder
    done.touch()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, out + err
    assert "is being written by pid" in err and "waiting up to 120s" in err


def test_an_index_into_a_catalog_a_cut_is_writing_names_the_cut(data_built: Path, tmp_path: Path,
                                                                make_taxonomy: TaxonomyMaker) -> None:
    """The issue's case: another taxonomy indexed into the catalog of a running release. It is refused by the build
    folder's lock (naming the cut), not left to DuckDB's file lock or, between stages, let in."""
    build = Path(shutil.copytree(data_built, tmp_path / "build"))
    other = make_taxonomy({"compositional_skills/other/qna.yaml": skill_yaml()})
    marker = tmp_path / "assembled"
    cutting = subprocess.Popen([sys.executable, "-m", "builder.cli", "release", "cut", "0.2.0", "--build-dir",
                                str(build), "--no-model"], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env={**os.environ, "TAXREG_TEST_PAUSE_AT": f"assembled:{marker}"})
    try:
        _wait_for(marker)
        result = runner.invoke(app, ["index", str(other), "--catalog", str(build / "catalog.duckdb")])
        assert result.exit_code == 2
        assert "being written by pid" in result.output and "(taxreg release cut 0.2.0" in result.output
    finally:
        cutting.send_signal(signal.SIGKILL)
        cutting.wait(timeout=30)


def test_a_cut_refuses_a_dataset_the_catalog_has_moved_past(data_built: Path, tmp_path: Path,
                                                            make_taxonomy: TaxonomyMaker) -> None:
    """Another taxonomy indexed after the dataset was built (by anything that took no lock): the cut would ship the
    old dataset with the new catalog as its audit copy and the new tree's commit. It is refused instead."""
    build = Path(shutil.copytree(data_built, tmp_path / "build"))
    index(make_taxonomy({"compositional_skills/other/qna.yaml": skill_yaml()}), build / "catalog.duckdb")
    with pytest.raises(RegistryError, match="is not the dataset of the catalog as it is now") as refused:
        cut_release(CutOptions("0.2.0", build, with_model=False))
    assert "no longer come from a current leaf" in str(refused.value) and "dataset build" in (refused.value.hint or "")
    assert not (build / "releases" / "0.2.0").exists()
    assert rows(build, "SELECT count(*) FROM release") == [(0,)]


def test_a_cut_refuses_when_the_catalog_changes_between_its_gates_and_its_commit(
        data_built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = Path(shutil.copytree(data_built, tmp_path / "build"))

    def takedown_meanwhile(point: str) -> None:  # another connection writes once the files are assembled
        if point == "assembled":
            with open_catalog(build / "catalog.duckdb") as con:
                con.execute("INSERT INTO takedown (subject, subject_kind, reason, taken_down_at) VALUES "
                            "('compositional_skills/linguistics/antonyms', 'contribution', 'x', now())")

    monkeypatch.setattr(cut_module, "_checkpoint", takedown_meanwhile)
    with pytest.raises(RegistryError, match=r"the catalog changed while release 0\.2\.0 was being cut"):
        cut_release(CutOptions("0.2.0", build, with_model=False))
    assert not (build / "releases" / "0.2.0").exists()
    assert rows(build, "SELECT count(*) FROM release") == [(0,)]


def test_an_output_belongs_to_the_build_folder_whose_layout_puts_it_there(tmp_path: Path) -> None:
    build = BuildLayout(tmp_path / "build")
    for place in (build.model.base, build.model.onnx_int8, build.site, build.dataset("mine"), build.catalog):
        assert BuildLayout.owning(place) == build, place
    assert BuildLayout.owning(tmp_path / "somewhere" / "mymodel") is None
