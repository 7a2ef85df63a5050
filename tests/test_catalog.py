"""The DuckDB catalog: a real file, incremental runs, retirement, refusals and crash safety."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from registry import validation
from registry.catalog.connection import SCHEMA_VERSION, open_read_only
from registry.catalog.indexer import index
from registry.catalog.query import run_query
from registry.errors import CatalogError, QueryError, ValidationFailed
from tests.conftest import EXAMPLE_TAXONOMY, TaxonomyMaker, document_files, git, knowledge_yaml, skill_yaml


def rows(catalog: Path, sql: str) -> list[tuple[object, ...]]:
    return run_query(catalog, sql).rows


def small_tree(make_taxonomy: TaxonomyMaker) -> Path:
    return make_taxonomy({
        "compositional_skills/writing/a/qna.yaml": skill_yaml(created_by="alice", prefix="Alpha"),
        "compositional_skills/writing/b/qna.yaml": skill_yaml(created_by="bob", prefix="Beta"),
        "knowledge/testing/doc/qna.yaml": knowledge_yaml(created_by="alice"),
        **document_files(),
    })


def test_index_writes_every_table(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    outcome = index(root, catalog)
    assert (outcome.status, outcome.leaves_total, outcome.leaves_indexed) == ("indexed", 3, 3)
    assert rows(catalog, "SELECT count(*) FROM contribution WHERE status = 'active'") == [(3,)]
    assert rows(catalog, "SELECT count(*) FROM seed_example") == [(25,)]
    assert rows(catalog, "SELECT login FROM contributor ORDER BY 1") == [("alice",), ("bob",)]
    doc = rows(catalog, "SELECT path, license_spdx, license_class FROM source_document")
    assert doc == [("doc.md", "CC-BY-4.0", "commercial")]
    assert rows(catalog, "SELECT count(*) FROM contribution_source") == [(1,)]
    assert rows(catalog, "SELECT count(*) FROM attribution WHERE license_spdx = 'CC-BY-4.0'") == [(3,)]
    versions = rows(catalog, "SELECT version_id, source_path FROM contribution_version ORDER BY 2")
    assert all(v == hashlib.sha256((root / p).read_bytes()).hexdigest() for v, p in versions)


def test_rerun_with_nothing_changed_is_skipped(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    again = index(root, catalog)
    assert (again.status, again.leaves_parsed) == ("unchanged", 0)


def test_only_changed_files_are_parsed_and_versions_are_kept(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    leaf = root / "compositional_skills/writing/a/qna.yaml"
    leaf.write_text(skill_yaml(n=6, created_by="alice", prefix="Alpha"))
    outcome = index(root, catalog)
    assert (outcome.status, outcome.leaves_parsed, outcome.leaves_total) == ("indexed", 1, 3)
    assert rows(catalog, "SELECT count(*) FROM contribution_version WHERE contribution_id LIKE '%/a'") == [(2,)]
    current = rows(catalog, "SELECT current_version_id FROM contribution WHERE contribution_id LIKE '%/a'")
    assert current == [(hashlib.sha256(leaf.read_bytes()).hexdigest(),)]


def test_removed_leaves_are_retired_not_deleted(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    (root / "compositional_skills/writing/b/qna.yaml").unlink()
    outcome = index(root, catalog)
    assert outcome.leaves_retired == 1
    assert rows(catalog, "SELECT status FROM contribution WHERE contribution_id LIKE '%/b'") == [("retired",)]
    assert rows(catalog, "SELECT count(*) FROM seed_example WHERE contribution_id LIKE '%/b'") == [(5,)]


def test_errors_leave_the_previous_catalog_untouched(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    (root / "compositional_skills/writing/a/qna.yaml").write_text("version: 3\nversion: 3\n")
    with pytest.raises(ValidationFailed) as caught:
        index(root, catalog)
    assert [f.code for f in caught.value.findings if f.is_error] == ["TR102"]
    assert rows(catalog, "SELECT count(*) FROM index_run") == [(1,)]
    assert rows(catalog, "SELECT count(*) FROM contribution_version") == [(3,)]


def test_allow_errors_indexes_valid_leaves_and_records_the_rest(make_taxonomy: TaxonomyMaker,
                                                               tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    (root / "compositional_skills/writing/a/qna.yaml").write_text("- not a mapping\n")
    outcome = index(root, catalog, allow_errors=True)
    assert (outcome.status, outcome.leaves_indexed) == ("indexed_with_errors", 2)
    assert rows(catalog, "SELECT status FROM contribution WHERE contribution_id LIKE '%/a'") == [("invalid",)]
    assert rows(catalog, "SELECT code, contribution_id FROM finding WHERE severity = 'error'") == [
        ("TR106", "compositional_skills/writing/a")]


def test_queries_are_read_only_and_cannot_touch_files(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    with pytest.raises(QueryError, match="read-only"):
        run_query(catalog, "DELETE FROM contribution")
    with pytest.raises(QueryError, match="files"):
        run_query(catalog, f"COPY contribution TO '{tmp_path / 'x.csv'}'")
    with pytest.raises(QueryError):
        run_query(catalog, "SELEC nonsense")
    with pytest.raises(CatalogError, match="no catalog"):
        run_query(tmp_path / "missing.duckdb", "SELECT 1")


def test_every_table_explains_itself(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    tables = rows(catalog, "SELECT table_name, comment FROM duckdb_tables()")
    assert len(tables) >= 12 and all(comment for _, comment in tables)
    con = open_read_only(catalog)
    assert con.execute("SELECT value FROM catalog_meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),)
    con.close()


def test_newer_catalog_is_refused(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    con = duckdb.connect(str(catalog))
    con.execute("UPDATE catalog_meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(CatalogError, match="understands up to"):
        index(root, catalog)


def test_git_commits_and_versions_are_linked(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first\n\nSigned-off-by: A <a@example.com>")
    head = git(root, "rev-parse", "HEAD").strip()
    (root / "compositional_skills/writing/b/qna.yaml").write_text(skill_yaml(n=7, prefix="Beta"))
    index(root, catalog)
    assert rows(catalog, "SELECT commit_sha, signed_off FROM taxonomy_commit") == [(head, True)]
    linked = dict(rows(catalog, "SELECT contribution_id, commit_sha FROM contribution_version"))
    assert linked["compositional_skills/writing/a"] == head
    assert linked["compositional_skills/writing/b"] is None  # uncommitted edit


def test_the_example_taxonomy_indexes_clean(tmp_path: Path) -> None:
    outcome = index(EXAMPLE_TAXONOMY, tmp_path / "c.duckdb")
    assert outcome.errors == 0 and outcome.warnings == 0 and outcome.leaves_indexed >= 12
    kinds = dict(rows(tmp_path / "c.duckdb", "SELECT kind, count(*) FROM contribution GROUP BY kind"))
    assert set(kinds) == {"knowledge", "compositional_skill", "foundational_skill"}
    assert rows(tmp_path / "c.duckdb", "SELECT count(*) FROM contribution_version WHERE grounded") >= [(1,)]


KILLER = """
import sys, time
from pathlib import Path
import registry.catalog.indexer as ix
original = ix._Run._contributors
def slow(self):
    original(self)
    print("inside", flush=True)
    time.sleep(60)
