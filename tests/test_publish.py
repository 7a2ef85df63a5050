"""The public copy of the catalog (registry.catalog.publish) and the site's Audit section (builder.site.audit).

The browser half (DuckDB-WASM opening this file) is in tests/test_site_browser.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from builder.datasets import DatasetOptions, build_dataset
from builder.generators.run import GenerateOptions, generate
from builder.site.audit import REQUIRE_ENGINE, audit_pages, canned_queries, engine_note, write_audit
from registry.catalog.connection import open_catalog
from registry.catalog.indexer import index
from registry.catalog.publish import (
    PRIVATE_COLUMNS,
    PRIVATE_TABLES,
    PublishedFile,
    publish,
    write_release_audit,
)
from registry.catalog.reproducible import Steady
from registry.errors import CatalogError, EnvironmentProblem
from tests.conftest import EXAMPLE_TAXONOMY, REPO

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
WASM_STORAGE_VERSIONS = range(64, 68)  # what DuckDB-WASM 1.32 (engine 1.4) reads (PROVENANCE.md)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("catalog")
    path = folder / "catalog.duckdb"
    index(EXAMPLE_TAXONOMY, path)
    generate(EXAMPLE_TAXONOMY, path, GenerateOptions())
    build_dataset(path, folder / "datasets", DatasetOptions())
    return path


@pytest.fixture(scope="module")
def published(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("public")
    publish(catalog, out)
    return out


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return list(con.execute(sql).fetchall())
    finally:
        con.close()


def test_storage_version_the_browser_reads_and_no_constraints(catalog: Path, published: Path) -> None:
    header = (published / "audit.duckdb").read_bytes()[:20]
    assert header[8:12] == b"DUCK"
    assert struct.unpack("<Q", header[12:20])[0] in WASM_STORAGE_VERSIONS
    assert rows(published / "audit.duckdb", "SELECT count(*) FROM duckdb_constraints()") == [(0,)]
    assert rows(catalog, "SELECT count(*) > 0 FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'") \
        == [(True,)]


def test_tables_comments_and_private_parts(catalog: Path, published: Path) -> None:
    db = published / "audit.duckdb"
    listing = "SELECT table_name, comment FROM duckdb_tables() ORDER BY 1"
    source, copy = dict(rows(catalog, listing)), dict(rows(db, listing))
    assert set(copy) == set(source) - set(PRIVATE_TABLES)
    assert all(copy[t] == source[t] and copy[t] for t in copy)  # every table documented, as in the catalog
    columns = ("SELECT table_name, column_name, comment FROM duckdb_columns() "
               "WHERE comment IS NOT NULL AND table_name NOT LIKE 'v\\_%' ESCAPE '\\' ORDER BY ALL")
    private = {(t, c) for t, cols in PRIVATE_COLUMNS.items() for c in cols}
    assert [r for r in rows(catalog, columns) if r[0] not in PRIVATE_TABLES and r[:2] not in private] \
        == rows(db, columns)
    names = "SELECT table_name, column_name FROM duckdb_columns() WHERE table_name IN ('index_run', 'teacher_request')"
    assert not private & set(rows(db, names))
    assert rows(db, "SELECT DISTINCT data_type FROM duckdb_columns() WHERE column_name IN ('params', 'messages')") \
        == [("VARCHAR",)]  # JSON lives in an extension the offline browser cannot load
    meta = dict(rows(db, "SELECT key, value FROM catalog_meta"))
    assert meta["public_copy.storage_version"] == "v1.4.0" and "public_copy.excluded.leaf_cache" in meta


def test_views_and_macro_answer_as_in_the_catalog(catalog: Path, published: Path) -> None:
    db = published / "audit.duckdb"
    views = "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal ORDER BY 1"
    assert rows(db, views) == rows(catalog, views) and len(rows(db, views)) >= 9
    for sql in ("SELECT count(*), count(DISTINCT contributor) FROM v_sample_provenance",
                "SELECT * FROM v_license_summary", "SELECT count(*) FROM v_orphan_samples"):
        assert rows(db, sql) == rows(catalog, sql)
    [(subject,)] = rows(catalog, "SELECT contribution_id FROM sample_lineage ORDER BY 1 LIMIT 1")
    impact = f"SELECT what, id FROM takedown_impact('{subject}') ORDER BY ALL"
    assert rows(db, impact) == rows(catalog, impact)
    assert {r[0] for r in rows(db, impact)} >= {"sample", "run", "dataset"}
    assert rows(db, "SELECT comment FROM duckdb_functions() WHERE function_name = 'takedown_impact'")[0][0]
    with pytest.raises(duckdb.Error, match="read-only"):
        rows(db, "DELETE FROM sample")


def test_publishing_twice_gives_the_same_bytes_for_every_file(catalog: Path, published: Path,
                                                              tmp_path: Path) -> None:
    again = publish(catalog, tmp_path / "again")
    parquet = [f for f in again if f.relpath.endswith(".parquet")]
    assert {f.table for f in parquet} == {r[0] for r in rows(published / "audit.duckdb", "FROM duckdb_tables() "
                                                                      "SELECT table_name")}
    assert {f.relpath for f in again} == {p.name for p in published.iterdir()}
    for f in again:
        path = tmp_path / "again" / f.relpath
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256 and path.stat().st_size == f.byte_size
        assert f.reproducible and path.read_bytes() == (published / f.relpath).read_bytes(), f.relpath
    assert (published / "audit.duckdb").read_bytes()[124:140] == bytes(16)  # DuckDB's random identifier, zeroed
    sample = next(f for f in parquet if f.table == "sample")
    ids = [r[0] for r in rows(tmp_path / "again" / "audit.duckdb",
                              f"SELECT sample_id FROM '{tmp_path / 'again' / 'sample.parquet'}'")]
    assert ids == sorted(ids) and len(ids) == sample.rows == rows(catalog, "SELECT count(*) FROM sample")[0][0]
    # The site's copy keeps the catalog's real run ids and times.
    runs = "SELECT run_id, started_at FROM run ORDER BY ALL"
    assert rows(published / "audit.duckdb", runs) == rows(catalog, runs)


def test_unchanged_tables_reuse_the_previous_parquet(catalog: Path, published: Path, tmp_path: Path) -> None:
    changed = tmp_path / "catalog.duckdb"
    shutil.copyfile(catalog, changed)
    con = duckdb.connect(str(changed))
    con.execute("UPDATE contributor SET display_name = 'Renamed' WHERE contributor_id = "
                "(SELECT min(contributor_id) FROM contributor)")
    con.close()
    files = {f.relpath: f for f in publish(changed, tmp_path / "next", previous=published)}
    fresh = {f.relpath: f for f in publish(changed, tmp_path / "fresh")}
    assert {k: f.sha256 for k, f in files.items()} == {k: f.sha256 for k, f in fresh.items()}
    linked = {name for name in files if name.endswith(".parquet")
              and (tmp_path / "next" / name).stat().st_ino == (published / name).stat().st_ino}
    assert linked == {name for name in files if name.endswith(".parquet")} - {"contributor.parquet"}
    assert ("Renamed",) in rows(changed, f"SELECT display_name FROM '{tmp_path / 'next' / 'contributor.parquet'}'")


def test_a_failed_publish_leaves_the_previous_copy(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = {f.relpath: f.sha256 for f in publish(catalog, out)}
    (out / "gone_table.parquet").write_bytes(b"stale")
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(catalog, broken)
    con = duckdb.connect(str(broken))
    con.execute("UPDATE catalog_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(CatalogError, match="schema 99"):
        publish(broken, out)
    with pytest.raises(CatalogError, match="no catalog"):
        publish(tmp_path / "missing.duckdb", out)
    assert {p.name for p in out.iterdir()} == {*first, "gone_table.parquet"}  # no staging folder left behind
    assert all(hashlib.sha256((out / name).read_bytes()).hexdigest() == sha for name, sha in first.items())
    publish(catalog, out)
    assert not (out / "gone_table.parquet").exists()  # a table that no longer exists loses its file


def fresh_catalog(folder: Path) -> Path:
    """The `catalog` fixture's inputs, indexed anew into folder: other random ids, times and paths."""
    folder.mkdir()
    path = folder / "catalog.duckdb"
    index(EXAMPLE_TAXONOMY, path)
    generate(EXAMPLE_TAXONOMY, path, GenerateOptions())
    build_dataset(path, folder / "datasets", DatasetOptions())
    return path


