"""What releases and the site say about their data: the version and license a release ships after an edit, the
license mix counted once per sample, the gate checks of the cut that made a release (not refused attempts),
`release diff` of declared inputs and gates, takedowns on the site. Real catalogs, real folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.datasets import DatasetOptions, build_dataset
from builder.release.compare import diff_folders
from builder.site.build import SiteOptions, build_site
from builder.site.readmodel import load
from registry.catalog.connection import MIGRATIONS, SCHEMA_VERSION, open_catalog
from registry.catalog.policy import GateFailed
from registry.config import ValidationConfig
from registry.licenses import LicensePolicy
from registry.release.manifest import read_manifest
from tests.conftest import EXAMPLE_TAXONOMY, REPO, TaxonomyMaker, skill_yaml
from tests.releasing import build_data, cut, rows

runner = CliRunner()
LEAF = "compositional_skills/linguistics/antonyms"
WIDE = LicensePolicy(frozenset({"CC-BY-4.0", "CC-BY-NC-4.0", "Apache-2.0", "CC0-1.0"}))
VENDOR = REPO / "build" / "vendor"


def attribution(license_id: str) -> str:
    return ("Title of work: Borrowed examples\nLink to work: https://example.com/borrowed\nRevision: N/A\n"
            f"License of the work: {license_id}\nCreator names: Someone Else\n")


def test_an_edited_leaf_ships_the_version_its_samples_were_generated_from(tmp_path: Path) -> None:
    taxonomy = shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy")
    build = build_data(tmp_path / "build", taxonomy)
    before, _ = read_manifest(cut(build, "1.0.0"))
    leaf = taxonomy / LEAF / "qna.yaml"
    # an edit whose version hash sorts after the old one: a smallest-version pick would keep the old version
    leaf.write_text(leaf.read_text().replace("3. Miserly", "3. Thrifty"))
    build_data(build, taxonomy)
    after, _ = read_manifest(cut(build, "1.1.0"))
    [(old_version, new_version)] = rows(build, f"""
        SELECT min(version_id) FILTER (version_id <> c.current_version_id), any_value(c.current_version_id)
        FROM contribution_version JOIN contribution c USING (contribution_id)
        WHERE contribution_id = '{LEAF}'""")
    assert str(new_version) > str(old_version)
    shipped = {c.contribution_id: c.version_id for c in after.contributions}
    assert shipped[LEAF] == new_version
    assert {c.contribution_id: c.version_id for c in before.contributions}[LEAF] == old_version
    change = diff_folders(build / "releases" / "1.0.0", build / "releases" / "1.1.0").contributions
    assert [(c.contribution_id, c.old_version, c.new_version) for c in change] == [(LEAF, old_version, new_version)]
    # every sample the new release ships is attributed to the new version and to the newest run
    [(newest_run,)] = rows(build, "SELECT run_id FROM run ORDER BY started_at DESC LIMIT 1")
    attributed = rows(build, f"""
        SELECT DISTINCT p.version_id, p.run_id FROM v_sample_provenance p
        JOIN v_release_samples rs USING (sample_id) WHERE rs.release_id = '1.1.0' AND p.contribution_id = '{LEAF}'""")
    assert attributed == [(new_version, newest_run)]


def test_license_mix_counts_each_sample_once_with_one_class_per_license(tmp_path: Path) -> None:
    build = build_data(tmp_path / "build", EXAMPLE_TAXONOMY)
    manifest, _ = read_manifest(cut(build, "1.0.0"))
    mix = {m["license"]: m for m in manifest.license_mix}
    assert len(mix) == len(manifest.license_mix)  # no license under two classes
    assert all(m["license_class"] == "commercial" for m in mix.values())
    # each sample of the embedded taxonomy derives from sources under one license
    assert sum(m["samples"] for m in mix.values()) == manifest.samples["total"]
    summary = rows(build, "SELECT license, license_class, samples FROM v_release_license_summary "
                          "WHERE release_id = '1.0.0' ORDER BY 1")
    assert summary == [(m["license"], m["license_class"], m["samples"]) for m in manifest.license_mix]
    cli = runner.invoke(app, ["release", "show", "1.0.0", "--build-dir", str(build)])
    assert cli.exit_code == 0 and "unspecified" not in cli.output


def test_a_changed_license_follows_the_dataset_when_its_bytes_stay_the_same(
        make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"compositional_skills/a/ok/qna.yaml": skill_yaml(prefix="Fine"),
                          "compositional_skills/a/borrowed/qna.yaml": skill_yaml(prefix="Borrowed"),
                          "compositional_skills/a/borrowed/attribution.txt": attribution("CC-BY-4.0")})
    wide = ValidationConfig(policy=WIDE)
    build = build_data(tmp_path / "build", root, wide)
    cut(build, "1.0.0", policy=WIDE)
    files = {p.name: p.read_bytes() for p in (build / "datasets" / "default").glob("*.*")}
    (root / "compositional_skills/a/borrowed/attribution.txt").write_text(attribution("CC-BY-NC-4.0"))
    build_data(build, root, wide)
    assert {p.name: p.read_bytes() for p in (build / "datasets" / "default").glob("*.parquet")} == {
        n: b for n, b in files.items() if n.endswith(".parquet")}
    assert {lic for (lic,) in rows(build, "SELECT DISTINCT license_expression FROM dataset")} == {
        "CC-BY-4.0 AND CC-BY-NC-4.0"}
    manifest, _ = read_manifest(cut(build, "1.1.0", policy=WIDE))
    assert manifest.license == "CC-BY-4.0 AND CC-BY-NC-4.0"
    assert ("CC-BY-NC-4.0", "non_commercial") in {(m["license"], m["license_class"]) for m in manifest.license_mix}
    assert "CC-BY-NC-4.0" in (build / "releases" / "1.1.0" / "data" / "README.md").read_text()
    listed = runner.invoke(app, ["release", "list", "--build-dir", str(build), "--format", "csv"])
    assert listed.exit_code == 0 and "1.1.0" in listed.output and "CC-BY-4.0 AND CC-BY-NC-4.0" in listed.output
    # release diff names the declared license and the gate outcomes that changed
    result = diff_folders(build / "releases" / "1.0.0", build / "releases" / "1.1.0")
    declared = {v.name: (v.old, v.new) for v in result.declared}
    assert declared == {"license": ("CC-BY-4.0", "CC-BY-4.0 AND CC-BY-NC-4.0")}
    cli = runner.invoke(app, ["release", "diff", "1.0.0", "1.1.0", "--build-dir", str(build)])
    assert cli.exit_code == 0 and "declared: license: CC-BY-4.0 -> CC-BY-4.0 AND CC-BY-NC-4.0" in cli.output


def test_diff_names_overrides_gate_results_commit_and_models(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"compositional_skills/a/ok/qna.yaml": skill_yaml(prefix="Fine"),
                          "compositional_skills/a/borrowed/qna.yaml": skill_yaml(prefix="Borrowed"),
                          "compositional_skills/a/borrowed/attribution.txt": attribution("CC-BY-NC-4.0")})
    build = build_data(tmp_path / "build", root, ValidationConfig(policy=WIDE))
    cut(build, "1.0.0", policy=WIDE)
    con = open_catalog(build / "catalog.duckdb")
    try:  # the run stands in for a teacher run; the index for one of a git tree
        con.execute("INSERT INTO external_model (model_ref, license_spdx, output_terms) VALUES "
                    "('teacher-x', 'Apache-2.0', 'Apache-2.0')")
        con.execute("UPDATE run SET teacher_model_ref = 'teacher-x'")
        con.execute("UPDATE index_run SET taxonomy_commit = 'c0ffee'")
    finally:
        con.close()
    cut(build, "2.0.0", license="CC-BY-4.0", allow=("license.compatible",), policy=WIDE)
    result = diff_folders(build / "releases" / "1.0.0", build / "releases" / "2.0.0")
    declared = {v.name: (v.old, v.new) for v in result.declared}
    assert declared["license"] == ("CC-BY-4.0 AND CC-BY-NC-4.0", "CC-BY-4.0")
    assert declared["allowed"] == ([], ["license.compatible"])
    assert declared["taxonomy_commit"] == (None, "c0ffee")
    assert declared["teacher_models"][0] == [] and declared["teacher_models"][1][0]["model_ref"] == "teacher-x"
    policy = {v.name: (v.old, v.new) for v in result.policy}
    assert policy["license.compatible compositional_skills/a/borrowed"] == (None, "overridden (error)")
    assert policy["license.compatible *"] == ("passed (error)", None)
    assert policy["teacher.terms teacher-x"] == (None, "passed (error)")


def test_release_checks_are_those_of_the_cut_that_made_it_and_takedowns_show(
        make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"compositional_skills/a/ok/qna.yaml": skill_yaml(prefix="Fine"),
                          "compositional_skills/a/borrowed/qna.yaml": skill_yaml(prefix="Borrowed"),
                          "compositional_skills/a/borrowed/attribution.txt": attribution("CC-BY-NC-4.0")})
    build = build_data(tmp_path / "build", root, ValidationConfig(policy=WIDE))
    with pytest.raises(GateFailed):
        cut(build, "1.0.0", license="CC-BY-4.0")
    manifest, _ = read_manifest(cut(build, "1.0.0", license="CC-BY-4.0",
                                    allow=("license.allowed", "license.compatible")))
    assert rows(build, "SELECT attempt, count(*) FILTER (NOT passed AND NOT overridden) FROM policy_check "
                       "GROUP BY 1 ORDER BY 1") == [(1, 2), (2, 0)]
    checks = rows(build, "SELECT rule, subject, passed, overridden FROM v_release_checks ORDER BY 1, 2")
    assert checks == sorted((p.rule, p.subject, p.passed, p.overridden) for p in manifest.policy)
    taken = runner.invoke(app, ["takedown", "compositional_skills/a/borrowed", "--build-dir", str(build),
                                "--reason", "the author withdrew permission", "--by", "legal@example.com"])
    assert taken.exit_code == 0, taken.output
    build_dataset(build / "catalog.duckdb", build / "datasets", DatasetOptions())  # a second build of the dataset
    data = load(build / "catalog.duckdb")
    assert [(c["rule"], c["subject"], c["passed"], c["overridden"]) for c in
            data.release_details["1.0.0"]["checks"]] == checks
    site = tmp_path / "site"
    build_site(SiteOptions(build / "catalog.duckdb", site, root, VENDOR, audit=False))
    release = (site / "releases" / "1.0.0" / "index.html").read_text()
    assert release.count("<td>license.allowed</td>") == 1  # the overridden row, not the refused attempt's
    assert "Holds content since taken down" in release and "the author withdrew permission" in release
    assert "legal@example.com" in release
    down = (site / "contributions" / "compositional_skills" / "a" / "borrowed" / "index.html").read_text()
    assert "taken down" in down and "the author withdrew permission" in down and "legal@example.com" in down
    [(when,)] = rows(build, "SELECT strftime(timezone('UTC', taken_down_at), '%Y-%m-%d %H:%M:%S UTC') "
                            "FROM takedown")  # as the site shows times: UTC to the second
    assert str(when) in down
    ok = (site / "contributions" / "compositional_skills" / "a" / "ok" / "index.html").read_text()
    ids = {str(i)[:12] for (i,) in rows(build, "SELECT dataset_id FROM dataset WHERE split = 'train' "
                                               "AND format = 'jsonl'")}
    assert len(ids) == 2 and all(i in ok for i in ids)  # the two builds of train.jsonl, told apart
    run_page = next((site / "runs").glob("*/index.html")).read_text()
    assert "<code title=\"None\"></code>" not in run_page and "none (the taxonomy was not a git tree)" in run_page


def test_schema_3_catalogs_get_attempts_from_their_check_times(tmp_path: Path) -> None:
    from importlib.resources import files

    path = tmp_path / "catalog.duckdb"
    con = duckdb.connect(str(path))
    try:
        for script in MIGRATIONS[:3]:
            con.execute(files("registry.catalog").joinpath(script).read_text(encoding="utf-8"))
        con.execute("INSERT INTO catalog_meta VALUES ('schema_version', '3')")
        con.execute("INSERT INTO release (release_id, status, released_at, path, manifest_sha256) "
                    "VALUES ('1.0.0', 'published', now(), 'x', 'y')")
        con.execute("""INSERT INTO policy_check (release_id, rule, subject, severity, passed, overridden, checked_at)
                       VALUES ('1.0.0', 'license.allowed', 'a', 'error', false, false, TIMESTAMPTZ '2026-01-01'),
                              ('1.0.0', 'license.allowed', '*', 'error', true, false, TIMESTAMPTZ '2026-01-02'),
                              ('2.0.0', 'license.allowed', 'b', 'error', false, false, TIMESTAMPTZ '2026-01-03')""")
    finally:
        con.close()
    migrated = open_catalog(path)
    try:
        assert migrated.execute("SELECT value FROM catalog_meta WHERE key = 'schema_version'").fetchall() == [
            (str(SCHEMA_VERSION),)]
        assert migrated.execute("SELECT release_id, subject, attempt FROM policy_check ORDER BY 1, 3").fetchall() == [
            ("1.0.0", "a", 1), ("1.0.0", "*", 2), ("2.0.0", "b", 1)]
        assert migrated.execute("SELECT release_id, subject FROM v_release_checks").fetchall() == [("1.0.0", "*")]
    finally:
        migrated.close()


def test_a_build_reruns_the_dataset_when_only_a_license_changed(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    from builder.pipeline import run_build
    from builder.stage import BuildOptions

    root = make_taxonomy({"compositional_skills/a/ok/qna.yaml": skill_yaml(prefix="Fine"),
                          "compositional_skills/a/borrowed/qna.yaml": skill_yaml(prefix="Borrowed"),
                          "compositional_skills/a/borrowed/attribution.txt": attribution("CC-BY-4.0")})
    config, build = ValidationConfig(policy=WIDE), tmp_path / "build"

    def stages() -> dict[str, str]:
        options = BuildOptions(root, build, site=False, model=False)
        return {r.name: r.status for r in run_build(options, config, lambda reports: None)}

    assert stages()["dataset"] == "ran"
    assert stages()["dataset"] == "skipped"
    (root / "compositional_skills/a/borrowed/attribution.txt").write_text(attribution("CC-BY-NC-4.0"))
    ran = stages()
    assert ran["generate"] == "skipped" and ran["dataset"] == "ran"  # same samples, new license
    assert rows(build, "SELECT DISTINCT license_expression FROM dataset") == [("CC-BY-4.0 AND CC-BY-NC-4.0",)]
    card = (build / "datasets" / "default" / "README.md").read_text()
    assert "CC-BY-NC-4.0" in card


def test_an_edit_with_a_new_license_counts_its_samples_under_the_new_license_only(tmp_path: Path) -> None:
    taxonomy = shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy")
    config = ValidationConfig(policy=WIDE)
    build = build_data(tmp_path / "build", taxonomy, config)
    before, _ = read_manifest(cut(build, "1.0.0", policy=WIDE))
    leaf = taxonomy / LEAF
    (leaf / "qna.yaml").write_text((leaf / "qna.yaml").read_text().replace("3. Miserly", "3. Thrifty"))
    old_license = next(c.licenses for c in before.contributions if c.contribution_id == LEAF)
    (leaf / "attribution.txt").write_text(
        (leaf / "attribution.txt").read_text().replace(old_license[0], "CC-BY-NC-4.0"))
    build_data(build, taxonomy, config)
    after, _ = read_manifest(cut(build, "1.1.0", policy=WIDE))
    entry = next(c for c in after.contributions if c.contribution_id == LEAF)
    assert entry.licenses == ("CC-BY-NC-4.0",)  # unchanged samples are not counted under the old version's license
    mix = {m["license"]: m for m in after.license_mix}
    assert mix["CC-BY-NC-4.0"] == {"license": "CC-BY-NC-4.0", "license_class": "non_commercial",
                                   "samples": entry.samples, "documents": 0, "contributions": 1}
    assert sum(m["samples"] for m in after.license_mix) == after.samples["total"]
