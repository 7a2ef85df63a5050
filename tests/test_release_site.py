"""The site after a release (issue 16.4): `taxreg build --release` publishes it (the site stage runs after the cut);
a standalone `taxreg release cut` says that the build folder's site does not list it yet."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder import settings
from builder.cli import app
from builder.pipeline import run_build
from builder.stage import BuildOptions
from tests.conftest import EXAMPLE_TAXONOMY

runner = CliRunner()


def test_a_build_publishes_its_release_and_a_standalone_cut_says_the_site_is_stale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    taxonomy, build = Path(shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy")), tmp_path / "build"
    for version in ("1.0.0", "1.1.0"):
        reports = run_build(BuildOptions(taxonomy, build, release=version, model=False),
                            settings.load().validation(), lambda _: None)
        order = [r.name for r in reports]
        assert order.index("site") > order.index("release") and reports[-1].status == "ran"
        assert (build / "site" / "releases" / version / "index.html").is_file()
    cut = runner.invoke(app, ["release", "cut", "1.2.0", "--build-dir", str(build), "--no-model"])
    assert cut.exit_code == 0, cut.output
    assert f"warning: {build / 'site'} does not list release 1.2.0 yet: run `taxreg site`" in cut.stderr
    assert not (build / "site" / "releases" / "1.2.0").exists()
    published = runner.invoke(app, ["site", "--catalog", str(build / "catalog.duckdb"), "--out", str(build / "site"),
                                    "--taxonomy", str(taxonomy)])
    assert published.exit_code == 0, published.output
    assert (build / "site" / "releases" / "1.2.0" / "index.html").is_file()