def release_copy(catalog: Path, out: Path) -> list[PublishedFile]:
    con = open_catalog(catalog)
    try:
        files = write_release_audit(con, out, Steady(EPOCH, catalog.parent))
        assert con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'public_copy'"
                           ).fetchall() == [(0,)]  # detached again
        assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()[0][0]
    finally:
        con.close()
    return files


def test_release_copies_of_the_same_inputs_are_byte_identical(tmp_path: Path) -> None:
    first, second = fresh_catalog(tmp_path / "a"), fresh_catalog(tmp_path / "b")
    for path in (first, second):  # a run still going: its end stays NULL
        con = duckdb.connect(str(path))
        con.execute("UPDATE run SET ended_at = NULL WHERE stage = 'generate'")
        con.close()
    volatile = "SELECT run_id FROM run UNION ALL SELECT run_id FROM index_run UNION ALL SELECT build_id FROM build"
    assert not set(rows(first, volatile)) & set(rows(second, volatile))  # the catalogs differ
    files = [release_copy(first, tmp_path / "a" / "audit"), release_copy(second, tmp_path / "b" / "audit")]
    assert [(f.relpath, f.sha256) for f in files[0]] == [(f.relpath, f.sha256) for f in files[1]]
    assert all(f.reproducible for f in files[0]) and "audit.duckdb" in {f.relpath for f in files[0]}
    db = tmp_path / "a" / "audit" / "audit.duckdb"
    provenance = "SELECT count(*) FROM v_sample_provenance"
    assert rows(db, provenance) == rows(first, provenance)
    # No random id, local path or time after the epoch is left, in any column of any table.
    secrets = {str(r[0]) for r in rows(first, volatile + " UNION ALL SELECT value FROM catalog_meta "
                                                          "WHERE key = 'catalog_id'")} | {str(tmp_path)}
    con = duckdb.connect(str(db), read_only=True)
    try:
        for table, column, dtype in con.execute("SELECT table_name, column_name, data_type FROM duckdb_columns() "
                                                "WHERE NOT internal AND table_name NOT LIKE 'v\\_%' ESCAPE '\\'"
                                                ).fetchall():
            if dtype.startswith("TIMESTAMP"):
                latest = f'SELECT max("{column}") <= TIMESTAMPTZ \'{EPOCH}\', count("{column}") FROM "{table}"'
                [(clamped, count)] = con.execute(latest).fetchall()
                assert clamped is not False and count == rows(first, latest)[0][1], (table, column)  # NULLs kept
            text = " ".join(str(v) for (v,) in con.execute(f'SELECT DISTINCT "{column}"::VARCHAR FROM "{table}"'
                                                           ).fetchall())
            assert not [s for s in secrets if s in text], (table, column)
        runs = con.execute("SELECT run_id, stage, stats FROM run ORDER BY run_id").fetchall()
        meta = dict(con.execute("SELECT key, value FROM catalog_meta").fetchall())
        [(comment,)] = con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 'run' "
                                   "AND column_name = 'started_at'").fetchall()
    finally:
        con.close()
    assert [r[0] for r in runs] == [f"run-{n}" for n in range(1, len(runs) + 1)]
    stats = [json.loads(r[2]) for r in runs if r[1] == "generate"]
    assert stats and all("kept" in s for s in stats)
    assert meta.get("catalog_id", "catalog") == "catalog"
    assert "SOURCE_DATE_EPOCH" in meta["public_copy.reproducible.time"]
    assert "clamped to it" in comment


