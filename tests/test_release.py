"""Releases: cut, verify (tamper, signature), diff after editing a leaf, policy gates, takedown, the build lock,
kill -9 during a cut, and two builds with identical hashes. Everything runs on real catalogs and folders."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.buildlock import BuildDirBusy, build_lock
from builder.cli import app
from builder.datasets import DatasetOptions, build_dataset
from builder.release.compare import diff_folders
from builder.release.cut import CutOptions, cut_release
from builder.release.verify import verify_folder
from registry.catalog.connection import open_catalog
from registry.catalog.indexer import index
from registry.catalog.policy import GateFailed, incompatibility
from registry.config import ValidationConfig
from registry.errors import RegistryError
from registry.licenses import LicensePolicy
from registry.release.canonical import canonical_bytes
from registry.release.integrity import check_files
from registry.release.manifest import SCHEMA_VERSION, from_dict, read_manifest, reproducible_view
from registry.release.sums import format_sums, parse_sums
from tests.conftest import EXAMPLE_TAXONOMY, REPO, TaxonomyMaker, skill_yaml
from tests.releasing import build_data, cut, make_key, rows

runner = CliRunner()
LEAF = "compositional_skills/linguistics/antonyms"


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = build_data(tmp_path_factory.mktemp("rel") / "build")
    cut(build, "1.0.0")
    return build


def test_cut_writes_the_layout_and_records_the_release(released: Path) -> None:
    folder = released / "releases" / "1.0.0"
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"SHA256SUMS", "manifest.json", "data/train.parquet", "data/test.parquet", "data/train.jsonl",
            "data/README.md", "data/croissant.json", "bom/cyclonedx.json", "bom/spdx.json", "audit/audit.duckdb",
            "audit/sample_lineage.parquet"} <= names
    manifest, raw = read_manifest(folder)
    assert raw == canonical_bytes(json.loads(raw)) and manifest.model is None
    assert manifest.samples["total"] == rows(released, "SELECT count(*) FROM sample WHERE kept")[0][0]
    assert {f.path for f in manifest.files} == names - {"SHA256SUMS", "manifest.json"}
    # No license declared: every gate passes, and one warning row says the union stood in for it
    assert [p.rule for p in manifest.policy if not p.passed] == ["license.declared"]  # disclosure.complete warns
    assert manifest.policy[[p.rule for p in manifest.policy].index("license.declared")].severity == "warning"
    assert {p.rule for p in manifest.policy} >= {"license.allowed", "lineage.orphans", "parity.fp32",
                                                  "validation.errors"}
    artifacts = rows(released, "SELECT count(*) FROM release_artifact WHERE release_id = '1.0.0'")
    assert artifacts[0][0] == len(manifest.files)
    assert rows(released, "SELECT count(*) FROM v_release_samples")[0][0] == manifest.samples["total"]
    checks = rows(released, "SELECT count(*) FROM policy_check WHERE release_id = '1.0.0'")
    assert checks[0][0] == len(manifest.policy)
    if shutil.which("sha256sum"):  # the coreutils tool agrees with our SHA256SUMS
        subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=folder, check=True)
    bom = json.loads((folder / "bom" / "cyclonedx.json").read_text())
    assert bom["specVersion"] == "1.6" and bom["metadata"]["timestamp"].startswith(manifest.released_at[:10])


def test_versions_are_never_overwritten(released: Path) -> None:
    with pytest.raises(RegistryError, match="never overwritten"):
        cut(released, "1.0.0")
    result = runner.invoke(app, ["release", "cut", "1.0.0", "--build-dir", str(released), "--no-model"])
    assert result.exit_code == 2 and "never overwritten" in result.output


def test_verify_names_every_tampered_file(released: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(released / "releases" / "1.0.0", tmp_path / "copy")
    assert check_files(folder)[1] == []
    data = bytearray((folder / "data" / "train.parquet").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "data" / "train.parquet").write_bytes(bytes(data))
    (folder / "data" / "README.md").unlink()
    (folder / "bom" / "extra.txt").write_text("not listed")
    found = {(d.path, d.problem) for d in check_files(folder)[1]}
    assert found == {("data/train.parquet", "changed"), ("data/README.md", "missing"), ("bom/extra.txt", "extra")}
    result = runner.invoke(app, ["release", "verify", str(folder)])
    assert result.exit_code == 1 and "data/train.parquet: changed" in result.output


def test_one_malformed_sums_line_is_reported_and_the_rest_still_checked(released: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(released / "releases" / "1.0.0", tmp_path / "copy")
    lines = (folder / "SHA256SUMS").read_text().splitlines(keepends=True)
    broken = lines[2].split("  ", 1)[1].strip()
    lines[2] = "garbage\n"
    (folder / "SHA256SUMS").write_text("".join(lines))
    (folder / "data" / "README.md").write_text("edited")
    found = sorted((d.path, d.problem) for d in check_files(folder)[1])
    assert found == sorted([("SHA256SUMS:3", "unreadable"), (broken, "extra"), (broken, "manifest"),
                            ("data/README.md", "changed")])  # not one 'extra' per file
    result = runner.invoke(app, ["release", "verify", str(folder)])
    assert result.exit_code == 1 and "SHA256SUMS:3: unreadable: not a sha256sum line: 'garbage'" in result.stdout


def test_verify_catches_an_edited_manifest(released: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(released / "releases" / "1.0.0", tmp_path / "copy")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["license"] = "MIT"  # re-written canonically, and SHA256SUMS updated to match: the manifest lies
    (folder / "manifest.json").write_bytes(canonical_bytes(manifest))
    sums = parse_sums((folder / "SHA256SUMS").read_text())
    assert check_files(folder)[1][0].path == "manifest.json"
    import hashlib
    sums["manifest.json"] = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    manifest["files"][0]["sha256"] = "0" * 64
    (folder / "manifest.json").write_bytes(canonical_bytes(manifest))
    sums["manifest.json"] = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    (folder / "SHA256SUMS").write_text(format_sums(sums.items()))
    problems = check_files(folder)[1]
    assert [(d.path, d.problem) for d in problems] == [(manifest["files"][0]["path"], "manifest")]


def test_signed_release_verifies_only_with_its_key(released: Path, tmp_path: Path) -> None:
    keys = [make_key(tmp_path, name)[1] for name in ("key", "other")]
    folder = cut(released, "1.0.0-signed", sign_key=tmp_path / "key.pem")
    assert verify_folder(folder, keys[0])[1] == [] and verify_folder(folder)[2].startswith("valid")
    with pytest.MonkeyPatch.context() as mp:  # a relative path, as in the README's `release verify build/releases/X`
        mp.chdir(folder.parent.parent)
        assert verify_folder(folder.relative_to(folder.parent.parent), keys[0])[1] == []
    assert [d.problem for d in verify_folder(folder, keys[1])[1]] == ["signature"]
    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / "release.sig").unlink()
    assert [(d.path, d.problem) for d in verify_folder(copy)[1]] == [("release.sig", "missing")]
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(RegistryError, match="not an unencrypted PEM private key"):
        cut(released, "1.0.0-bad", sign_key=tmp_path / "bad.pem")


def test_diff_after_editing_one_leaf_names_it_and_its_samples(tmp_path: Path) -> None:
    taxonomy = shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy")
    build = build_data(tmp_path / "build", taxonomy)
    cut(build, "1.0.0")
    leaf = taxonomy / LEAF / "qna.yaml"
    leaf.write_text(leaf.read_text().replace("3. Miserly", "3. Mean"))
    build_data(build, taxonomy)
    cut(build, "1.1.0")
    result = diff_folders(build / "releases" / "1.0.0", build / "releases" / "1.1.0")
    assert [(c.contribution_id, c.change) for c in result.contributions] == [(LEAF, "changed")]
    change = result.contributions[0]
    assert len(change.samples_added) == len(change.samples_removed) == 1
    [(text,)] = rows(build, f"SELECT messages FROM sample WHERE sample_id = '{change.samples_added[0]}'")
    assert "3. Mean" in str(text)
    assert {v.name for v in result.files} >= {"data/train.parquet"} or {v.name for v in result.files} >= {
        "data/test.parquet"}
    cli = runner.invoke(app, ["release", "diff", "1.0.0", "1.1.0", "--build-dir", str(build)])
    assert cli.exit_code == 0 and f"changed  {LEAF}" in cli.output and change.samples_added[0] in cli.output


NC_ATTRIBUTION = """Title of work: Borrowed examples
Link to work: https://example.com/borrowed
Revision: N/A
License of the work: CC-BY-NC-4.0
Creator names: Someone Else
"""


def test_a_leaf_under_a_disallowed_license_blocks_the_cut(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({
        "compositional_skills/a/ok/qna.yaml": skill_yaml(prefix="Fine"),
        "compositional_skills/a/borrowed/qna.yaml": skill_yaml(prefix="Borrowed"),
        "compositional_skills/a/borrowed/attribution.txt": NC_ATTRIBUTION})
    wide = ValidationConfig(policy=LicensePolicy(frozenset({"CC-BY-4.0", "CC-BY-NC-4.0"})))
    build = build_data(tmp_path / "build", root, wide)  # indexed under a wider policy than the release's
    with pytest.raises(GateFailed) as refused:
        cut(build, "1.0.0", license="CC-BY-4.0")
    message = str(refused.value)
    assert "license.allowed" in message and "compositional_skills/a/borrowed (CC-BY-NC-4.0" in message
    assert "license.compatible" in message and "compositional_skills/a/ok" not in message
    assert not (build / "releases" / "1.0.0").exists()
    failed = rows(build, "SELECT rule, subject FROM policy_check WHERE release_id = '1.0.0' AND NOT passed "
                         "ORDER BY 1")
    assert failed == [("license.allowed", "compositional_skills/a/borrowed"),
                      ("license.compatible", "compositional_skills/a/borrowed")]
    cli = runner.invoke(app, ["release", "cut", "1.0.0", "--build-dir", str(build), "--no-model",
                              "--license", "CC-BY-4.0"])
    assert cli.exit_code == 1 and "compositional_skills/a/borrowed" in cli.output
    folder = cut(build, "1.0.0", license="CC-BY-4.0", allow=("license.allowed", "license.compatible"))
    manifest, _ = read_manifest(folder)
    assert manifest.allowed == ("license.allowed", "license.compatible")
    assert {(p.rule, p.overridden) for p in manifest.policy if not p.passed} == {
        ("license.allowed", True), ("license.compatible", True)}
    assert rows(build, "SELECT allowed FROM release WHERE release_id = '1.0.0'") == [
        ('["license.allowed", "license.compatible"]',)]
    with pytest.raises(RegistryError, match="no such release gate"):
        cut(build, "1.0.1", allow=("license.everything",))


def test_teacher_output_terms_are_a_license(released: Path, tmp_path: Path) -> None:
    build = shutil.copytree(released, tmp_path / "build", ignore=shutil.ignore_patterns("releases"))
    con = open_catalog(build / "catalog.duckdb")
    try:  # the seed run stands in for a teacher run whose outputs may not be used commercially
        con.execute("INSERT INTO external_model (model_ref, license_spdx, output_terms) VALUES "
                    "('teacher-x', 'Apache-2.0', 'non-commercial research only')")
        con.execute("UPDATE run SET teacher_model_ref = 'teacher-x'")
    finally:
        con.close()
    with pytest.raises(GateFailed, match=r"teacher.terms .*teacher-x \(Apache-2.0; the output terms restrict use"):
        cut(build, "2.0.0", license="CC-BY-4.0")


def test_license_compatibility_rules() -> None:
    assert incompatibility("CC-BY-NC-4.0", "CC-BY-4.0") is not None
    assert incompatibility("CC-BY-NC-4.0", "CC-BY-NC-4.0") is None
    assert incompatibility("CC-BY-SA-4.0", "CC-BY-4.0") is not None
    assert incompatibility("CC-BY-SA-4.0", "CC-BY-SA-4.0 AND MIT") is None
    assert incompatibility("MIT", "CC-BY-4.0") is None


def test_takedown_reports_impact_and_the_next_build_excludes_it(tmp_path: Path) -> None:
    taxonomy = shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy")
    build = build_data(tmp_path / "build", taxonomy)
    cut(build, "1.0.0")
    [(doc, n_samples)] = rows(build, """SELECT doc_sha256, count(DISTINCT sample_id) FROM sample_lineage
                                        WHERE doc_sha256 IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 1""")
    args = ["takedown", str(doc), "--build-dir", str(build), "--format", "json"]
    dry = runner.invoke(app, [*args, "--dry-run"])
    impact = json.loads(dry.output)
    assert dry.exit_code == 0 and impact["kind"] == "document" and impact["counts"]["sample"] == n_samples
    assert impact["impact"]["release"] == ["1.0.0"] and impact["counts"]["dataset"] == 4
    assert rows(build, "SELECT count(*) FROM takedown") == [(0,)]
    assert runner.invoke(app, args).exit_code == 2  # a reason is required
    done = runner.invoke(app, [*args, "--reason", "the author withdrew permission", "--by", "legal"])
    assert done.exit_code == 0 and json.loads(done.output)["taken_down"]
    assert rows(build, "SELECT subject_kind, requested_by FROM takedown") == [("document", "legal")]
    with pytest.raises(GateFailed, match=f"takedown.excluded .*{doc}"):
        cut(build, "1.0.1")  # the dataset still holds its samples
    build_dataset(build / "catalog.duckdb", build / "datasets", DatasetOptions())
    manifest, _ = read_manifest(cut(build, "1.0.1"))
    before, _ = read_manifest(build / "releases" / "1.0.0")
    assert manifest.samples["total"] == before.samples["total"] - n_samples
    leaf_down = runner.invoke(app, ["takedown", LEAF, "--build-dir", str(build), "--reason", "test"])
    assert leaf_down.exit_code == 0 and "contribution" in leaf_down.output
    assert rows(build, f"SELECT status FROM contribution WHERE contribution_id = '{LEAF}'") == [("taken_down",)]
    index(taxonomy, build / "catalog.duckdb")  # re-indexing keeps it down
    assert rows(build, f"SELECT status FROM contribution WHERE contribution_id = '{LEAF}'") == [("taken_down",)]
    unknown = runner.invoke(app, ["takedown", "nothing/here", "--build-dir", str(build), "--dry-run"])
    assert unknown.exit_code == 2 and "neither a document sha256 nor a contribution" in unknown.output


def test_two_builds_from_the_same_inputs_have_the_same_hashes(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    folders = [cut(build_data(tmp_path / f"build{i}"), "1.0.0") for i in range(2)]
    manifests = [read_manifest(f)[0] for f in folders]
    assert reproducible_view(manifests[0]) == reproducible_view(manifests[1])
    assert manifests[0].released_at == "2026-01-01T00:00:00Z"
    sums = [parse_sums((f / "SHA256SUMS").read_text()) for f in folders]
    stable = [{p: h for p, h in s.items() if not p.startswith("audit/") and p != "manifest.json"} for s in sums]
    assert stable[0] == stable[1] and len(stable[0]) == 13  # bom (2), data files and cards, disclosures (5)
    assert diff_folders(*folders).reproducible_match


def test_build_lock_makes_a_second_writer_wait_or_give_up(tmp_path: Path) -> None:
    holding, done = tmp_path / "holding", tmp_path / "done"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time, pathlib\nfrom builder.buildlock import build_lock\n"
        f"with build_lock(pathlib.Path({str(tmp_path / 'build')!r})):\n"
        f"    pathlib.Path({str(holding)!r}).touch()\n"
        f"    while not pathlib.Path({str(done)!r}).exists():\n        time.sleep(0.05)\n")], cwd=REPO)
    try:
        _wait_for(holding)
        with pytest.raises(BuildDirBusy, match=r"being written by pid \d+"), build_lock(tmp_path / "build", wait=0):
            pass
        result = runner.invoke(app, ["release", "cut", "9.9.9", "--build-dir", str(tmp_path / "build")])
        assert result.exit_code == 2 and "--wait" in result.output
        notes: list[str] = []
        threading.Timer(0.5, done.touch).start()  # the holder finishes while we wait
        with build_lock(tmp_path / "build", wait=60, on_wait=notes.append):
            assert "waiting up to 60s" in notes[0] and done.exists()  # it got the lock once the holder let go
    finally:
        done.touch()
        holder.wait(timeout=30)


def test_kill_9_during_a_cut_leaves_no_partial_release(released: Path, tmp_path: Path) -> None:
    build = shutil.copytree(released, tmp_path / "build")
    for point, version in (("assembled", "3.0.0"), ("renamed", "3.0.1")):
        marker = tmp_path / f"{point}.marker"
        process = subprocess.Popen(
            [sys.executable, "-c", "from builder.cli import main; main()", "release", "cut", version,
             "--build-dir", str(build), "--no-model"], cwd=REPO,
            env={**os.environ, "TAXREG_TEST_PAUSE_AT": f"{point}:{marker}"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(marker)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        assert rows(build, f"SELECT count(*) FROM release WHERE release_id = '{version}'") == [(0,)]
        if point == "assembled":  # killed before the rename: only a temporary folder, cleaned by the next cut
            assert not (build / "releases" / version).exists() and list((build / "releases").glob(".*-new-*"))
    assert not (build / "releases" / "3.0.0").exists()
    assert (build / "releases" / "3.0.1").is_dir()  # renamed, never recorded: adopted once it verifies
    outcome = cut_release(CutOptions("3.0.1", build, with_model=False))
    assert outcome.recovered and rows(build, "SELECT count(*) FROM release WHERE release_id = '3.0.1'") == [(1,)]
    cut(build, "3.0.0")
    assert not list((build / "releases").glob(".*-new-*"))  # stale temporary folders are cleaned
    assert check_files(build / "releases" / "3.0.0")[1] == []


def test_every_command_counts_the_files_the_same_way(tmp_path: Path) -> None:
    build = build_data(tmp_path / "build")
    made = runner.invoke(app, ["release", "cut", "1.0.0", "--build-dir", str(build), "--no-model"])
    assert made.exit_code == 0, made.output
    folder = build / "releases" / "1.0.0"
    listed = len(parse_sums((folder / "SHA256SUMS").read_text()))
    assert listed + 1 == sum(1 for p in folder.rglob("*") if p.is_file())  # + SHA256SUMS itself
    phrase = f"{listed} files listed in SHA256SUMS (+ SHA256SUMS)"
    assert phrase in made.stdout and "warning: release license not declared; using the union" in made.stderr
    verified = runner.invoke(app, ["release", "verify", str(folder)])  # the verdict is output: on stdout
    assert verified.exit_code == 0 and f"OK, all {phrase} match; signature: unsigned" in verified.stdout
    assert phrase in runner.invoke(app, ["release", "show", "1.0.0", "--build-dir", str(build)]).stdout
    table = runner.invoke(app, ["release", "list", "--build-dir", str(build)]).stdout.splitlines()
    header = table[0].split()  # not a terminal: plain aligned lines, nothing cut short
    assert header == ["release_id", "status", "released_at", "license_expression", "taxonomy_commit", "files",
                      "samples", "path"] and "…" not in "".join(table)
    assert table[1].split()[0] == "1.0.0" and table[1].split()[-3] == str(listed)  # files, samples, path
    listed_json = runner.invoke(app, ["release", "list", "--build-dir", str(build), "--format", "json"])
    assert json.loads(listed_json.stdout)[0]["files"] == listed


def test_a_takedown_dry_run_needs_no_lock(released: Path) -> None:
    with build_lock(released):
        dry = runner.invoke(app, ["takedown", LEAF, "--build-dir", str(released), "--dry-run"])
        real = runner.invoke(app, ["takedown", LEAF, "--build-dir", str(released), "--reason", "test"])
    assert dry.exit_code == 0 and "dry run: nothing changed" in dry.output
    assert real.exit_code == 2 and "being written by" in real.output


def test_the_release_time_note_says_where_the_time_came_from(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    taxonomy = shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy")  # not a git repository
    manifest, _ = read_manifest(cut(build_data(tmp_path / "build", taxonomy), "1.0.0"))
    assert manifest.determinism["source_date_epoch"] is None
    assert "Timestamps come from the newest catalog run's end, a wall-clock time" in manifest.determinism["notes"][0]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    manifest, _ = read_manifest(cut(tmp_path / "build", "1.0.1"))
    assert manifest.determinism["notes"][0].startswith("Timestamps come from SOURCE_DATE_EPOCH;")


def test_show_and_list(released: Path) -> None:
    shown = runner.invoke(app, ["release", "show", "1.0.0", "--build-dir", str(released), "--format", "json"])
    assert shown.exit_code == 0 and from_dict(json.loads(shown.output)).version == "1.0.0"
    text = runner.invoke(app, ["release", "show", "1.0.0", "--build-dir", str(released)])
    assert "model: none (data-only release)" in text.output and "gates:" in text.output
    listed = runner.invoke(app, ["release", "list", "--build-dir", str(released), "--format", "json"])
    assert "1.0.0" in [r["release_id"] for r in json.loads(listed.output)]
    missing = runner.invoke(app, ["release", "show", "0.0.0", "--build-dir", str(released)])
    assert missing.exit_code == 2 and "no release '0.0.0'" in missing.output


def test_sums_and_manifest_formats(tmp_path: Path) -> None:
    entries = [("b.txt", "1" * 64), ("a dir/odd\\name", "2" * 64), ("new\nline", "3" * 64)]
    text = format_sums(entries)
    assert parse_sums(text) == dict(entries) and text.splitlines()[0] == f"\\{'2' * 64}  a dir/odd\\\\name"
    with pytest.raises(RegistryError, match="SHA256SUMS:1"):
        parse_sums("nothex  file\n")
    assert canonical_bytes({"b": 1, "a": "é", "c": [1.5, None]}) == '{"a":"é","b":1,"c":[1.5,null]}'.encode()
    with pytest.raises(RegistryError, match="reads up to"):
        from_dict({"kind": "taxonomy-registry/release-manifest", "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(RegistryError, match="no release folder"):
        check_files(tmp_path / "none")


def test_release_version_is_checked() -> None:
    with pytest.raises(RegistryError, match="release version"):
        CutOptions("../escape")


def _wait_for(marker: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not marker.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{marker} never appeared")
        time.sleep(0.05)


@pytest.mark.slow  # a real demo model
def test_release_with_the_real_tiny_model(tmp_path: Path) -> None:
    """The model stages for real on a tiny demo model, then a full cut: files, card, BOM, gates, verify."""
    import yaml

    pytest.importorskip("onnxruntime", reason="onnxruntime is a project dependency: pip install -e '.[dev]'")
    build = build_data(tmp_path / "build")
    model = build / "model"
    tiny = ["--hidden", "32", "--layers", "2", "--heads", "2", "--kv-heads", "1", "--intermediate", "64",
            "--vocab", "512", "--context", "256"]
    catalog, dataset = ["--catalog", str(build / "catalog.duckdb")], ["--dataset", str(build / "datasets" / "default")]
    assert runner.invoke(app, ["model", "init", "--out", str(model / "base"), *tiny]).exit_code == 0
    trained = runner.invoke(app, ["train", "--base-model", str(model / "base"), "--out", str(model / "adapter"),
                                  *catalog, *dataset, "--max-steps", "1", "--batch-size", "4", "--max-length", "128",
                                  "--rank", "4", "--eval-steps", "1", "--save-steps", "1"])
    assert trained.exit_code == 0, trained.output
    exported = runner.invoke(app, ["export", "--base-model", str(model / "base"), "--adapter", str(model / "adapter"),
                                   "--out", str(model), *catalog, *dataset, "--prompts", "2", "--greedy-tokens", "4"])
    assert exported.exit_code == 0, exported.output
    folder = cut_release(CutOptions("1.0.0", build)).folder
    manifest, _ = read_manifest(folder)
    assert manifest.model is not None and {a["kind"] for a in manifest.model["artifacts"]} == {
        "adapter", "onnx", "onnx_int8"}
    assert (folder / "model" / "adapter" / "adapter_model.safetensors").is_file()
    assert manifest.inputs["seeds"]["training"] == 0
    base = manifest.inputs["base_model"]["model_ref"]
    assert "demo" in base and str(tmp_path) not in base  # a name, never a local path
    assert (folder / "model" / "onnx" / "model.onnx").is_file() and (folder / "parity.json").is_file()
    assert [p.passed for p in manifest.policy if p.rule == "parity.fp32"] == [True]
    assert manifest.metrics["parity"]["variants"]["fp32"]["passed"] is True
    card = (folder / "model" / "README.md").read_text().split("---\n")[1]
    header = yaml.safe_load(card)
    assert header["base_model"] == base and header["base_model_relation"] == "finetune"
    assert header["model-index"][0]["results"][0]["metrics"][0]["type"] == "fp32_max_abs_diff"
    bom = json.loads((folder / "bom" / "cyclonedx.json").read_text())
    models = [c for c in bom["components"] if c["type"] == "machine-learning-model" and "modelCard" in c]
    assert {c["bom-ref"] for c in models} == {"model/adapter", "model/onnx", "model/onnx-int8"}
    graph = json.loads((folder / "bom" / "spdx.json").read_text())["@graph"]
    assert sum(1 for e in graph if e.get("relationshipType") == "trainedOn") == 3
    kinds = rows(build, "SELECT DISTINCT kind FROM release_artifact WHERE release_id = '1.0.0' ORDER BY 1")
    assert ("model_artifact",) in kinds and ("dataset",) in kinds
    assert check_files(folder)[1] == []
    onnx = bytearray((folder / "model" / "onnx" / "model.onnx").read_bytes())
    onnx[-1] ^= 0x01
    (folder / "model" / "onnx" / "model.onnx").write_bytes(bytes(onnx))
    assert [(d.path, d.problem) for d in check_files(folder)[1]] == [("model/onnx/model.onnx", "changed")]
