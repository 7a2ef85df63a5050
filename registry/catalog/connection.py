"""Opening the catalog: creating it, migrating it forward, and refusing what cannot be opened."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import duckdb

from registry import __version__, disks
from registry.disks import DiskFull
from registry.errors import CatalogError, CatalogInUse

# Migration scripts in order; SCHEMA_VERSION is the number of scripts. Never edit a released script:
# add the next one.
MIGRATIONS = ("v001_spine.sql", "v002_generation.sql", "v003_releases.sql", "v004_attempts.sql",
              "v005_comments.sql", "v006_index_tree.sql", "v007_judge.sql", "v008_evaluation.sql")
SCHEMA_VERSION = len(MIGRATIONS)


def open_catalog(path: Path) -> Any:
    """A read-write connection, the schema migrated to SCHEMA_VERSION (in one transaction). Use it as
    `with open_catalog(path) as con:` (the connection closes at the end of the block)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogError(f"cannot create the catalog's folder {path.parent}: {exc.strerror}",
                           hint="pass --catalog with a path inside a writable folder") from None
    if path.is_dir():
        raise CatalogError(f"the catalog path {path} is a folder", hint="pass --catalog PATH/catalog.duckdb")
    con = _connect(path, read_only=False)
    try:
        _migrate(con, path)
    except BaseException:
        con.close()
        raise
    return con


def open_read_only(path: Path) -> Any:
    if not path.is_file():
        raise CatalogError(f"no catalog at {path}", hint="run `taxreg index` first, or pass --catalog PATH")
    con = _connect(path, read_only=True)
    version = schema_version(con)
    if version > SCHEMA_VERSION:
        con.close()
        raise CatalogError(f"{path} has catalog schema {version}; this taxreg understands up to {SCHEMA_VERSION}",
                           hint="upgrade taxonomy-registry")
    return con


def open_read_only_waiting(path: Path, wait: float) -> Any:
    """open_read_only, tried again for up to `wait` seconds while another process writes the catalog (DuckDB lets
    readers in only when no process holds the file read-write); then the same "in use" error."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return open_read_only(path)
        except CatalogInUse as exc:
            if time.monotonic() >= deadline:
                raise CatalogInUse(str(exc) + (f" (waited {wait:g} s)" if wait else ""),
                                   hint="wait for the other taxreg command to finish, or pass --wait SECONDS") from exc
            time.sleep(0.1)


def schema_version(con: Any) -> int:
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'catalog_meta'").fetchall()[0][0]
    if not exists:
        return 0
    rows = con.execute("SELECT value FROM catalog_meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


def _connect(path: Path, read_only: bool) -> Any:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        message = str(exc)
        if "lock" in message.lower():
            raise CatalogInUse(f"the catalog {path} is in use by another process",
                               hint="wait for the other taxreg command to finish") from exc  # --debug: DuckDB's words
        raise CatalogError(f"cannot open the catalog {path}: {message}",
                           hint="it is not a catalog taxreg can open: move the file away (a new catalog is "
                                "made in its place) or point the command at another one") from None
    except duckdb.Error as exc:
        raise CatalogError(f"{path} is not a readable DuckDB catalog: {exc}",
                           hint="move it away and run `taxreg index` to create a new one") from None


def _migrate(con: Any, path: Path) -> None:
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise CatalogError(f"{path} has catalog schema {current}; this taxreg understands up to {SCHEMA_VERSION}",
                           hint="upgrade taxonomy-registry")
    if current == SCHEMA_VERSION:
        return
    with transaction(con):
        for script in MIGRATIONS[current:]:
            con.execute(files("registry.catalog").joinpath(script).read_text(encoding="utf-8"))
        con.execute("INSERT OR REPLACE INTO catalog_meta VALUES ('schema_version', ?), ('written_by', ?)",
                    [str(SCHEMA_VERSION), f"taxonomy-registry {__version__}"])


@contextlib.contextmanager
def transaction(con: Any) -> Iterator[None]:
    """`with transaction(con):` commits what the block wrote, or rolls all of it back if the block raises. A COMMIT
    that fails (a full disk, a conflict) is reported as itself: DuckDB has already rolled back by then, and a
    second ROLLBACK would only say "no transaction is active"."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # the block's error is the one to report
            con.execute("ROLLBACK")
        raise
    try:
        con.execute("COMMIT")
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        full = disks.full_disk(exc)
        if full is not None:  # said first, as every command says a full disk
            full = DiskFull(full.path or _file_of(con))
            raise CatalogError(f"{full.message()}: the catalog could not save this run ({exc})",
                               hint=f"nothing of it was written and the previous catalog is intact; free some space "
                                    f"(`df -h {full.folder}`) and run the command again") from exc
        raise CatalogError(f"the catalog could not save this run: {exc}",
                           hint="nothing of it was written and the previous catalog is intact; fix the cause "
                                "(e.g. free disk space) and run the command again") from exc


def _file_of(con: Any) -> Path | None:
    """The file of the connection's database (what a failed commit was writing)."""
    with contextlib.suppress(duckdb.Error):
        rows = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
        if rows and rows[0][0]:
            return Path(rows[0][0])
    return None
