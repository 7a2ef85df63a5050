"""`taxreg build`'s stage runner on the data stages: skipping, re-running what changed, failing safely."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from builder import settings
from builder.pipeline import BuildOptions, StageReport, run_build
from registry.errors import ValidationFailed
from tests.conftest import EXAMPLE_TAXONOMY, skill_yaml


def _data_only(options: BuildOptions) -> BuildOptions:
    return BuildOptions(options.taxonomy, options.build_dir, seed=options.seed, site=False, model=False)


def _build(taxonomy: Path, build_dir: Path) -> dict[str, StageReport]:
    seen: list[list[str]] = []
    reports = run_build(_data_only(BuildOptions(taxonomy, build_dir)), settings.load().validation(),
                        lambda rs: seen.append([r.status for r in rs]))
    assert seen and all(s in ("pending", "running", "ran", "skipped") for snap in seen for s in snap)
    return {r.name: r for r in reports}


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def taxonomy(tmp_path: Path) -> Path:
    root = tmp_path / "taxonomy"
    shutil.copytree(EXAMPLE_TAXONOMY, root)
    return root


def test_unchanged_inputs_skip_and_an_edit_reruns_what_depends_on_it(taxonomy: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    first = _build(taxonomy, build)
    assert [r.status for r in first.values()] == ["ran", "ran", "ran"]
    dataset = _digest(build / "datasets" / "default")
    assert {"train.parquet", "test.parquet", "README.md", "croissant.json"} <= set(dataset)

    second = _build(taxonomy, build)
    assert [r.status for r in second.values()] == ["skipped", "skipped", "skipped"]
    assert _digest(build / "datasets" / "default") == dataset

    leaf = taxonomy / "compositional_skills" / "writing" / "new leaf" / "qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text(skill_yaml(5, created_by="newcomer", prefix="Fresh question"), encoding="utf-8")
    shutil.copy(next(taxonomy.rglob("attribution.txt")), leaf.parent / "attribution.txt")
    third = _build(taxonomy, build)
    assert [r.status for r in third.values()] == ["ran", "ran", "ran"]
    assert third["generate"].stats["kept"] > 0
    assert _digest(build / "datasets" / "default") != dataset


def test_deleting_an_output_or_the_catalog_reruns_the_stage(taxonomy: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    _build(taxonomy, build)
    (build / "datasets" / "default" / "train.parquet").unlink()
    assert _build(taxonomy, build)["dataset"].status == "ran"
    (build / "catalog.duckdb").unlink()
    statuses = [r.status for r in _build(taxonomy, build).values()]
    assert statuses == ["ran", "ran", "ran"]


def test_invalid_leaf_fails_the_build_and_keeps_the_previous_outputs(taxonomy: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    _build(taxonomy, build)
    before = _digest(build / "datasets" / "default")
    broken = next(taxonomy.rglob("qna.yaml"))
    broken.write_text("version: 3\nseed_examples: [\n", encoding="utf-8")
    with pytest.raises(ValidationFailed):
        _build(taxonomy, build)
    assert _digest(build / "datasets" / "default") == before
    con = duckdb.connect(str(build / "catalog.duckdb"), read_only=True)
    statuses = [s for (s,) in con.execute("SELECT status FROM build ORDER BY started_at").fetchall()]
    con.close()
    assert statuses == ["succeeded", "failed"]
