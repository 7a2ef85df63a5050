"""`taxreg build` end to end on the embedded taxonomy and the real tiny demo model: every stage, a release that
verifies, skipping on a rerun, reproducibility across two clean builds, the lock, and kill -9 mid-build."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from builder.buildlock import build_lock
from registry.release.manifest import read_manifest, reproducible_view
from tests.building import EPOCH, build_args, taxreg
from tests.conftest import EXAMPLE_TAXONOMY, REPO

pytestmark = pytest.mark.slow  # real models or whole builds: left out of `pytest -m "not slow"`

STAGES = ["validate+index", "generate", "dataset", "base model", "train", "export", "evaluate", "release", "site"]


def stage_lines(output: str) -> dict[str, str]:
    """'✓ train  ran  3.1s  ...' -> {'train': 'ran'}: the log lines a build prints off a terminal."""
    found = {}
    for line in output.splitlines():
        for name in STAGES:
            rest = line[2:].strip()
            if rest.startswith(name + " ") and rest[len(name):].split()[0] in ("ran", "skipped", "failed"):
                found[name] = rest[len(name):].split()[0]
    return found


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_builds(demo_build: tuple[Path, Path, str]) -> tuple[Path, Path, Path, str]:
    """Two clean builds of the same taxonomy (in different folders) with a release each: the shared default build
    (conftest's demo_build) and one more beside it."""
    taxonomy, first, output = demo_build
    second = first.parent / "b"
    taxreg(*build_args(taxonomy, second, "--release", "1.0.0", steps=None))
    return taxonomy, first, second, output


def test_a_log_shows_a_running_stage_s_progress(two_builds: tuple[Path, Path, Path, str]) -> None:
    """Off a terminal, training and export say where they are while they run (issue 16.5), not only at the end."""
    output = two_builds[3]
    train = [line for line in output.splitlines() if " train " in line and " running " in line]
    assert train and any(re.search(r"step \d+/60, (eval )?loss \d+\.\d{3}", line) for line in train), train
    assert any("ETA " in line for line in train), train
    export = [line for line in output.splitlines() if " export " in line and " running " in line]
    phases = ("loading and merging", "evaluation prompts", "exporting the fp32 graph", "quantizing", "parity")
    assert any(phase in line for line in export for phase in phases), export


def test_every_stage_runs_and_the_release_verifies(two_builds: tuple[Path, Path, Path, str]) -> None:
    _, build, _, output = two_builds
    assert stage_lines(output) == dict.fromkeys(STAGES, "ran")
    for path in ("datasets/default/train.parquet", "model/base/model.safetensors", "model/onnx/model.onnx",
                 "model/onnx-int8/model.onnx", "model/parity.json", "site/index.html",
                 "releases/1.0.0/manifest.json", "releases/1.0.0/SHA256SUMS"):
        assert (build / path).is_file(), path
    assert json.loads((build / "model/parity.json").read_text())["passed"] is True
    verified = taxreg("release", "verify", str(build / "releases/1.0.0"))
    assert "all" in verified.stderr + verified.stdout and "match" in verified.stderr + verified.stdout
    con = duckdb.connect(str(build / "catalog.duckdb"), read_only=True)
    try:
        builds = con.execute("SELECT status, stats FROM build").fetchall()
        stages = {r[0] for r in con.execute("SELECT DISTINCT stage FROM run").fetchall()}
        released = con.execute("SELECT release_id FROM release").fetchall()
    finally:
        con.close()
    assert [b[0] for b in builds] == ["succeeded"] and set(json.loads(builds[0][1])) == set(STAGES)
    assert {"generate", "train", "export", "evaluate"} <= stages and released == [("1.0.0",)]


def test_the_release_records_an_evaluation_and_every_contribution_page_shows_it(
        two_builds: tuple[Path, Path, Path, str]) -> None:
    """Issue 14's done-when: an eval_run of the released model; each contribution's page has its before/after with
    intervals; the card reports multiple-choice accuracy against chance."""
    import re

    _, build, _, _ = two_builds
    con = duckdb.connect(str(build / "catalog.duckdb"), read_only=True)
    try:
        # release_artifact has one row per file of the onnx folder, each with the artifact's id
        [(runs, items, empty)] = con.execute("SELECT count(DISTINCT run_id), max(items), max(empty_contributions) "
                                             "FROM eval_run JOIN release_artifact ON ref_id = tuned_artifact_id "
                                             "WHERE release_id = '1.0.0'").fetchall()
        contributions = [c for (c,) in con.execute("SELECT contribution_id FROM contribution").fetchall()]
    finally:
        con.close()
    assert runs == 1 and items > len(contributions) and empty == 0
    for cid in contributions:
        page = (build / "site" / "contributions" / cid / "index.html").read_text()
        section = page[page.index('id="impact"'):page.index('id="releases"')]
        assert "Release 1.0.0" in section and "per-token NLL" in section, cid
        assert re.search(r"[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", section), cid  # change [interval]
        assert "<svg" in section and "answered by both models" in section, cid
    card = (build / "releases/1.0.0/model/README.md").read_text()
    assert re.search(r"Multiple-choice accuracy on knowledge after fine-tuning: \*\*\d+\.\d%\*\* on \d+ "
                     r"questions, against \*\*25\.0%\*\* by chance", card)
    manifest, _ = read_manifest(build / "releases/1.0.0")
    evaluation = manifest.metrics["evaluation"]
    assert evaluation["results_sha256"] == hashlib.sha256(
        (build / "releases/1.0.0/evaluation.json").read_bytes()).hexdigest()
    assert [p.passed for p in manifest.policy if p.rule == "eval.no_regression"] == [True]


def test_two_clean_builds_give_the_same_hashes(two_builds: tuple[Path, Path, Path, str]) -> None:
    _, a, b, _ = two_builds
    assert digests(a / "datasets/default") == digests(b / "datasets/default")
    for model in ("base", "adapter", "onnx", "onnx-int8", "onnx-base"):  # CPU training is deterministic by default
        assert digests(a / "model" / model) == digests(b / "model" / model), model
    assert (a / "model/evaluation.json").read_bytes() == (b / "model/evaluation.json").read_bytes()
    ra, rb = a / "releases/1.0.0", b / "releases/1.0.0"
    # Every byte of the release, the audit copy of the catalog included (its run ids, times, durations and paths
    # are made steady), so SHA256SUMS and the manifest that hashes it all are identical too.
    assert (ra / "SHA256SUMS").read_bytes() == (rb / "SHA256SUMS").read_bytes()
    assert (ra / "manifest.json").read_bytes() == (rb / "manifest.json").read_bytes()
    assert digests(ra) == digests(rb)
    (ma, _), (mb, _) = read_manifest(ra), read_manifest(rb)
    assert reproducible_view(ma) == reproducible_view(mb) and ma.determinism["not_reproducible"] == []
    assert all(f.reproducible for f in ma.files)
    assert {"audit/audit.duckdb", "audit/run.parquet", "parity.json", "bom/spdx.json", "evaluation.json",
            "audit/eval_score.parquet"} <= {f.path for f in ma.files}


def test_the_model_release_discloses_its_training_data_and_the_build_its_lineage(
        two_builds: tuple[Path, Path, Path, str]) -> None:
    """The EU summary counts the training split with the shipped tokenizer and names the base model; the provenance
    pins the base weights; the build's OpenLineage events (JSONL by default) have every stage."""
    from tokenizers import Tokenizer

    _, build, _, _ = two_builds
    folder = build / "releases/1.0.0"
    summary = json.loads((folder / "disclosures/eu-training-content-summary.json").read_text())
    texts = [m["content"] for line in (folder / "data/train.jsonl").read_text().splitlines()
             for m in json.loads(line)["messages"]]
    tokens = sum(len(e.ids) for e in Tokenizer.from_file(str(folder / "model/onnx/tokenizer.json")).encode_batch(
        texts, add_special_tokens=False))
    split = summary["facts"]["training_split"]
    assert split["tokens"] == tokens and split["tokenizer"].startswith("model/onnx/tokenizer.json")
    manifest, _ = read_manifest(folder)
    base = manifest.inputs["base_model"]
    text = (folder / "disclosures/eu-training-content-summary.md").read_text()
    assert f"Fine-tuned (LoRA) from {base['model_ref']}" in text and "demo model" in text
    statement = json.loads((folder / "provenance.intoto.jsonl").read_text())
    [dependency] = [d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
                    if d.get("annotations", {}).get("role") == "base_model"]
    assert dependency["name"] == base["model_ref"] and dependency["digest"]["sha256"] == base["weights_sha256"]
    [events] = list((build / "lineage").glob("*.jsonl"))
    jobs = [(e["job"]["name"], e["eventType"]) for e in map(json.loads, events.read_text().splitlines())]
    assert jobs == [(stage, state) for stage in STAGES for state in ("START", "COMPLETE")]


def test_a_rerun_skips_unchanged_stages_and_an_existing_release_is_kept(
        two_builds: tuple[Path, Path, Path, str]) -> None:
    taxonomy, build, _, _ = two_builds
    before = digests(build / "releases")
    again = taxreg(*build_args(taxonomy, build, steps=None))
    stages = stage_lines(again.stdout + again.stderr)
    assert stages["validate+index"] == "skipped"
    assert all(stages[s] == "skipped" for s in ("generate", "dataset", "base model", "train", "export", "evaluate"))
    # The same release with the same options (e.g. after a crash in the site stage): its cut is skipped
    kept = taxreg(*build_args(taxonomy, build, "--release", "1.0.0", steps=None))
    assert stage_lines(kept.stdout + kept.stderr)["release"] == "skipped"
    assert "release 1.0.0 exists, cut from the same inputs: kept" in kept.stderr
    refused = taxreg(*build_args(taxonomy, build, "--release", "1.0.0", "--license", "MIT", steps=None), check=False)
    assert refused.returncode == 2 and "already exists" in refused.stderr and "Traceback" not in refused.stderr
    assert digests(build / "releases") == before


def test_a_second_build_on_the_same_folder_is_refused(two_builds: tuple[Path, Path, Path, str]) -> None:
    taxonomy, build, _, _ = two_builds
    with build_lock(build):
        busy = taxreg(*build_args(taxonomy, build), check=False)
    assert busy.returncode == 2
    assert "being written by" in busy.stderr and "Traceback" not in busy.stderr


def test_kill_9_mid_build_then_the_next_build_finishes(tmp_path: Path) -> None:
    taxonomy, build = tmp_path / "taxonomy", tmp_path / "build"
    shutil.copytree(EXAMPLE_TAXONOMY, taxonomy)
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    proc = subprocess.Popen([sys.executable, "-m", "builder.cli", *build_args(taxonomy, build, "--release", "2.0.0")],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not (build / "model" / "base" / "model.safetensors").exists():  # killed in the model stages
        assert proc.poll() is None and time.monotonic() < deadline, "the build ended before the model stages"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (build / "releases" / "2.0.0").exists()
    finished = taxreg(*build_args(taxonomy, build, "--release", "2.0.0"))
    stages = stage_lines(finished.stdout + finished.stderr)
    assert stages["generate"] == "skipped" and stages["dataset"] == "skipped" and stages["release"] == "ran"
    taxreg("release", "verify", str(build / "releases/2.0.0"))
    con = duckdb.connect(str(build / "catalog.duckdb"), read_only=True)
    try:
        statuses = sorted(s for (s,) in con.execute("SELECT status FROM build").fetchall())
    finally:
        con.close()
    assert statuses == ["killed", "succeeded"]
