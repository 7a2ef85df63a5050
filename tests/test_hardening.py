"""Inputs and situations found in review: each one gets a clear finding or error, never a crash or a stale answer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.settings import load
from registry.catalog.indexer import index
from registry.catalog.query import run_query
from registry.config import ValidationConfig
from registry.documents import DocumentResolver, fetch, repo_problem
from registry.errors import CatalogError, QueryError, RegistryError, TaxonomyNotFound
from registry.licenses import LicensePolicy
from registry.records import DocumentRef
from registry.validation import validate
from tests.conftest import DOC_COMMIT, TaxonomyMaker, document_files, knowledge_yaml, skill_yaml

runner = CliRunner()


@pytest.mark.parametrize(("repo", "commit"), [
    ("--upload-pack=touch /tmp/pwned;git-upload-pack", "a" * 40),
    ("https://github.com/o/r", "../../../../secret"),
    ("https://github.com/o/r", "main"),
    ("git@..:o/r", "a" * 40),
    ("/local/path", "a" * 40),
])
def test_unsafe_document_references_are_findings_and_never_reach_git(
        repo: str, commit: str, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    assert repo_problem(repo, commit)
    text = knowledge_yaml().replace("https://github.com/example/docs", f"'{repo}'").replace(DOC_COMMIT, f"'{commit}'")
    root = make_taxonomy({"knowledge/t/doc/qna.yaml": text, **document_files()})
    codes = [f.code for f in validate(root).findings]
    assert codes == ["TR506"]
    assert fetch(tmp_path / "cache", [DocumentRef(repo, commit, ("x.md",), (1,), 1)]) == []
    assert not Path("/tmp/pwned").exists()


def test_a_policy_change_rechecks_cached_verdicts(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"compositional_skills/a/x/qna.yaml": skill_yaml()})
    catalog = tmp_path / "c.duckdb"
    index(root, catalog)
    strict = ValidationConfig(policy=LicensePolicy(frozenset({"MIT"})))
    report = index(root, catalog, strict, allow_errors=True)
    assert [f.code for f in report.findings] == ["TR304"]
    assert run_query(catalog, "SELECT status, current_version_id FROM contribution").rows == [("invalid", None)]


def test_allow_errors_then_plain_index_is_still_refused(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"compositional_skills/a/x/qna.yaml": skill_yaml(n=3)})
    catalog = tmp_path / "c.duckdb"
    index(root, catalog, allow_errors=True)
    result = runner.invoke(app, ["index", str(root), "--catalog", str(catalog)])
    assert result.exit_code == 1 and "--allow-errors" in result.output
    again = runner.invoke(app, ["index", str(root), "--catalog", str(catalog), "--allow-errors", "--format", "json"])
    assert again.exit_code == 1 and '"errors": 1' in again.stdout


def test_flow_style_and_knowledge_shaped_foundational_leaves(make_taxonomy: TaxonomyMaker) -> None:
    qas = ", ".join(f"{{question: Q{i}?, answer: A{i}}}" for i in range(3))
    seeds = ", ".join(f"{{context: Paragraph {i} says fact {i} about the topic., "
                      f"questions_and_answers: [{qas.replace('Q', f'Q{i}x')}]}}" for i in range(5))
    flow = knowledge_yaml().split("seed_examples:")[0] + f"seed_examples: [{seeds}]\n" + \
        "document:" + knowledge_yaml().split("document:", 1)[1].split("\ndocument:")[-1]
    root = make_taxonomy({"knowledge/t/flow/qna.yaml": flow,
                          "foundational_skills/k/doc/qna.yaml": knowledge_yaml(prefix="Foundational"),
                          **document_files()})
    report = validate(root)
    assert not [f for f in report.findings if f.is_error], report.findings
    kinds = {s.leaf.contribution_id: len(s.version.seeds) for s in report.leaves if s.version}
    assert kinds == {"knowledge/t/flow": 15, "foundational_skills/k/doc": 15}


def test_symlink_loops_are_findings(make_taxonomy: TaxonomyMaker) -> None:
    root = make_taxonomy({"compositional_skills/a/ok/qna.yaml": skill_yaml()})
    loop = root / "compositional_skills/a/loop"
    loop.mkdir()
    os.symlink("qna.yaml", loop / "qna.yaml")
    (loop / "attribution.txt").symlink_to(loop / "attribution.txt")
    codes = sorted(f.code for f in validate(root).findings)
    assert "TR111" in codes


def test_queries_and_paths_that_used_to_crash(tmp_path: Path, make_taxonomy: TaxonomyMaker) -> None:
    root = make_taxonomy({"compositional_skills/a/ok/qna.yaml": skill_yaml()})
    catalog = tmp_path / "c.duckdb"
    index(root, catalog)
    with pytest.raises(QueryError, match="empty"):
        run_query(catalog, "  ;")
    assert run_query(catalog, "SELECT 1 AS a, 2 AS a").columns == ["a", "a_2"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CatalogError, match="cannot create"):
        index(root, blocker / "c.duckdb")
    with pytest.raises(TaxonomyNotFound):
        index(blocker, tmp_path / "never.duckdb")
    assert not (tmp_path / "never.duckdb").exists()


@pytest.mark.parametrize("text", [
    "validate = 3\n", "[validate]\nmax_file_size = -5\n", "[validate]\nwords = {context = 'x'}\n",
    "[validate]\nallowed_licenses = [1, 2]\n", "[validate]\nallowed_licenses = 'MIT'\n",
    "[validate]\nallowed_licenses = ['Not A License']\n"])
def test_bad_settings_are_clear_errors(text: str, tmp_path: Path) -> None:
    path = tmp_path / "taxreg.toml"
    path.write_text(text)
    with pytest.raises(RegistryError):
        load(path)


def test_allowed_licenses_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "taxreg.toml"
    path.write_text("[validate]\nallowed_licenses = ['cc-by-4.0', 'apache 2.0']\n")
    assert load(path).allowed_licenses == ("CC-BY-4.0", "Apache-2.0")


def test_another_documents_folder_is_another_cache_state(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"knowledge/t/doc/qna.yaml": knowledge_yaml()})
    catalog = tmp_path / "c.duckdb"
    for name in ("one", "two"):
        outcome = index(root, catalog, ValidationConfig(documents_dir=tmp_path / name), allow_errors=True)
        [missing] = [f for f in outcome.findings if f.code == "TR501"]
        assert str(tmp_path / name) in missing.message


def test_control_character_after_non_ascii_text_is_located() -> None:
    from registry.yamlfile import YamlProblem, parse

    with pytest.raises(YamlProblem) as caught:
        parse("a: ééééééééé\x07\n")
    assert (caught.value.code, caught.value.mark.line, caught.value.mark.col) == ("TR103", 1, 13)


def test_document_patterns_without_wildcards_match_what_glob_matches(tmp_path: Path) -> None:
    """Patterns without wildcards skip glob: the answer must be glob's, links and odd names included."""
    base = tmp_path / "repo"
    (base / "sub").mkdir(parents=True)
    (base / "a.md").write_text("# A\n")
    (base / "sub" / "b.md").write_text("b\n")
    (base / ".hidden.md").write_text("h\n")
    (base / "folder.md").mkdir()
    (base / "notes.txt").write_text("n\n")
    os.symlink("a.md", base / "inside.md")
    os.symlink("/etc/hostname", base / "outside.md")
    patterns = ["a.md", "./a.md", "sub//b.md", "sub/./b.md", ".hidden.md", "folder.md", "notes.txt", "missing.md",
                "a.md/x.md", "A.md", "inside.md", "outside.md", "nul\x00.md"]
    inside = os.path.realpath(base) + os.sep

    def by_glob(pattern: str) -> list[Path]:
        return [f for f in sorted(base.glob(pattern)) if f.suffix in (".md", ".pdf") and f.is_file()
                and os.path.realpath(f).startswith(inside)]

    resolver = DocumentResolver(tmp_path)
    for pattern in patterns:
        assert resolver._match(base, pattern) == by_glob(pattern), pattern
    assert resolver._match(base, "inside.md") == [base / "inside.md"]  # a link that stays inside counts
    assert resolver._match(base, "outside.md") == []
