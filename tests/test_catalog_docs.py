"""The catalog documents itself: every table, view, table macro and column carries a COMMENT ON, in the catalog
and in its public copies (the site's audit.duckdb, a release's audit/), and the console's examples of column
comments answer with them. The browser half is in tests/test_site_browser.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb

from builder.site.audit import audit_pages, canned_queries
from registry.catalog.connection import open_catalog
from registry.catalog.publish import PRIVATE_COLUMNS, PRIVATE_TABLES
from tests.test_publish import catalog, published, release_copy, rows  # noqa: F401 (module-scoped fixtures)

COLUMNS = """SELECT c.table_name, c.column_name, c.comment FROM duckdb_columns() c
             WHERE c.database_name = current_database() AND c.schema_name = 'main' AND NOT c.internal
             ORDER BY c.table_name, c.column_index"""
OBJECTS = """SELECT 'table', table_name, comment FROM duckdb_tables()
                 WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal
             UNION ALL SELECT 'view', view_name, comment FROM duckdb_views()
                 WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal
             UNION ALL SELECT 'macro', function_name, comment FROM duckdb_functions()
                 WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal
                   AND function_type IN ('macro', 'table_macro')
             ORDER BY ALL"""
# What a few key columns must say (hash, unit, join), beyond having a comment at all.
KEY_NOTES = {
    ("contribution_version", "version_id"): ("sha256 of the qna.yaml bytes", "joins"),
    ("seed_example", "seed_id"): ("sha256 of canonical JSON", "joins sample_lineage.parent_id"),
    ("source_chunk", "char_end"): ("exclusive",),
    ("leaf_cache", "mtime_ns"): ("ns since 1970",),
    ("v_sample_provenance", "doc_sha256"): ("joins source_document.doc_sha256",),
}


def undocumented(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every object and column without a comment, or with one too short to say what it holds."""
    found = [f"{kind} {name}" for kind, name, comment in con.execute(OBJECTS).fetchall() if not _says(comment)]
    return found + [f"column {table}.{column}" for table, column, comment in con.execute(COLUMNS).fetchall()
                    if not _says(comment)]


def _says(comment: str | None) -> bool:
    return comment is not None and len(comment.split()) >= 3


def test_a_fresh_catalog_documents_every_table_view_macro_and_column(tmp_path: Path) -> None:
    con = open_catalog(tmp_path / "catalog.duckdb")
    try:
        missing = undocumented(con)
        columns = con.execute(COLUMNS).fetchall()
        kinds = {kind for kind, _, _ in con.execute(OBJECTS).fetchall()}
    finally:
        con.close()
    assert missing == [], ("COMMENT ON missing (add it in the migration that adds the object or column; "
                           f"CREATE OR REPLACE VIEW drops its column comments): {', '.join(missing)}")
    assert len(columns) >= 311 and kinds == {"table", "view", "macro"}


def test_the_public_copy_keeps_every_comment(catalog: Path, published: Path) -> None:  # noqa: F811
    public = duckdb.connect(str(published / "audit.duckdb"), read_only=True)
    try:
        assert undocumented(public) == []
        copied_columns, copied_objects = public.execute(COLUMNS).fetchall(), public.execute(OBJECTS).fetchall()
    finally:
        public.close()
    source = duckdb.connect(str(catalog), read_only=True)
    try:
        columns, objects = source.execute(COLUMNS).fetchall(), source.execute(OBJECTS).fetchall()
    finally:
        source.close()
    private = {(t, c) for t, cols in PRIVATE_COLUMNS.items() for c in cols}
    assert copied_columns == [r for r in columns if r[0] not in PRIVATE_TABLES and r[:2] not in private]
    assert copied_objects == [r for r in objects if r[1] not in PRIVATE_TABLES]
    views = {name for kind, name, _ in objects if kind == "view"}
    assert len([r for r in copied_columns if r[0] in views]) >= 60  # view columns too, not only tables'


def test_a_release_copy_keeps_every_comment_and_says_what_it_rewrote(catalog: Path,  # noqa: F811
                                                                     tmp_path: Path) -> None:
    work = tmp_path / "catalog.duckdb"
    shutil.copyfile(catalog, work)
    release_copy(work, tmp_path / "audit")
    con = duckdb.connect(str(tmp_path / "audit" / "audit.duckdb"), read_only=True)
    try:
        assert undocumented(con) == []
        [(comment,)] = con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 'sample' "
                                   "AND column_name = 'first_run_id'").fetchall()
    finally:
        con.close()
    [(original,)] = rows(catalog, "SELECT comment FROM duckdb_columns() WHERE table_name = 'sample' "
                                  "AND column_name = 'first_run_id'")
    assert comment.startswith(original) and "In this release copy: random ids are replaced" in comment


def test_the_console_examples_of_column_comments_return_them(catalog: Path, published: Path) -> None:  # noqa: F811
    page = audit_pages(catalog)["audit/console.md"]
    examples = [sql for sql in re.findall(r"`(SELECT [^`]+)`", page) if "duckdb_columns()" in sql]
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        canned = [q.sql for q in canned_queries(con) if "duckdb_columns()" in q.sql]
    finally:
        con.close()
    assert examples and canned
    for sql in examples + canned:
        answer = rows(published / "audit.duckdb", sql)
        comments = [row[-1] for row in answer]
        assert len(answer) >= 9 and all(_says(c) for c in comments), sql
    lineage = dict(rows(published / "audit.duckdb", examples[0]))
    assert "seed_example.seed_id" in lineage["parent_id"]  # says how it joins


def test_key_columns_say_what_they_hash_and_how_they_join(tmp_path: Path) -> None:
    con = open_catalog(tmp_path / "catalog.duckdb")
    try:
        notes = {(table, column): comment for table, column, comment in con.execute(COLUMNS).fetchall()}
    finally:
        con.close()
    for (table, column), phrases in KEY_NOTES.items():
        assert all(p in notes[table, column] for p in phrases), (table, column, notes[table, column])
