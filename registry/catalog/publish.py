"""The public copy of the catalog: one DuckDB file the browser engine opens, and one Parquet file per table.

What the public gets: every table of the catalog, its views, its table macros and every `COMMENT ON`, minus
what only the builder needs (PRIVATE_TABLES, PRIVATE_COLUMNS). What changes on the way:

- The database file is written with `STORAGE_VERSION 'v1.4.0'`: DuckDB-WASM 1.x (engine 1.4) refuses the
  default storage of DuckDB 2 (PROVENANCE.md). Without PK/FK/NOT NULL constraints: the file is ~3x smaller.
- JSON columns become VARCHAR holding the same JSON text: the JSON type lives in an extension that the
  browser engine would have to download, and a static site must work offline.
- Rows are sorted by each table's key (then every other column), in the file and in the Parquet, so the
  same catalog gives byte-identical Parquet. The `.duckdb` bytes are not reproducible (DuckDB writes
  varying header bytes): its hash is recorded, never promised.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from registry.catalog.connection import SCHEMA_VERSION
from registry.errors import CatalogError
from registry.release.sums import file_sha256

STORAGE_VERSION = "v1.4.0"
# The sorts spill beyond this: at 10,000 contributions (129k samples) peak RSS fell from ~720 MB to ~330 MB for
# ~7% more CPU. The site build runs this inside mkdocs' process, whose peak must stay under 1 GB.
MEMORY_LIMIT = "256MB"
DATABASE_FILE = "audit.duckdb"

# Not published, with the reason (also written into the copy's catalog_meta, so auditors can read it).
PRIVATE_TABLES = {
    "leaf_cache": "the indexer's verdict cache: local file stats, no provenance",
}
PRIVATE_COLUMNS = {
    "index_run": {"taxonomy_root": "a path on the builder's machine"},
    "teacher_request": {
        "request": "journal bodies, repeated in sample.messages; they would dominate the download",
        "response": "journal bodies, repeated in sample.messages; they would dominate the download",
        "error": "may name private endpoints",
    },
}
# Sort keys of tables without a primary key (tables with one sort by it). Every other column follows as a
# tie-breaker, so the order is total whatever the key.
ORDER_KEYS = {
    "seed_example": ("contribution_id", "version_id", "ordinal"),
    "finding": ("path", "line", "col", "code"),
    "sample_lineage": ("sample_id", "parent_kind", "parent_id", "role"),
    "policy_check": ("release_id", "build_id", "rule", "subject"),
}
MACRO_COMMENTS = {
    "takedown_impact": "takedown_impact(subject): every sample, run, dataset, model and release that depends on a "
                       "subject (a document sha256, a contribution path, a version id, or a seed or chunk id).",
}


@dataclass(frozen=True, slots=True)
class PublishedFile:
    """One file of the public copy. `rows` for Parquet tables; `reproducible` is False for the .duckdb."""

    relpath: str
    sha256: str
    byte_size: int
    table: str | None
    rows: int | None
    reproducible: bool


@dataclass(frozen=True, slots=True)
class AuditView:
    """A view or table macro of the public copy, with its SQL as DuckDB stores it and its comment."""

    name: str
    kind: str  # view | table_macro
    sql: str
    comment: str


def publish(catalog: Path, out_dir: Path) -> list[PublishedFile]:
    """Write the public copy of the catalog file into out_dir (audit.duckdb + <table>.parquet)."""
    with tempfile.TemporaryDirectory(prefix="taxreg-publish-") as spill:
        con = _open_source(catalog, spill)
        try:
            return write_public(con, out_dir)
        finally:
            con.close()


def write_release_audit(con: Any, folder: Path) -> list[PublishedFile]:
    """The same copy from an open catalog connection (the release cut's, read-write or read-only). Not inside a
    transaction that has written to the catalog: DuckDB lets one transaction write to one database only."""
    return write_public(con, folder)


def write_public(con: Any, out_dir: Path) -> list[PublishedFile]:
    """Write into a temporary folder inside out_dir, then move the files in: a failure leaves out_dir as it was."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=out_dir))
    try:
        tables = _write(con, staging)
        for stale in out_dir.glob("*.parquet"):  # tables that no longer exist
            if stale.stem not in tables:
                stale.unlink()
        files = []
        for path in sorted(staging.iterdir()):
            os.replace(path, out_dir / path.name)
            files.append(_described(out_dir / path.name, tables))
        return files
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def audit_views(con: Any, database: str | None = None) -> list[AuditView]:
    """The views and table macros of a catalog (or of its public copy), in name order."""
    where = "database_name = current_database()" if database is None else f"database_name = {_literal(database)}"
    views = [AuditView(name, "view", sql.strip(), comment or "") for name, sql, comment in con.execute(
        f"SELECT view_name, sql, comment FROM duckdb_views() WHERE {where} AND schema_name = 'main' "
        "AND NOT internal ORDER BY view_name").fetchall()]
    macros = [AuditView(name, "table_macro", _macro_sql(name, params, body), comment or MACRO_COMMENTS.get(name, ""))
              for name, params, body, comment in con.execute(
                  f"SELECT function_name, parameters, macro_definition, comment FROM duckdb_functions() "
                  f"WHERE {where} AND schema_name = 'main' AND function_type = 'table_macro' AND NOT internal "
                  "ORDER BY function_name").fetchall()]
    return views + macros


def _open_source(catalog: Path, spill: str) -> Any:
    if not catalog.is_file():
        raise CatalogError(f"no catalog at {catalog}", hint="run `taxreg index` first, or pass --catalog PATH")
    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill})
    try:
        con.execute(f"ATTACH {_literal(str(catalog))} AS catalog (READ_ONLY)")
        con.execute("USE catalog")
    except duckdb.Error as exc:
        con.close()
        if "lock" in str(exc).lower():
            raise CatalogError(f"the catalog {catalog} is in use by another process",
                               hint="wait for the other taxreg command to finish") from None
        raise CatalogError(f"{catalog} is not a readable DuckDB catalog: {exc}") from None
    rows = con.execute("SELECT value FROM catalog_meta WHERE key = 'schema_version'").fetchall() \
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'catalog' "
                       "AND table_name = 'catalog_meta'").fetchall()[0][0] else []
    version = int(rows[0][0]) if rows else 0
    if version != SCHEMA_VERSION:
        con.close()
        raise CatalogError(f"{catalog} has catalog schema {version}; publishing needs schema {SCHEMA_VERSION}",
                           hint="run `taxreg index` with this taxreg to migrate it"
                           if version < SCHEMA_VERSION else "upgrade taxonomy-registry")
    return con


