"""The public copy of the catalog: one DuckDB file the browser engine opens, and one Parquet file per table.

What the public gets: every table of the catalog, its views, its table macros and every `COMMENT ON`, minus
what only the builder needs (PRIVATE_TABLES, PRIVATE_COLUMNS). What changes on the way:

- The database file is written with `STORAGE_VERSION 'v1.4.0'`: DuckDB-WASM 1.x (engine 1.4) refuses the
  default storage of DuckDB 2 (PROVENANCE.md). Without PK/FK/NOT NULL constraints: the file is ~3x smaller.
- JSON columns become VARCHAR holding the same JSON text: the JSON type lives in an extension that the
  browser engine would have to download, and a static site must work offline.
- Rows are sorted by each table's key (then every other column), in the file and in the Parquet.

The same catalog gives byte-identical files. DuckDB writes one random value into a v1.4.0 file: a 16-byte
database identifier in the main header (for storage versions >= 67; it salts encryption keys and has no use
in an unencrypted file). It is set to zeros, as DuckDB writes it for older storage versions, and the header
checksum recomputed (`dbheader.zero_database_id`). Every data block was already identical (checked at 10,000 leaves).

A release's copy (`write_release_audit` with `Steady`) is reproducible from the same inputs, not only from the
same catalog: the catalog records wall-clock times, random run ids, durations and local paths, which the copy
rewrites by the reproducible-builds conventions (registry.catalog.reproducible; stated in its catalog_meta and
comments). The site's copy keeps the real values.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import duckdb

from registry import folders
from registry.catalog import dbheader
from registry.catalog.connection import SCHEMA_VERSION
from registry.catalog.evaluation import withheld_sql
from registry.catalog.reproducible import Steady
from registry.catalog.sqltext import ident, literal
from registry.errors import CatalogError
from registry.release.sums import file_sha256

STORAGE_VERSION = "v1.4.0"
# The sorts spill beyond this: at 10,000 contributions (129k samples) peak RSS fell from ~720 MB to ~330 MB for
# ~7% more CPU. The site build runs this inside mkdocs' process, whose peak must stay under 1 GB.
MEMORY_LIMIT = "256MB"
DATABASE_FILE = "audit.duckdb"
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd"
FINGERPRINT_KEY = "taxreg_fingerprint"  # Parquet key-value metadata: what the file holds, for reuse
FINGERPRINT_FORMAT = 1  # bump when the same table would be written to different Parquet bytes

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
# Rows not published, with the reason (written into the copy's catalog_meta too): a contribution taken down, or one
# whose document was, takes its evaluation (questions, both models' answers, scores) out of the public copy.
_TAKEN_DOWN = "src.contribution_id IS NULL OR src.contribution_id NOT IN (" + withheld_sql("{db}.main.") + ")"
WITHHELD_ROWS = {
    table: (_TAKEN_DOWN, "rows of contributions taken down (or whose documents were) are left out, as their "
                         "pages leave the site")
    for table in ("eval_item", "eval_score", "eval_effect")
}
# Sort keys of tables without a primary key (tables with one sort by it). Every other column follows as a
# tie-breaker, so the order is total whatever the key.
ORDER_KEYS = {
    "seed_example": ("contribution_id", "version_id", "ordinal"),
    "finding": ("path", "line", "col", "code"),
    "sample_lineage": ("sample_id", "parent_kind", "parent_id", "role"),
    "policy_check": ("release_id", "attempt", "build_id", "rule", "subject"),
    "eval_item": ("run_id", "contribution_id", "item_id"),
    "eval_score": ("run_id", "contribution_id", "item_id", "metric"),
    "eval_effect": ("run_id", "scope", "contribution_id", "metric"),
}

@dataclass(frozen=True, slots=True)
class PublishedFile:
    """One file of the public copy. `rows` for Parquet tables; `reproducible`: the same catalog (and, for a
    release's copy, the same inputs) gives the same bytes. False only for a .duckdb header of an unknown layout."""

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


def publish(catalog: Path, out_dir: Path, previous: Path | None = None) -> list[PublishedFile]:
    """Write the public copy of the catalog file into out_dir (audit.duckdb + <table>.parquet). `previous`: a
    folder holding an earlier copy (the site being replaced); a Parquet file there whose table did not change
    (FINGERPRINT_KEY) is hard-linked instead of written again."""
    with tempfile.TemporaryDirectory(prefix="taxreg-publish-") as spill, _open_source(catalog, spill) as con:
        return write_public(con, out_dir, previous=previous)


def write_release_audit(con: Any, folder: Path, steady: Steady) -> list[PublishedFile]:
    """A release's copy from an open catalog connection (the release cut's, read-write or read-only). Not inside
    a transaction that has written to the catalog: DuckDB lets one transaction write to one database only."""
    return write_public(con, folder, steady=steady)


def write_public(con: Any, out_dir: Path, steady: Steady | None = None,
                 previous: Path | None = None) -> list[PublishedFile]:
    """Written beside out_dir's files, then swapped in all together: a failure leaves out_dir as it was."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with folders.building(out_dir / "publish") as staging:
        tables, settled = _write(con, staging, steady, previous)
        written = sorted(staging.iterdir())
        gone = [p for p in out_dir.glob("*.parquet") if p.stem not in tables]  # tables that no longer exist
        folders.swap_into_place(*[(p, out_dir / p.name) for p in written], *[(None, p) for p in gone])
        return [_described(out_dir / p.name, tables, settled) for p in written]


def audit_views(con: Any, database: str | None = None) -> list[AuditView]:
    """The views and table macros of a catalog (or of its public copy), in name order."""
    where = "database_name = current_database()" if database is None else f"database_name = {literal(database)}"
    views = [AuditView(name, "view", sql.strip(), comment or "") for name, sql, comment in con.execute(
        f"SELECT view_name, sql, comment FROM duckdb_views() WHERE {where} AND schema_name = 'main' "
        "AND NOT internal ORDER BY view_name").fetchall()]
    macros = [AuditView(name, "table_macro", _macro_sql(name, params, body), comment or "")
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
        con.execute(f"ATTACH {literal(str(catalog))} AS catalog (READ_ONLY)")
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


def _write(con: Any, staging: Path, steady: Steady | None, previous: Path | None) -> tuple[dict[str, int], bool]:
    """Copy tables, comments, views and macros into staging/audit.duckdb; Parquet per table.
    -> ({table: rows}, whether the .duckdb header was settled)."""
    con.execute("SET enable_progress_bar = false")  # DuckDB draws one on the terminal for long queries
    [(home,)] = con.execute("SELECT current_database()").fetchall()
    if steady is not None:
        steady.start(con, home)
    database = staging / DATABASE_FILE
    try:
        con.execute(f"ATTACH {literal(str(database))} AS public_copy (STORAGE_VERSION '{STORAGE_VERSION}')")
        try:
            orders = _copy_tables(con, home, steady)
            # Rows are read back in the order they were written (insertion order is preserved): no second sort.
            counts = {table: _write_parquet(con, table, order, staging / f"{table}.parquet", steady is None, previous)
                      for table, order in orders.items()}
            for table, comment in con.execute(
                    f"SELECT table_name, comment FROM duckdb_tables() WHERE database_name = {literal(home)} "
                    "AND schema_name = 'main' AND comment IS NOT NULL").fetchall():
                if table in orders:
                    con.execute(f"COMMENT ON TABLE public_copy.main.{ident(table)} IS {literal(comment)}")
            views = audit_views(con, home)
            con.execute("USE public_copy")  # view and macro bodies name their tables without a database
            try:
                _create_views(con, views)
                _comment_view_columns(con, home)
            finally:
                con.execute(f"USE {ident(home)}")
        finally:
            con.execute("DETACH public_copy")
    finally:
        if steady is not None:
            steady.stop(con)
    return counts, dbheader.zero_database_id(database, dbheader.STORAGE_NUMBERS[STORAGE_VERSION])


def _copy_tables(con: Any, home: str, steady: Steady | None) -> dict[str, str]:
    """Every published table, sorted, with its column comments. -> {table: its ORDER BY}."""
    keys = _primary_keys(con, home)
    notes = _notes(steady)
    orders = {}
    for table, cols in _columns(con, home).items():
        published = [c for c in cols if c[0] not in PRIVATE_COLUMNS.get(table, {})]
        exprs = [(name, *_expression(table, name, dtype, steady), comment) for name, dtype, comment in published]
        orders[table] = _order(keys.get(table) or ORDER_KEYS.get(table, ()), [name for name, _, _ in published])
        rows = f"SELECT {', '.join(f'{sql} AS {ident(name)}' for name, sql, _, _ in exprs)} " \
               f"FROM {ident(home)}.main.{ident(table)} AS src"
        if table in WITHHELD_ROWS:
            rows += " WHERE " + WITHHELD_ROWS[table][0].format(db=ident(home))
        if table == "catalog_meta" and len(published) == 2:  # the notes, sorted in with the catalog's rows
            rows += " UNION ALL SELECT * FROM (VALUES " + ", ".join(
                f"({literal(k)}, {literal(v)})" for k, v in notes) + ")"
        con.execute(f"CREATE TABLE public_copy.main.{ident(table)} AS SELECT * FROM ({rows}) "
                    f"ORDER BY {orders[table]}")
        for name, _, rewrite, comment in exprs:
            text = " ".join(filter(None, [comment, f"In this release copy: {steady.notes()[rewrite]}."
                                          if steady is not None and rewrite else None]))
            if text:
                con.execute(f"COMMENT ON COLUMN public_copy.main.{ident(table)}.{ident(name)} IS {literal(text)}")
    return orders


def _write_parquet(con: Any, table: str, order: str, target: Path, reuse: bool, previous: Path | None) -> int:
    """One table's Parquet; with `reuse`, its fingerprint goes into the file and an unchanged file of `previous`
    is hard-linked instead. -> rows."""
    source = f"public_copy.main.{ident(table)}"
    if not reuse:
        con.execute(f"COPY {source} TO {literal(str(target))} ({PARQUET_OPTIONS})")
        return int(con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0])
    rows, fingerprint = _fingerprint(con, table, order)
    old = previous / target.name if previous is not None else None
    if old is not None and old.is_file() and _stored_fingerprint(con, old) == fingerprint:
        try:
            os.link(old, target)
        except OSError:
            shutil.copyfile(old, target)
        return rows
    con.execute(f"COPY {source} TO {literal(str(target))} "
                f"({PARQUET_OPTIONS}, KV_METADATA {{{FINGERPRINT_KEY}: {literal(fingerprint)}}})")
    return rows


def _fingerprint(con: Any, table: str, order: str) -> tuple[int, str]:
    """What decides the bytes of a table's Parquet: its columns and types, its rows (two order-independent sums of
    row hashes, and the count) and their sort order, DuckDB's version and the options."""
    described = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'public_copy' "
                            f"AND table_name = {literal(table)} ORDER BY column_index").fetchall()
    row_hash = f"hash({', '.join(ident(name) for name, _ in described)})"
    [(rows, xor, total)] = con.execute(f"SELECT count(*), bit_xor(h), sum(h)::VARCHAR FROM (SELECT {row_hash} AS h "
                                       f"FROM public_copy.main.{ident(table)})").fetchall()
    what = [FINGERPRINT_FORMAT, duckdb.__version__, PARQUET_OPTIONS, table, described, order, rows, xor, total]
    return int(rows), sha256(json.dumps(what, default=str).encode()).hexdigest()


