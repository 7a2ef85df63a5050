"""Auditors' SQL against the catalog: one read statement, read-only, with no file system access from inside it.

What may run is decided by DuckDB's own parser (`duckdb.extract_statements` and each statement's type), before
anything runs: a query, or EXPLAIN of one. Everything else is refused by name, SET included: a setting
raised past its guard (`SET max_expression_depth TO 10000000`, then a deep expression) crashes the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from registry.catalog.connection import open_read_only_waiting
from registry.errors import QueryError

ALLOWED = "one read statement: SELECT, WITH, VALUES, FROM, DESCRIBE, SHOW, SUMMARIZE, PIVOT, or EXPLAIN of one"
FILES = "query the catalog's tables; export with --format csv or json"
# Statements that exist to reach files: refused as file access, whatever else they would do.
FILE_STATEMENTS = {"COPY", "COPY_DATABASE", "EXPORT", "ATTACH", "DETACH", "LOAD"}
CALLS = "call table functions from a SELECT instead: SELECT * FROM pragma_table_info('contribution')"
EXAMPLE = 'try: taxreg query "SELECT table_name, comment FROM duckdb_tables()"'


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def run_query(catalog: Path, sql: str, wait: float = 0.0) -> QueryResult:
    """Runs one read statement; `wait`: seconds to keep trying while another process writes the catalog."""
    check_read_only(sql)
    con = open_read_only_waiting(catalog, wait)
    try:
        con.execute("SET enable_external_access = false")
        cursor = con.execute(sql)
        if cursor is None or not cursor.description:
            return QueryResult([], [])
        return QueryResult(_unique([d[0] for d in cursor.description]), cursor.fetchall())
    except duckdb.InvalidInputException as exc:
        if "read-only" in str(exc):
            raise QueryError("the catalog is opened read-only for queries: statements that change it are refused",
                             hint=f"run {ALLOWED}") from None
        raise QueryError(str(exc)) from None
    except duckdb.PermissionException:
        raise QueryError("queries cannot read or write files outside the catalog", hint=FILES) from None
    except duckdb.Error as exc:
        raise _failed(exc) from None
    finally:
        con.close()


def check_read_only(sql: str) -> None:
    """Refuses, naming the statement type, anything but a single read statement."""
    statements = _parse(sql)
    if not statements:
        raise QueryError("the query is empty", hint=EXAMPLE)
    if len(statements) > 1:
        raise QueryError(f"the query holds {len(statements)} statements; taxreg query runs one at a time",
                         hint=f"send each statement as its own query ({ALLOWED})")
    text = statements[0].query
    explained = _explained(text)
    kind = _kind(statements[0]) if explained is None else _kind(explained)
    if explained is not None:
        text = explained.query
    if kind == "SELECT" or (kind == "MULTI" and _first_word(text) in ("PIVOT", "UNPIVOT")):
        return
    if kind in FILE_STATEMENTS:
        raise QueryError(f"{kind} statements are refused: queries cannot read or write files outside the catalog",
                         hint=FILES)
    if kind == "MULTI":  # a PIVOT without its values inside another statement: DuckDB runs it as several
        raise QueryError("a PIVOT without an IN list runs as several statements unless the query starts with it",
                         hint="start the query with PIVOT, or list the values: PIVOT ... ON col IN ('a', 'b')")
    hint = CALLS if kind in ("PRAGMA", "CALL") else f"run {ALLOWED}"
    what = "statements of this kind" if kind == "UNKNOWN" else f"{kind} statements"
    raise QueryError(f"{what} are refused: the catalog is opened read-only for queries, and settings "
                     "stay as taxreg set them", hint=hint)


def _parse(sql: str) -> list[Any]:
    try:
        return list(duckdb.extract_statements(sql))
    except duckdb.Error as exc:
        raise _failed(exc) from None


def _kind(statement: Any) -> str:
    try:
        return str(statement.type.name)
    except ValueError:  # a type this duckdb's Python enum does not name (UPDATE EXTENSIONS)
        return "UNKNOWN"


def _explained(text: str) -> Any | None:
    """The statement an EXPLAIN [ANALYZE] [(options)] describes (EXPLAIN ANALYZE runs it), else None."""
    words = _words(text)
    if not words or words[0][1] != "EXPLAIN":
        return None
    at = 2 if len(words) > 1 and words[1][1] in ("ANALYZE", "ANALYSE") else 1
    starts = [words[at][0]] if at < len(words) else []
    if at < len(words) and words[at][1] == "(":  # options, or a parenthesised query: DuckDB takes either
        depth = 0
        for i in range(at, len(words)):
            depth += {"(": 1, ")": -1}.get(words[i][1], 0)
            if depth == 0:
                starts += [words[i + 1][0]] if i + 1 < len(words) else []
                break
    for start in starts:
        try:
            inner = _parse(text[start:])
        except QueryError:  # "(FORMAT json) SELECT 1" read as a query: the options come first
            continue
        if len(inner) == 1:
            return inner[0]
    raise QueryError("EXPLAIN of nothing taxreg can run", hint=f"run {ALLOWED}")


def _first_word(text: str) -> str:
    words = _words(text)
    return words[0][1] if words else ""


def _words(text: str) -> list[tuple[int, str]]:
    """(offset, upper-cased text) of each token but comments, by DuckDB's own tokenizer."""
    tokens = duckdb.tokenize(text)
    ends = [start for start, _ in tokens[1:]] + [len(text)]
    return [(start, text[start:end].strip().upper()) for (start, kind), end in zip(tokens, ends, strict=True)
            if kind != duckdb.token_type.comment]


def _failed(exc: duckdb.Error) -> QueryError:
    message = str(exc).strip()
    if "max_expression_depth" in message:  # DuckDB's own advice (SET ...) is refused here
        return QueryError(message.split(" Use ")[0], hint="taxreg query refuses SET: write the expression with "
                                                           "fewer nested terms (sum() over a table, list_sum())")
    return QueryError(message)


def _unique(columns: list[str]) -> list[str]:
    """`SELECT 1 a, 2 a` has two columns named a: number the repeats so JSON keeps both."""
    seen: dict[str, int] = {}
    out = []
    for name in columns:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
