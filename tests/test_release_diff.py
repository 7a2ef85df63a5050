"""`taxreg release diff` as a report (issue 16.3): the changed seed text as a unified diff, values in words (no
Python reprs), a metric that got worse marked, files summarised by folder, and a documented JSON structure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from registry.release.canonical import canonical_bytes
from registry.release.manifest import read_manifest
from tests.conftest import EXAMPLE_TAXONOMY
from tests.releasing import build_data, cut

runner = CliRunner()
LEAF = "compositional_skills/linguistics/antonyms"


@pytest.fixture(scope="module")
def two_releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.0.0, then one answer edited and 1.1.0."""
    work = tmp_path_factory.mktemp("diff")
    taxonomy = Path(shutil.copytree(EXAMPLE_TAXONOMY, work / "taxonomy"))
    build = build_data(work / "build", taxonomy)
    cut(build, "1.0.0")
    leaf = taxonomy / LEAF / "qna.yaml"
    leaf.write_text(leaf.read_text(encoding="utf-8").replace("3. Miserly", "3. Mean"), encoding="utf-8")
    build_data(build, taxonomy)
    cut(build, "1.1.0")
    return build


def with_metrics(release: Path, target: Path, int8: float) -> Path:
    """A copy of a release whose manifest carries model metrics (a data-only cut has none), as an export gives."""
    shutil.copytree(release, target)
    data = json.loads((target / "manifest.json").read_bytes())
    data["metrics"] = {"parity": {"passed": True, "variants": {
        "fp32": {"top1_agreement": 1.0, "max_abs_diff": 2.4e-7, "passed": True},
        "int8": {"top1_agreement": int8, "max_abs_diff": 0.012, "passed": True,
                 "thresholds": {"top1_agreement": 0.95}}}}}
    (target / "manifest.json").write_bytes(canonical_bytes(data))
    return target


def test_the_report_shows_the_changed_text_and_summarises_files(two_releases: Path) -> None:
    result = runner.invoke(app, ["release", "diff", "1.0.0", "1.1.0", "--build-dir", str(two_releases)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"changed  {LEAF}" in out
    assert f"--- {LEAF} @ " in out and "-     3. Miserly" in out and "+     3. Mean" in out
    assert "{" not in out and "'" not in out  # no dict or list reprs
    files = [line for line in out.splitlines() if line.startswith("files:")]
    assert len(files) == 1 and "data/ 4 changed" in files[0] and "audit/" in files[0]
    assert not any(line.startswith("files: data/train.parquet") for line in out.splitlines())
    every = runner.invoke(app, ["release", "diff", "1.0.0", "1.1.0", "--build-dir", str(two_releases), "--files"])
    assert "  data/train.parquet: " in every.stdout or "  data/test.parquet: " in every.stdout


def test_a_metric_that_fell_beyond_the_threshold_is_marked(two_releases: Path, tmp_path: Path) -> None:
    releases = two_releases / "releases"
    old = with_metrics(releases / "1.0.0", tmp_path / "old", 0.994)
    new = with_metrics(releases / "1.1.0", tmp_path / "new", 0.970)
    result = runner.invoke(app, ["release", "diff", str(old), str(new)])
    assert result.exit_code == 0, result.output
    assert "! metrics: parity.variants.int8.top1_agreement: 99.4% -> 97.0% (worse)" in result.stdout
    assert "1 metric(s) worse" in result.stderr
    slight = with_metrics(releases / "1.1.0", tmp_path / "slight", 0.992)  # within half a point: not marked
    quiet = runner.invoke(app, ["release", "diff", str(old), str(slight)])
    assert "metrics: parity.variants.int8.top1_agreement: 99.4% -> 99.2%" in quiet.stdout
    assert "(worse)" not in quiet.stdout


def test_json_is_the_documented_structure(two_releases: Path, tmp_path: Path) -> None:
    releases = two_releases / "releases"
    old = with_metrics(releases / "1.0.0", tmp_path / "old", 0.994)
    new = with_metrics(releases / "1.1.0", tmp_path / "new", 0.970)
    data = json.loads(runner.invoke(app, ["release", "diff", str(old), str(new), "--format", "json"]).stdout)
    assert data["kind"] == "taxonomy-registry/release-diff" and data["schema_version"] == 1
    assert (data["old"], data["new"]) == ("1.0.0", "1.1.0") and data["reproducible_match"] is False
    assert data["summary"]["contributions"] == {"added": 0, "changed": 1, "removed": 0}
    assert data["summary"]["metrics_worse"] == ["parity.variants.int8.top1_agreement"]
    [change] = data["contributions"]
    assert change["contribution_id"] == LEAF and "+     3. Mean" in change["text_diff"]
    assert len(change["samples_added"]) == len(change["samples_removed"]) == 1
    manifest = read_manifest(new)[0]
    assert {f["path"] for f in data["files"]} <= {f.path for f in manifest.files} | {"manifest.json"}
    assert sum(g["changed"] + g["added"] + g["removed"] for g in data["file_groups"]) == len(data["files"])
    assert set(data) == {"kind", "schema_version", "old", "new", "reproducible_match", "summary", "contributions",
                         "samples", "license_mix", "declared", "policy", "metrics", "files", "file_groups"}
