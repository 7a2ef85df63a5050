"""Changes since a git ref, and the document cache filled by a real git clone."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.documents import fetch, repo_location
from registry.errors import GitError
from registry.gitrepo import changes_since
from registry.records import DocumentRef
from registry.validation import validate
from tests.conftest import DOC_TEXT, TaxonomyMaker, git, knowledge_yaml, skill_yaml


def repo_tree(make_taxonomy: TaxonomyMaker) -> Path:
    root = make_taxonomy({
        "compositional_skills/a/keep/qna.yaml": skill_yaml(prefix="Keep"),
        "compositional_skills/a/edit/qna.yaml": skill_yaml(prefix="Edit"),
        "compositional_skills/a/gone/qna.yaml": skill_yaml(prefix="Gone"),
        "compositional_skills/a/move/qna.yaml": skill_yaml(prefix="Move"),
    })
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "base")
    git(root, "tag", "base")
    return root


def test_diff_lists_added_modified_removed_renamed_and_untracked(make_taxonomy: TaxonomyMaker) -> None:
    root = repo_tree(make_taxonomy)
    (root / "compositional_skills/a/edit/qna.yaml").write_text(skill_yaml(n=6, prefix="Edit"))
    (root / "compositional_skills/a/gone/qna.yaml").unlink()
    git(root, "mv", "compositional_skills/a/move", "compositional_skills/a/moved")
    new = root / "knowledge/new/qna.yaml"
    new.parent.mkdir(parents=True)
    new.write_text(knowledge_yaml())
    changes = {(c.status, c.path, c.old_path) for c in changes_since(root, "base")}
    assert changes == {
        ("modified", "compositional_skills/a/edit/qna.yaml", None),
        ("removed", "compositional_skills/a/gone/qna.yaml", None),
        ("renamed", "compositional_skills/a/moved/qna.yaml", "compositional_skills/a/move/qna.yaml"),
        ("added", "knowledge/new/qna.yaml", None),
    }


def test_unknown_ref_is_a_clear_error(make_taxonomy: TaxonomyMaker) -> None:
    root = repo_tree(make_taxonomy)
    with pytest.raises(GitError, match="unknown git ref 'nope'"):
        changes_since(root, "nope")


def test_not_a_repository_is_a_clear_error(make_taxonomy: TaxonomyMaker) -> None:
    root = make_taxonomy({"compositional_skills/a/x/qna.yaml": skill_yaml()})
    with pytest.raises(GitError, match="not inside a git repository"):
        changes_since(root, "HEAD")


def test_repo_locations_follow_the_cache_layout() -> None:
    assert str(repo_location("https://github.com/juliadenham/Summit_knowledge.git")) == \
        "github.com/juliadenham/Summit_knowledge"
    assert str(repo_location("git@gitlab.com:group/docs.git")) == "gitlab.com/group/docs"
    assert ".." not in str(repo_location("https://evil.example/../../etc"))


def test_missing_document_names_the_cache_path_and_the_fetch_command(make_taxonomy: TaxonomyMaker) -> None:
    root = make_taxonomy({"knowledge/t/doc/qna.yaml": knowledge_yaml()})
    report = validate(root)
    [missing] = [f for f in report.findings if f.code == "TR501"]
    assert "_documents/github.com/example/docs/0123456789abcdef" in missing.message
    assert "taxreg documents fetch" in missing.message and missing.line > 1


def test_fetch_clones_the_pinned_commit_into_the_cache(tmp_path: Path, make_taxonomy: TaxonomyMaker) -> None:
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q")
    (upstream / "doc.md").write_text(DOC_TEXT)
    git(upstream, "add", ".")
    git(upstream, "commit", "-qm", "docs")
    commit = git(upstream, "rev-parse", "HEAD").strip()
    (upstream / "doc.md").write_text("# later\n")
    git(upstream, "commit", "-qam", "later")
    git(upstream, "config", "uploadpack.allowReachableSHA1InWant", "true")
    url = upstream.as_uri()
    root = make_taxonomy({"knowledge/t/doc/qna.yaml": knowledge_yaml().replace(
        "https://github.com/example/docs", url).replace("0123456789abcdef0123456789abcdef01234567", commit)})
    assert any(f.code == "TR501" for f in validate(root).findings)
    written = fetch(root / "_documents", [DocumentRef(url, commit, ("doc.md",), (1,), 1)])
    assert len(written) == 1 and (written[0] / "doc.md").read_text() == DOC_TEXT
    assert not (written[0] / ".git").exists()
    report = validate(root)
    assert not [f for f in report.findings if f.is_error]
    assert fetch(root / "_documents", [DocumentRef(url, commit, ("doc.md",), (1,), 1)]) == []


def test_fetch_failure_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="cannot fetch"):
        fetch(tmp_path, [DocumentRef((tmp_path / "nowhere").as_uri(), "a" * 40, ("x.md",), (1,), 1)])


def test_documents_fetch_command_reports_what_it_fetched(tmp_path: Path, make_taxonomy: TaxonomyMaker) -> None:
    from typer.testing import CliRunner

    from builder.cli import app

    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q")
    (upstream / "doc.md").write_text(DOC_TEXT)
    git(upstream, "add", ".")
    git(upstream, "commit", "-qm", "docs")
    commit = git(upstream, "rev-parse", "HEAD").strip()
    root = make_taxonomy({"knowledge/t/doc/qna.yaml": knowledge_yaml().replace(
        "https://github.com/example/docs", upstream.as_uri()).replace("0123456789abcdef0123456789abcdef01234567",
                                                                      commit)})
    first = CliRunner().invoke(app, ["documents", "fetch", str(root)])
    assert first.exit_code == 0 and "1 repository checkout(s) fetched, 0 already cached" in first.output
    again = CliRunner().invoke(app, ["documents", "fetch", str(root)])
    assert "0 repository checkout(s) fetched, 1 already cached" in again.output