def test_audit_page_lists_downloads_views_and_their_sql(catalog: Path) -> None:
    pages = audit_pages(catalog)
    assert set(pages) == {"audit/index.md", "audit/console.md"}
    index_page = pages["audit/index.md"]
    for (view,) in rows(catalog, "SELECT view_name FROM duckdb_views() WHERE NOT internal"):
        assert f"### `{view}`" in index_page
    assert "CREATE VIEW v_orphan_samples AS\nSELECT s.* FROM sample s" in index_page  # the migration's layout
    assert "CREATE OR REPLACE MACRO takedown_impact(subject) AS TABLE" in index_page
    assert 'href="audit.duckdb" download' in index_page and 'href="sample_lineage.parquet"' in index_page
    assert "leaf_cache.parquet" not in index_page and "`leaf_cache`" in index_page  # listed as not published
    assert 'href="console/#sql=SELECT' in index_page
    console = pages["audit/console.md"]
    assert '<script type="module" src="../engine/console.js">' in console and 'id="taxreg-console"' in console
    assert 'src="engine/console.js"' in audit_pages(catalog, directory_urls=False)["audit/console.md"]


def test_canned_queries_run_on_the_public_copy(catalog: Path, published: Path) -> None:
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        queries = canned_queries(con)
    finally:
        con.close()
    public = duckdb.connect(str(published / "audit.duckdb"), read_only=True)
    try:
        for q in queries:
            public.execute(q.sql).fetchall()
    finally:
        public.close()
    orphans = next(q for q in queries if "orphan" in q.title.lower() and "::INTEGER" in q.sql)
    assert rows(published / "audit.duckdb", orphans.sql) == [(0,)]


