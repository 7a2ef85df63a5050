"""The validator on InstructLab's own data: its taxonomy, its schema fixtures, its test fixtures."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from instructlab.schema.taxonomy import TaxonomyParser, TaxonomyReadingException

from registry.findings import Severity
from registry.validation import validate
from tests.conftest import shared_cases

# Codes that decide the InstructLab verdict (reading, linting and schema); the rest are our own rules.
PARSER_CODES = ("TR1", "TR15", "TR2")


def upstream_errors(path: Path) -> int:
    parser = TaxonomyParser(schema_version=0, message_format="logging")
    try:
        return parser.parse(path).errors
    except TaxonomyReadingException:  # upstream raises on YAML syntax errors: a failing verdict
        return 1


def our_errors(root: Path) -> list[str]:
    report = validate(root)
    return [f.code for f in report.findings if f.severity is Severity.ERROR and f.code.startswith(PARSER_CODES)]


def test_instructlab_taxonomy_all_leaves_valid_and_synonyms_flagged(shared_data: Path) -> None:
    root = shared_data / "instructlab-taxonomy"
    report = validate(root)
    assert len(report.leaves) == 16
    assert all(state.version is not None for state in report.leaves)
    errors = [(f.code, f.path) for f in report.findings if f.severity is Severity.ERROR]
    assert errors == [("TR304", "compositional_skills/linguistics/synonyms/attribution.txt")]
    assert not [f for f in report.findings if f.code.startswith(("TR5", "TR2", "TR1"))]


def test_instructlab_documents_resolve_from_the_cache_and_are_hashed(shared_data: Path) -> None:
    root = shared_data / "instructlab-taxonomy"
    report = validate(root)
    docs = {d.document.path: d.document for s in report.leaves for d in s.resolution.documents}
    assert set(docs) == {"chickadee.md", "swifties.md"}
    cache = root / "_documents/github.com/juliadenham/Summit_knowledge/5f7158a5ce83c4ff493bfe341fe31ecad64ff697"
    for name, doc in docs.items():
        assert doc.doc_sha256 == hashlib.sha256((cache / name).read_bytes()).hexdigest()
        assert doc.repo_commit == "5f7158a5ce83c4ff493bfe341fe31ecad64ff697"


def schema_fixtures() -> list[Path]:
    from tests.conftest import SHARED_DATA

    base = SHARED_DATA / "instructlab-schema" / "tests" / "testdata"
    return sorted(base.rglob("qna.yaml")) if base.is_dir() else []


@pytest.mark.parametrize("fixture", shared_cases(schema_fixtures()),
                         ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_schema_package_fixtures_get_the_same_verdict(fixture: Path, tmp_path: Path) -> None:
    rel = fixture.relative_to(fixture.parents[2])
    target = tmp_path / "taxonomy" / rel
    target.parent.mkdir(parents=True)
    shutil.copy(fixture, target)
    ours = our_errors(tmp_path / "taxonomy")
    upstream = upstream_errors(fixture)
    if fixture.parent.name == "empty_yaml":  # upstream only warns; an empty leaf is an error here (stricter)
        assert upstream == 0 and ours == ["TR107"]
    else:
        assert bool(ours) == bool(upstream), (ours, upstream)


def test_schema_package_wrong_names_are_warned(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "instructlab-schema/tests/testdata/knowledge/invalid_name"
    shutil.copytree(source, tmp_path / "knowledge" / "invalid_name")
    report = validate(tmp_path)
    assert sorted((f.code, f.path) for f in report.findings) == [
        ("TR109", "knowledge/invalid_name/file.yaml"), ("TR109", "knowledge/invalid_name/qna.yml")]


def instructlab_fixtures() -> list[Path]:
    from tests.conftest import SHARED_DATA

    base = SHARED_DATA / "instructlab-testdata"
    if not base.is_dir():
        return []
    found = [*base.glob("instructlab/tests/testdata/*.yaml"), *base.glob("instructlab/scripts/test-data/**/*.yaml"),
             *base.glob("sdg/tests/testdata/*.yaml")]
    return sorted(found)


@pytest.mark.parametrize("fixture", shared_cases(instructlab_fixtures()), ids=lambda p: p.name)
def test_instructlab_fixtures_get_the_same_verdict(fixture: Path, tmp_path: Path) -> None:
    top = "knowledge" if "knowledge" in fixture.name or fixture.parent.name == "knowledge" else "compositional_skills"
    target = tmp_path / "taxonomy" / top / "fixture" / "qna.yaml"
    target.parent.mkdir(parents=True)
    shutil.copy(fixture, target)
    ours = our_errors(tmp_path / "taxonomy")
    upstream = upstream_errors(target)
    assert bool(ours) == bool(upstream), (ours, upstream)


def test_real_fixture_corpus_is_present(shared_data: Path) -> None:
    assert len(schema_fixtures()) >= 9 and len(instructlab_fixtures()) >= 10
