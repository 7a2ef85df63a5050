"""A release cut from a taxonomy with uncommitted changes (issue 16.1): refused unless --allow taxonomy.dirty; when
allowed, the manifest names the changed paths and a digest of the tree, and says whose time its date is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder import settings
from builder.cli import app
from builder.pipeline import run_build
from builder.stage import BuildOptions
from registry import gitrepo
from registry.catalog.policy import GateFailed
from registry.release.manifest import read_manifest
from tests.conftest import EXAMPLE_TAXONOMY, git
from tests.releasing import build_data, cut

runner = CliRunner()
LEAF = "compositional_skills/linguistics/antonyms/qna.yaml"
EPOCH = "1767225600"  # 2026-01-01


@pytest.fixture
def committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example taxonomy as its own git repository, everything committed."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    taxonomy = Path(shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy"))
    git(taxonomy, "init", "-q")
    git(taxonomy, "add", ".")
    git(taxonomy, "commit", "-q", "-m", "the taxonomy")
    return taxonomy


def edit_an_answer(taxonomy: Path) -> None:
    leaf = taxonomy / LEAF
    text = leaf.read_text(encoding="utf-8")
    at = text.index("answer:")
    leaf.write_text(text[:at] + "answer: An edited answer, not committed." + text[text.index("\n", at):],
                    encoding="utf-8")


def test_a_cut_from_uncommitted_edits_is_refused_naming_them(committed: Path, tmp_path: Path) -> None:
    edit_an_answer(committed)
    (committed / "NOTES.txt").write_text("untracked\n", encoding="utf-8")
    build = build_data(tmp_path / "build", committed)
    with pytest.raises(GateFailed) as refused:
        cut(build, "1.0.0")
    message = str(refused.value)
    assert "taxonomy.dirty" in message and LEAF in message and "NOTES.txt" in message
    assert "--allow RULE" in (refused.value.hint or "")
    assert not (build / "releases" / "1.0.0").exists()


def test_allowed_it_records_the_paths_the_tree_digest_and_whose_date_it_is(committed: Path, tmp_path: Path) -> None:
    head = gitrepo.head(committed)
    edit_an_answer(committed)
    build = build_data(tmp_path / "build", committed)
    made = runner.invoke(app, ["release", "cut", "1.0.0", "--build-dir", str(build), "--no-model", "--allow",
                               "taxonomy.dirty"])
    assert made.exit_code == 0, made.output
    assert f"cut from uncommitted changes to 1 path(s) ({LEAF}): commit {head[:12]}" in made.stderr
    assert "the release date 2026-01-01T00:00:00Z is that commit's" in made.stderr
    manifest = read_manifest(build / "releases" / "1.0.0")[0]
    assert manifest.inputs["taxonomy_commit"] == head and manifest.inputs["taxonomy_dirty"] == [LEAF]
    assert manifest.allowed == ("taxonomy.dirty",)
    assert [(p.subject, p.overridden) for p in manifest.policy if p.rule == "taxonomy.dirty"] == [(LEAF, True)]
    assert any("uncommitted change" in note for note in manifest.determinism["notes"])
    git(committed, "commit", "-q", "-a", "-m", "the edit")  # committing the edits gives the tree the digest named
    tree = gitrepo.tree_state(committed)
    assert tree is not None and not tree.dirty and manifest.inputs["taxonomy_tree_sha256"] == tree.tree_sha256
    shown = runner.invoke(app, ["release", "show", "1.0.0", "--build-dir", str(build)])
    assert f"taxonomy commit: {head} plus 1 uncommitted change(s): {LEAF}" in shown.stdout


def test_a_cut_from_a_committed_tree_passes_the_gate_and_says_nothing(committed: Path, tmp_path: Path) -> None:
    build = build_data(tmp_path / "build", committed)
    manifest = read_manifest(cut(build, "1.0.0"))[0]
    assert manifest.inputs["taxonomy_commit"] == gitrepo.head(committed) and "taxonomy_dirty" not in manifest.inputs
    assert [p.passed for p in manifest.policy if p.rule == "taxonomy.dirty"] == [True]


def test_a_build_with_a_release_refuses_a_dirty_tree_before_any_stage(committed: Path, tmp_path: Path) -> None:
    edit_an_answer(committed)
    options = BuildOptions(committed, tmp_path / "build", release="1.0.0", model=False, site=False)
    seen: list[object] = []
    with pytest.raises(GateFailed, match=r"has uncommitted changes \(compositional_skills/linguistics/antonyms"):
        run_build(options, settings.load().validation(), seen.append)
    assert seen == []  # no stage ran
    allowed = BuildOptions(committed, tmp_path / "build", release="1.0.0", model=False, site=False,
                           allow=("taxonomy.dirty",))
    reports = {r.name: r for r in run_build(allowed, settings.load().validation(), lambda _: None)}
    assert reports["release"].status == "ran" and "uncommitted changes" in (reports["release"].warning or "")