def test_write_audit_vendors_the_engine_when_npm_is_there(catalog: Path, tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        if os.environ.get(REQUIRE_ENGINE) == "1":
            pytest.fail(f"{REQUIRE_ENGINE}=1 but npm is not on PATH")
        pytest.skip("npm is not installed here (.ci/run installs it): the engine cannot be vendored")
    out = tmp_path / "site" / "audit"
    written = write_audit(catalog, out, cache_dir=REPO / "build" / "vendor")
    assert engine_note(out) is None
    status = json.loads((out / "engine" / "engine.json").read_text())
    assert status["vendored"] and status["version"] == "1.32.0"
    for name in ("duckdb-browser.bundle.mjs", "duckdb-eh.wasm", "duckdb-browser-eh.worker.js", "NOTICE.txt"):
        assert (out / "engine" / "duckdb" / name).stat().st_size > 0
    bundle = (out / "engine" / "duckdb" / "duckdb-browser.bundle.mjs").read_text()
    assert 'from"apache-arrow"' not in bundle.replace(" ", "")  # arrow is inside the bundle, not a bare import
    assert "AsyncDuckDB" in bundle  # (its unused jsDelivr helper names a CDN: the browser test proves none is asked)
    sums = dict(line.split("  ")[::-1] for line in (out / "SHA256SUMS").read_text().splitlines())
    assert sums["audit.duckdb"] == hashlib.sha256((out / "audit.duckdb").read_bytes()).hexdigest()
    assert set(written) >= {out / "audit.duckdb", out / "SHA256SUMS", out / "engine" / "console.js"}
    assert oct((out / "engine").stat().st_mode & 0o777) == "0o755"  # a web server can read it


def test_without_npm_the_console_says_so(catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(REQUIRE_ENGINE, raising=False)
    out = tmp_path / "audit"
    write_audit(catalog, out, cache_dir=tmp_path / "cache")
    note = engine_note(out)
    assert note is not None and "npm" in note
    assert (out / "engine" / "console.js").is_file() and not (out / "engine" / "duckdb").exists()
    assert (out / "audit.duckdb").is_file()
    monkeypatch.setenv(REQUIRE_ENGINE, "1")
    with pytest.raises(EnvironmentProblem, match="could not be vendored"):
        write_audit(catalog, out, cache_dir=tmp_path / "cache")
    assert (out / "engine" / "console.js").is_file()  # the refused build left the previous output