def _stored_fingerprint(con: Any, path: Path) -> str | None:
    try:
        found = con.execute(f"SELECT value FROM parquet_kv_metadata({literal(str(path))}) "
                            f"WHERE key = {literal(FINGERPRINT_KEY)}").fetchall()
    except duckdb.Error:  # not a Parquet file we can read: write ours
        return None
    return bytes(found[0][0]).decode(errors="replace") if found else None


def _expression(table: str, name: str, dtype: str, steady: Steady | None) -> tuple[str, str | None]:
    """The published value of a column, and which steady rewrite it had (None: as in the catalog)."""
    column = f"src.{ident(name)}"
    text = f"{column}::VARCHAR" if dtype == "JSON" else column
    return (text, None) if steady is None else steady.rewrite(table, name, dtype, column, text)


def _columns(con: Any, home: str) -> dict[str, list[tuple[str, str, str | None]]]:
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    for table, name, dtype, comment in con.execute(
            "SELECT c.table_name, c.column_name, c.data_type, c.comment FROM duckdb_columns() c "
            "JOIN duckdb_tables() t USING (database_name, schema_name, table_name) "
            f"WHERE c.database_name = {literal(home)} AND c.schema_name = 'main' AND NOT t.internal "
            "ORDER BY c.table_name, c.column_index").fetchall():
        if table not in PRIVATE_TABLES:
            out.setdefault(table, []).append((name, dtype, comment))
    return out