def _write(con: Any, staging: Path) -> dict[str, int]:
    """Copy tables, comments, views and macros into staging/audit.duckdb; Parquet per table. -> {table: rows}."""
    con.execute("SET enable_progress_bar = false")  # DuckDB draws one on the terminal for long queries
    [(home,)] = con.execute("SELECT current_database()").fetchall()
    columns = _columns(con, home)
    keys = _primary_keys(con, home)
    con.execute(f"ATTACH {_literal(str(staging / DATABASE_FILE))} AS public_copy "
                f"(STORAGE_VERSION '{STORAGE_VERSION}')")
    try:
        orders = {}
        for table, cols in columns.items():
            published = [c for c in cols if c[0] not in PRIVATE_COLUMNS.get(table, {})]
            select = ", ".join(f"{_ident(name)}::VARCHAR AS {_ident(name)}" if dtype == "JSON" else _ident(name)
                               for name, dtype, _ in published)
            orders[table] = _order(keys.get(table) or ORDER_KEYS.get(table, ()), [name for name, _, _ in published])
            con.execute(f"CREATE TABLE public_copy.main.{_ident(table)} AS SELECT {select} "
                        f"FROM {_ident(home)}.main.{_ident(table)} ORDER BY {orders[table]}")
            for name, _, comment in published:
                if comment:
                    con.execute(f"COMMENT ON COLUMN public_copy.main.{_ident(table)}.{_ident(name)} "
                                f"IS {_literal(comment)}")
        _note_exclusions(con)
        counts = {}
        for table, order in orders.items():
            con.execute(f"COPY (SELECT * FROM public_copy.main.{_ident(table)} ORDER BY {order}) "
                        f"TO {_literal(str(staging / f'{table}.parquet'))} (FORMAT parquet, COMPRESSION zstd)")
            counts[table] = con.execute(f"SELECT count(*) FROM public_copy.main.{_ident(table)}").fetchall()[0][0]
        for table, comment in con.execute(
                f"SELECT table_name, comment FROM duckdb_tables() WHERE database_name = {_literal(home)} "
                "AND schema_name = 'main' AND comment IS NOT NULL").fetchall():
            if table in columns:
                con.execute(f"COMMENT ON TABLE public_copy.main.{_ident(table)} IS {_literal(comment)}")
        views = audit_views(con, home)
        con.execute("USE public_copy")  # view and macro bodies name their tables without a database
        try:
            _create_views(con, views)
        finally:
            con.execute(f"USE {_ident(home)}")
    finally:
        con.execute("DETACH public_copy")
    return counts