ix._Run._contributors = slow
ix.index(Path(sys.argv[1]), Path(sys.argv[2]))
"""


def test_kill_9_mid_transaction_keeps_the_previous_catalog(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    (root / "compositional_skills/writing/c/qna.yaml").parent.mkdir(parents=True)
    (root / "compositional_skills/writing/c/qna.yaml").write_text(skill_yaml(prefix="Gamma"))
    (root / "compositional_skills/writing/c/attribution.txt").write_text((root / "compositional_skills/writing/a/"
                                                                          "attribution.txt").read_text())
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(root), str(catalog)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parents[1])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "inside"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.1)
    assert rows(catalog, "SELECT count(*) FROM contribution") == [(3,)]
    assert rows(catalog, "SELECT count(*) FROM index_run") == [(1,)]
    assert index(root, catalog).leaves_indexed == 4


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(30)
"""


def test_a_catalog_in_use_is_a_clear_error(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(catalog)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(CatalogError, match="in use by another process"):
            index(root, catalog)
    finally:
        holder.kill()
        holder.wait()


def test_touched_but_unchanged_files_are_not_parsed_again(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    leaf = root / "compositional_skills/writing/a/qna.yaml"
    os.utime(leaf, ns=(leaf.stat().st_atime_ns, leaf.stat().st_mtime_ns + 5_000_000_000))
    assert index(root, catalog).leaves_parsed == 0
    os.utime(leaf, ns=(leaf.stat().st_atime_ns, leaf.stat().st_mtime_ns + 5_000_000_000))
    again = index(root, catalog)
    assert (again.status, again.leaves_parsed) == ("indexed", 0)


def test_a_changed_document_cache_rechecks_its_leaves(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    doc = next((root / "_documents").rglob("doc.md"))
    doc.write_text(doc.read_text().replace("Paragraph 2 says fact 2", "Paragraph 2 now says something else"))
    outcome = index(root, catalog)
    assert outcome.leaves_parsed >= 1
    assert [f.code for f in outcome.findings] == ["TR504"]
    assert rows(catalog, "SELECT count(*) FROM source_document") == [(2,)]  # both document versions kept


def test_commit_and_document_license_follow_later_changes(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"knowledge/testing/doc/qna.yaml": knowledge_yaml(), **document_files()})
    catalog = tmp_path / "c.duckdb"
    git(root, "init", "-q")
    index(root, catalog)  # not committed yet
    assert rows(catalog, "SELECT commit_sha FROM contribution_version") == [(None,)]
    git(root, "add", ".")
    git(root, "commit", "-qm", "add")
    index(root, catalog)
    head = git(root, "rev-parse", "HEAD").strip()
    assert rows(catalog, "SELECT commit_sha FROM contribution_version") == [(head,)]
    attribution = root / "knowledge/testing/doc/attribution.txt"
    attribution.write_text(attribution.read_text().replace("CC-BY-4.0", "CC-BY-SA-4.0"))
    index(root, catalog)
    assert rows(catalog, "SELECT license_spdx, share_alike FROM source_document") == [("CC-BY-SA-4.0", True)]


def test_links_follow_the_current_attribution(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = small_tree(make_taxonomy), tmp_path / "c.duckdb"
    index(root, catalog)
    attribution = root / "compositional_skills/writing/a/attribution.txt"
    attribution.write_text(attribution.read_text().replace("Test work", "Renamed work"))
    index(root, catalog)
    linked = rows(catalog, "SELECT count(*) FROM contribution_attribution WHERE contribution_id LIKE '%/a'")
    assert linked == [(1,)]
    assert rows(catalog, "SELECT count(*) FROM attribution WHERE contribution_id LIKE '%/a'") == [(2,)]  # history


CONTENT_TABLES = ("contribution", "contribution_version", "seed_example", "source_document", "contribution_source",
                  "attribution", "contribution_attribution", "contributor", "finding", "leaf_cache")


def table_contents(catalog: Path) -> dict[str, list[str]]:
    """Every content table's rows, sorted, without the columns that name the run."""
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        contents = {}
        for table in CONTENT_TABLES:
            columns = [name for (name,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table],
            ).fetchall() if name != "run_id" and not name.endswith("_run")]
            contents[table] = sorted(map(repr, con.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()))
        return contents
    finally:
        con.close()


def many_leaves(make_taxonomy: TaxonomyMaker) -> Path:
    files: dict[str, str | bytes] = {
        f"compositional_skills/writing/s{i:02d}/qna.yaml":
            skill_yaml(created_by=f"user{i % 3}", prefix=f"Leaf {i} asks") for i in range(12)}
    files["compositional_skills/writing/copy/qna.yaml"] = skill_yaml(prefix="Leaf 1 asks")  # TR404 across leaves
    files["compositional_skills/writing/broken/qna.yaml"] = "version: 3\nversion: 3\n"  # TR102
    files["knowledge/testing/doc/qna.yaml"] = knowledge_yaml()
    return make_taxonomy({**files, **document_files()})


def test_parse_workers_write_what_one_process_writes(make_taxonomy: TaxonomyMaker, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The parallel path (fork workers, results streamed to the writer in batches) writes the same rows."""
    root = many_leaves(make_taxonomy)
    serial, parallel = tmp_path / "serial.duckdb", tmp_path / "parallel.duckdb"
    index(root, serial, allow_errors=True, workers=1)
    monkeypatch.setattr(validation, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(validation, "SINK_BATCH", 4)  # 15 leaves: three full batches and a partial one
    outcome = index(root, parallel, allow_errors=True, workers=2)
    assert (outcome.leaves_parsed, outcome.leaves_indexed) == (15, 14)
    assert table_contents(parallel) == table_contents(serial)
    assert rows(parallel, "SELECT count(*) FROM seed_example") == [(12 * 5 + 5 + 15,)]
    assert rows(parallel, "SELECT code, count(*) FROM finding GROUP BY code ORDER BY code") == [
        ("TR102", 1), ("TR404", 5)]


def test_rows_streamed_before_an_error_is_found_are_rolled_back(make_taxonomy: TaxonomyMaker, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, catalog = many_leaves(make_taxonomy), tmp_path / "c.duckdb"
    (root / "compositional_skills/writing/broken/qna.yaml").unlink()
    first = index(root, catalog)
    (root / "compositional_skills/writing/zz/qna.yaml").parent.mkdir()
    (root / "compositional_skills/writing/zz/qna.yaml").write_text("version: 3\nversion: 3\n")
    (root / "compositional_skills/writing/s03/qna.yaml").write_text(skill_yaml(prefix="Changed"))
    monkeypatch.setattr(validation, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(validation, "SINK_BATCH", 1)  # s03's new version is written before zz is checked
    with pytest.raises(ValidationFailed):
        index(root, catalog, workers=2)
    assert rows(catalog, "SELECT count(*), count(DISTINCT contribution_id) FROM contribution_version") == [
        (first.leaves_indexed, first.leaves_indexed)]
    assert rows(catalog, "SELECT count(*) FROM index_run") == [(1,)]