def _primary_keys(con: Any, home: str) -> dict[str, tuple[str, ...]]:
    return {table: tuple(names) for table, names in con.execute(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        f"WHERE database_name = {literal(home)} AND schema_name = 'main' AND constraint_type = 'PRIMARY KEY'"
    ).fetchall()}


def _order(key: tuple[str, ...], columns: list[str]) -> str:
    ordered = [c for c in key if c in columns] + [c for c in columns if c not in key]
    return ", ".join(ident(c) for c in ordered)


def _notes(steady: Steady | None) -> list[tuple[str, str]]:
    """Auditors read what was left out or rewritten, and why, from the copy itself (catalog_meta)."""
    notes = [("public_copy.storage_version", STORAGE_VERSION)]
    notes += [(f"public_copy.excluded.{table}", why) for table, why in sorted(PRIVATE_TABLES.items())]
    notes += [(f"public_copy.excluded.{table}.{column}", why)
              for table, cols in sorted(PRIVATE_COLUMNS.items()) for column, why in sorted(cols.items())]
    notes += [(f"public_copy.withheld.{table}", why) for table, (_, why) in sorted(WITHHELD_ROWS.items())]
    notes.append(("public_copy.json_columns", "JSON columns are VARCHAR holding JSON text"))
    if steady is not None:
        notes.append(("public_copy.reproducible", "a release's copy: the same inputs give the same bytes"))
        notes += [(f"public_copy.reproducible.{kind}", note) for kind, note in sorted(steady.notes().items())]
    return notes


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
                con.execute(f"COMMENT ON {what} {ident(view.name)} IS {literal(view.comment)}")
        if len(failed) == len(pending):
            raise CatalogError(f"cannot recreate {failed[0].name} in the public copy: {errors[0]}",
                               hint="a view or macro reads something that is not published")
        pending = failed


def _comment_view_columns(con: Any, home: str) -> None:
    """Views are recreated from their SQL, which does not carry the comments on their columns."""
    for view, column, comment in con.execute(
            "SELECT c.table_name, c.column_name, c.comment FROM duckdb_columns() c "
            "JOIN duckdb_views() v ON v.database_name = c.database_name AND v.schema_name = c.schema_name "
            f"AND v.view_name = c.table_name WHERE c.database_name = {literal(home)} AND c.schema_name = 'main' "
            "AND NOT v.internal AND c.comment IS NOT NULL ORDER BY ALL").fetchall():
        con.execute(f"COMMENT ON COLUMN public_copy.main.{ident(view)}.{ident(column)} IS {literal(comment)}")


def _macro_sql(name: str, params: list[str], body: str) -> str:
    return f"CREATE MACRO {ident(name)}({', '.join(ident(p) for p in params)}) AS TABLE {body}"


def _described(path: Path, tables: dict[str, int], settled: bool) -> PublishedFile:
    table = path.stem if path.suffix == ".parquet" else None
    return PublishedFile(path.name, file_sha256(path), path.stat().st_size, table,
                         tables.get(table) if table else None, path.suffix == ".parquet" or settled)