def _columns(con: Any, home: str) -> dict[str, list[tuple[str, str, str | None]]]:
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    for table, name, dtype, comment in con.execute(
            "SELECT c.table_name, c.column_name, c.data_type, c.comment FROM duckdb_columns() c "
            "JOIN duckdb_tables() t USING (database_name, schema_name, table_name) "
            f"WHERE c.database_name = {_literal(home)} AND c.schema_name = 'main' AND NOT t.internal "
            "ORDER BY c.table_name, c.column_index").fetchall():
        if table not in PRIVATE_TABLES:
            out.setdefault(table, []).append((name, dtype, comment))
    return out


def _primary_keys(con: Any, home: str) -> dict[str, tuple[str, ...]]:
    return {table: tuple(names) for table, names in con.execute(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        f"WHERE database_name = {_literal(home)} AND schema_name = 'main' AND constraint_type = 'PRIMARY KEY'"
    ).fetchall()}


def _order(key: tuple[str, ...], columns: list[str]) -> str:
    ordered = [c for c in key if c in columns] + [c for c in columns if c not in key]
    return ", ".join(_ident(c) for c in ordered)


def _note_exclusions(con: Any) -> None:
    """Auditors read what was left out, and why, from the copy itself."""
    notes = [("public_copy.storage_version", STORAGE_VERSION)]
    notes += [(f"public_copy.excluded.{table}", why) for table, why in sorted(PRIVATE_TABLES.items())]
    notes += [(f"public_copy.excluded.{table}.{column}", why)
              for table, cols in sorted(PRIVATE_COLUMNS.items()) for column, why in sorted(cols.items())]
    notes.append(("public_copy.json_columns", "JSON columns are VARCHAR holding JSON text"))
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'public_copy' "
                   "AND table_name = 'catalog_meta'").fetchall()[0][0]:
        con.executemany("INSERT INTO public_copy.main.catalog_meta VALUES (?, ?)", notes)


def _create_views(con: Any, pending: list[AuditView]) -> None:
    """Views read other views: create what can be created until nothing is left (or nothing progresses)."""
    while pending:
        failed: list[AuditView] = []
        errors: list[str] = []
        for view in pending:
            try:
                con.execute(view.sql)
            except duckdb.CatalogException as exc:
                failed.append(view)
                errors.append(str(exc))
                continue
            what = "VIEW" if view.kind == "view" else "MACRO TABLE"
            if view.comment:
                con.execute(f"COMMENT ON {what} {_ident(view.name)} IS {_literal(view.comment)}")
        if len(failed) == len(pending):
            raise CatalogError(f"cannot recreate {failed[0].name} in the public copy: {errors[0]}",
                               hint="a view or macro reads something that is not published")
        pending = failed


def _macro_sql(name: str, params: list[str], body: str) -> str:
    return f"CREATE MACRO {_ident(name)}({', '.join(_ident(p) for p in params)}) AS TABLE {body}"


def _described(path: Path, tables: dict[str, int]) -> PublishedFile:
    table = path.stem if path.suffix == ".parquet" else None
    return PublishedFile(path.name, file_sha256(path), path.stat().st_size, table,
                         tables.get(table) if table else None, path.suffix == ".parquet")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
