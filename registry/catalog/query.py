"""Auditors' SQL against the catalog: read-only, with no file system access from inside the query."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from registry.catalog.connection import open_read_only
from registry.errors import QueryError


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def run_query(catalog: Path, sql: str) -> QueryResult:
    if not sql.strip() or not sql.strip().strip(";").strip():
        raise QueryError("the query is empty",
                         hint='try: taxreg query "SELECT table_name, comment FROM duckdb_tables()"')
    con = open_read_only(catalog)
    try:
        con.execute("SET enable_external_access = false")
        cursor = con.execute(sql)
        if cursor is None or not cursor.description:
            return QueryResult([], [])
        return QueryResult(_unique([d[0] for d in cursor.description]), cursor.fetchall())
    except duckdb.InvalidInputException as exc:
        if "read-only" in str(exc):
            raise QueryError("the catalog is opened read-only for queries: statements that change it are refused",
                             hint="only SELECT, WITH, DESCRIBE, SHOW and PRAGMA queries run here") from None
        raise QueryError(str(exc)) from None
    except duckdb.PermissionException:
        raise QueryError("queries cannot read or write files outside the catalog",
                         hint="query the catalog's tables; export with --format csv or json") from None
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from None
    finally:
        con.close()


def _unique(columns: list[str]) -> list[str]:
    """`SELECT 1 a, 2 a` has two columns named a: number the repeats so JSON keeps both."""
    seen: dict[str, int] = {}
    out = []
    for name in columns:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
