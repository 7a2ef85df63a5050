"""Bulk writes: a table's rows as {column: values}, inserted in one statement and cast to the table's types.

Row-by-row inserts ran ~50x slower than this on the development machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, time, timedelta
from typing import Any

Columns = Mapping[str, Sequence[Any]]


def insert(con: Any, table: str, columns: Columns, keyed: bool = True) -> None:
    """Bulk insert, cast to the table's types; with `keyed`, rows whose key exists are kept (append-only)."""
    if not next(iter(columns.values())):
        return
    register(con, "_rows", table, columns)
    try:
        con.execute(f"INSERT {'OR IGNORE ' if keyed else ''}INTO {table} BY NAME SELECT * FROM _rows")
    finally:
        con.unregister("_rows")


def register(con: Any, name: str, table: str | None, columns: Columns) -> None:
    """Expose columns to SQL as `name`; `table` names the table they are for (None: plain values only).

    Plain values (text, numbers, booleans, lists, None) go as numpy object arrays, which DuckDB reads
    itself: pyarrow's first conversion imports pandas (~0.3 s, a twentieth of a cold 10,000-leaf index).
    Timestamps, which that path cannot convert, go through Arrow, typed by the table's schema.
    """
    if table is not None and any(_temporal(values) for values in columns.values()):
        _register_arrow(con, name, table, columns)
        return
    import numpy as np  # only runs that write need it (the unchanged path stays light)

    con.register(name, {col: np.fromiter(values, dtype=object, count=len(values)) for col, values in columns.items()})


def _temporal(values: Sequence[Any]) -> bool:
    first = next((value for value in values if value is not None), None)
    return isinstance(first, date | time | timedelta)  # datetime is a date


def _register_arrow(con: Any, name: str, table: str, columns: Columns) -> None:
    import pyarrow as pa

    schema = con.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema
    con.register(name, pa.table({col: pa.array(values, type=schema.field(col).type)
                                 for col, values in columns.items()}))


def upsert(con: Any, table: str, columns: Columns, key: tuple[str, ...], update: tuple[str, ...]) -> None:
    """Insert, or update `update` columns where the key exists; within the batch the last row of a key wins."""
    if not next(iter(columns.values())):
        return
    last = {tuple(columns[k][i] for k in key): i for i in range(len(columns[key[0]]))}
    keep = sorted(last.values())
    register(con, "_rows", table, {name: [values[i] for i in keep] for name, values in columns.items()})
    try:
        assignments = ", ".join(f"{col} = excluded.{col}" for col in update)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows "
                    f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {assignments}")
    finally:
        con.unregister("_rows")
