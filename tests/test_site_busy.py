"""`taxreg site` while another process writes the catalog (issue 17.11): it says that the catalog is being written
(not mkdocs' "Aborted with a BuildError!"), waits for the writer with --wait, and --debug shows the cause."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.site.build import _cause
from registry.errors import CatalogError
from tests.conftest import REPO
from tests.releasing import build_data

runner = CliRunner()


@pytest.fixture(scope="module")
def data_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_data(tmp_path_factory.mktemp("busy") / "build")


@pytest.fixture
def writer(data_built: Path, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Another process holds the catalog read-write (as `taxreg index` does) without the build folder's lock,
    until the returned file exists."""
    holding, done = tmp_path / "holding", tmp_path / "done"
    catalog = data_built / "catalog.duckdb"
    process = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, pathlib, time\n"
        f"con = duckdb.connect({str(catalog)!r})\n"
        f"pathlib.Path({str(holding)!r}).touch()\n"
        f"while not pathlib.Path({str(done)!r}).exists():\n    time.sleep(0.05)\n"
        "con.close()\n")], cwd=REPO)
    deadline = time.monotonic() + 60
    while not holding.exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    try:
        yield catalog, done
    finally:
        done.touch()
        process.wait(timeout=30)


def test_it_says_the_catalog_is_being_written_and_debug_shows_why(writer: tuple[Path, Path], tmp_path: Path) -> None:
    catalog, _ = writer
    args = ["site", "--catalog", str(catalog), "--out", str(tmp_path / "site")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"the catalog {catalog} is in use by another process" in result.output
    assert "--wait SECONDS" in result.output and "BuildError" not in result.output
    debug = runner.invoke(app, ["--debug", *args])
    assert debug.exit_code == 2 and "Traceback" in debug.output
    assert "Conflicting lock" in debug.output or "Could not set lock" in debug.output  # DuckDB's own words


def test_with_wait_it_builds_once_the_writer_is_done(writer: tuple[Path, Path], tmp_path: Path) -> None:
    catalog, done = writer
    releaser = subprocess.Popen([sys.executable, "-c", f"import time, pathlib; time.sleep(2); "
                                                       f"pathlib.Path({str(done)!r}).touch()"])
    result = runner.invoke(app, ["site", "--catalog", str(catalog), "--out", str(tmp_path / "site"), "--no-audit",
                                 "--wait", "60"])
    releaser.wait(timeout=30)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "site" / "index.html").is_file()


def test_a_hook_s_error_is_reported_in_its_own_words() -> None:
    """mkdocs turns a hook's error into Abort('Aborted with a BuildError!'); the site reports what the hook raised."""
    from mkdocs.exceptions import Abort, PluginError

    try:
        try:
            try:
                raise CatalogError("the catalog x is too new", hint="upgrade taxonomy-registry")
            except CatalogError as exc:
                raise PluginError(str(exc)) from exc
        except PluginError:
            raise Abort("Aborted with a BuildError!") from None
    except Abort as aborted:
        cause = _cause(aborted)
    assert str(cause) == "the catalog x is too new" and cause.hint == "upgrade taxonomy-registry"
