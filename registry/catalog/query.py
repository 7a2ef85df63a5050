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
    con = open_read_only(catalog)
    try:
        con.execute("SET enable_external_access = false")
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return QueryResult(columns, cursor.fetchall() if columns else [])
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
