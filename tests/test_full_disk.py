"""A full disk says "no space left on <folder>" from every command (issue 17.10), whatever library was writing
(Python, DuckDB, mkdocs, onnx), and leaves the previous outputs as they were. Real RAM disks, filled up."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from tests.conftest import EXAMPLE_TAXONOMY, fill
from tests.releasing import build_data

runner = CliRunner()
Tmpfs = Callable[[str], Path]


@pytest.fixture(scope="module")
def data_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_data(tmp_path_factory.mktemp("disk") / "build")


def said_full(result: object, disk: Path) -> None:
    output = getattr(result, "output", "")
    assert getattr(result, "exit_code", None) == 2, output
    assert f"error: no space left on {disk}" in output and f"df -h {disk}" in output, output
    assert "Traceback" not in output and "IOException" not in output and "Errno" not in output, output


def test_dataset_build_on_a_full_disk(data_built: Path, tmpfs: Tmpfs) -> None:
    disk = tmpfs("1m")
    fill(disk, 60_000)
    result = runner.invoke(app, ["dataset", "build", "--catalog", str(data_built / "catalog.duckdb"), "--out",
                                 str(disk / "datasets")])
    said_full(result, disk)
    assert not (disk / "datasets" / "default").exists()


def test_site_on_a_full_disk(data_built: Path, tmpfs: Tmpfs) -> None:
    disk = tmpfs("1m")
    result = runner.invoke(app, ["site", "--catalog", str(data_built / "catalog.duckdb"), "--out", str(disk / "site"),
                                 "--no-audit"])
    said_full(result, disk)
    assert not (disk / "site").exists()


def test_the_catalog_on_a_full_disk(data_built: Path, tmpfs: Tmpfs, make_taxonomy: object) -> None:
    disk = tmpfs("16m")
    catalog = disk / "catalog.duckdb"
    shutil.copyfile(data_built / "catalog.duckdb", catalog)
    taxonomy = Path(shutil.copytree(EXAMPLE_TAXONOMY, disk.parent / "taxonomy"))
    leaf = taxonomy / "compositional_skills/linguistics/antonyms/qna.yaml"
    leaf.write_text(leaf.read_text(encoding="utf-8").replace("3. Miserly", "3. Mean"), encoding="utf-8")
    (disk / ".taxreg").mkdir()
    fill(disk, 8_192)
    result = runner.invoke(app, ["index", str(taxonomy), "--catalog", str(catalog)])
    said_full(result, disk)
    (disk / "fill").unlink()
    again = runner.invoke(app, ["query", "SELECT count(*) FROM index_run", "--catalog", str(catalog)])
    assert again.exit_code == 0, again.output  # the previous catalog is intact


@pytest.mark.slow
def test_export_on_a_full_disk_is_not_a_corrupt_wire_format(tmp_path: Path, tmpfs: Tmpfs) -> None:
    """onnx's shape inference writes its copy unchecked: on a full disk it read back as 'Wire format was corrupt'."""
    base = tmp_path / "base"
    made = runner.invoke(app, ["model", "init", "--out", str(base), "--no-catalog", "--taxonomy",
                               str(EXAMPLE_TAXONOMY)])
    assert made.exit_code == 0, made.output
    disk = tmpfs("60m")
    fill(disk, 40_000_000)  # the fp32 graph fits; the int8 step's copies do not
    result = runner.invoke(app, ["export", "--base-model", str(base), "--no-adapter", "--out", str(disk / "model"),
                                 "--no-catalog"])
    said_full(result, disk)
    assert "Wire format" not in result.output and not (disk / "model" / "onnx").exists()
