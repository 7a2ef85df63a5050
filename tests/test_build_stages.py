"""`taxreg build`'s stage runner on the data stages: skipping, re-running what changed, failing safely."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from builder import settings
from builder.cli import app
from builder.pipeline import StageReport, run_build
from builder.stage import BuildContext, BuildOptions
from builder.stages import base_model
from registry.catalog.indexer import index
from registry.catalog.policy import GateFailed
from registry.errors import RegistryError, ValidationFailed
from registry.release.manifest import read_manifest
from tests.conftest import EXAMPLE_TAXONOMY, TaxonomyMaker, skill_yaml

NC_ATTRIBUTION = """Title of work: Borrowed examples
Link to work: https://example.com/borrowed
Revision: N/A
License of the work: CC-BY-NC-4.0
Creator names: Someone Else
"""


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


def _release_build(taxonomy: Path, build: Path, config: object, license: str | None) -> dict[str, StageReport]:
    options = BuildOptions(taxonomy, build, release="1.0.0", license=license, site=False, model=False)
    return {r.name: r for r in run_build(options, config, lambda rs: None)}


def test_a_declared_release_license_fails_the_build_on_a_non_commercial_leaf(
        make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({
        "compositional_skills/a/ok/qna.yaml": skill_yaml(prefix="Fine"),
        "compositional_skills/a/borrowed/qna.yaml": skill_yaml(prefix="Borrowed"),
        "compositional_skills/a/borrowed/attribution.txt": NC_ATTRIBUTION})
    toml = tmp_path / "taxreg.toml"  # the policy allows the NC leaf; the declared release license does not
    toml.write_text('[validate]\nallowed_licenses = ["CC-BY-4.0", "CC-BY-NC-4.0"]\n\n'
                    '[release]\nlicense = "cc-by-4.0"\n')
    loaded = settings.load(toml)
    assert loaded.release_license == "CC-BY-4.0"
    build = tmp_path / "build"
    with pytest.raises(GateFailed) as refused:
        _release_build(root, build, loaded.validation(), loaded.release_license)
    message = str(refused.value)
    assert "license.compatible" in message and "compositional_skills/a/borrowed (CC-BY-NC-4.0" in message
    assert "license.allowed (" not in message and not (build / "releases" / "1.0.0").exists()

    # Undeclared: the union stands in (it cannot fail license.compatible), and the release says so
    reports = _release_build(root, build, loaded.validation(), None)
    assert reports["release"].status == "ran" and "undeclared" in reports["release"].detail
    warning = reports["release"].stats["warning"]
    assert "release license not declared; using the union CC-BY-4.0 AND CC-BY-NC-4.0" in warning
    manifest, _ = read_manifest(build / "releases" / "1.0.0")
    [declared] = [p for p in manifest.policy if p.rule == "license.declared"]
    assert (declared.severity, declared.passed, declared.details["release_license"]) == (
        "warning", False, "CC-BY-4.0 AND CC-BY-NC-4.0")
    con = duckdb.connect(str(build / "catalog.duckdb"), read_only=True)
    recorded = con.execute("SELECT severity, passed FROM policy_check WHERE rule = 'license.declared' "
                           "ORDER BY checked_at").fetchall()
    con.close()
    assert recorded == [("info", True), ("warning", False)]  # the refused declared cut, then the undeclared one

    bad = tmp_path / "bad.toml"
    bad.write_text('[release]\nlicense = "not a license"\n')
    with pytest.raises(RegistryError, match=r"\[release\] license 'not a license' is not an SPDX"):
        settings.load(bad)


def test_a_rerun_with_the_same_release_skips_the_cut_and_changed_inputs_are_refused(
        taxonomy: Path, tmp_path: Path) -> None:
    build, config = tmp_path / "build", settings.load().validation()
    first = _release_build(taxonomy, build, config, "CC-BY-4.0")
    assert first["release"].status == "ran"
    released = _digest(build / "releases")
    again = _release_build(taxonomy, build, config, "CC-BY-4.0")  # e.g. after a crash in the site stage
    assert [r.status for r in again.values()] == ["skipped"] * 4
    assert again["release"].detail == "release 1.0.0 exists, cut from the same inputs: kept"
    with pytest.raises(RegistryError, match="already exists") as other:  # other options: refused up front
        _release_build(taxonomy, build, config, "CC-BY-SA-4.0")
    assert "new --release version" in (other.value.hint or "")
    done = CliRunner().invoke(app, ["takedown", "compositional_skills/linguistics/antonyms", "--build-dir",
                                    str(build), "--reason", "test"])
    assert done.exit_code == 0, done.output
    with pytest.raises(RegistryError, match="has changed since it was cut"):  # what it would ship changed
        _release_build(taxonomy, build, config, "CC-BY-4.0")
    assert _digest(build / "releases") == released


@pytest.mark.slow  # a real demo model
def test_the_demo_base_model_leaves_out_taken_down_text_and_records_what_it_read(
        taxonomy: Path, tmp_path: Path) -> None:
    from builder.model.demo import DemoSpec, init_demo_model, taxonomy_corpus

    build, config = tmp_path / "build", settings.load().validation()
    catalog = build / "catalog.duckdb"
    index(taxonomy, catalog, config)
    ctx = BuildContext(BuildOptions(taxonomy, build), config)
    key_before = base_model.STAGE.key(ctx)
    leaf = "compositional_skills/linguistics/antonyms"
    con = duckdb.connect(str(catalog), read_only=True)
    [(doc,)] = con.execute("SELECT doc_sha256 FROM source_document ORDER BY 1 LIMIT 1").fetchall()
    con.close()
    for subject in (leaf, doc):
        done = CliRunner().invoke(app, ["takedown", subject, "--build-dir", str(build), "--reason", "test"])
        assert done.exit_code == 0, done.output
    assert base_model.STAGE.key(ctx) != key_before  # a takedown makes a new base model

    full = taxonomy_corpus(taxonomy, config)
    assert leaf in full.contributions and doc in full.documents
    spec = DemoSpec(hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64, vocab=300)
    outcome = init_demo_model(taxonomy, build / "model" / "base", spec, config, catalog=catalog)
    corpus = taxonomy_corpus(taxonomy, config, frozenset({leaf, doc}))
    assert leaf not in corpus.contributions and doc not in corpus.documents and corpus.taken_down == 2
    assert outcome.corpus_sha256 == corpus.sha256 != full.sha256
    antonym_text = (taxonomy / leaf / "qna.yaml").read_text()
    assert not any(t in antonym_text for t in corpus.texts[1:] if len(t) > 20)
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        [(run_id,)] = con.execute("SELECT run_id FROM run WHERE stage = 'init'").fetchall()
        inputs = con.execute("SELECT input_kind, input_id FROM run_input WHERE run_id = ?", [run_id]).fetchall()
        base = con.execute("SELECT kind FROM model_artifact WHERE run_id = ?", [run_id]).fetchall()
        # a takedown of a leaf the tokenizer read names this base model among what it affects
        reader = corpus.contributions[0]
        impact = con.execute("SELECT what, detail FROM takedown_impact(?)", [reader]).fetchall()
        untouched = con.execute("SELECT what FROM takedown_impact(?)", [leaf]).fetchall()
    finally:
        con.close()
    assert sorted(i for k, i in inputs if k == "contribution") == sorted(corpus.contributions)
    assert sorted(i for k, i in inputs if k == "document") == sorted(corpus.documents)
    assert base == [("base",)]
    assert ("model", "base") in impact and ("model",) not in untouched
