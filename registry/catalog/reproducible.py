"""A release's audit copy, reproducible from the same inputs: the catalog's wall-clock times, random ids,
durations and build-folder paths rewritten by the reproducible-builds conventions (STEADY_NOTES), which the copy
states in its catalog_meta and column comments. registry.catalog.publish applies it column by column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from registry.catalog.sqltext import ident, literal

# The catalog mints random ids for builds, index runs and runs (uuid4) and for itself; these
# columns hold them (and JSON values may: build.stats names its runs).
ID_COLUMNS = {"run_id", "build_id", "first_seen_run", "last_seen_run", "first_run_id"}
ID_VALUES = {("catalog_meta", "value")}  # catalog_id
ID_SOURCES = (  # (new id prefix, random ids in start order)
    ("build", "SELECT build_id FROM {db}.main.build ORDER BY started_at, build_id"),
    ("index", "SELECT run_id FROM {db}.main.index_run ORDER BY started_at, run_id"),
    ("run", "SELECT run_id FROM {db}.main.run ORDER BY started_at, stage, run_id"),
)
CONTENT_JSON = {("sample", "messages")}  # the teacher's text: no measurement in it, and too big for a Python pass
MEASUREMENTS = ("seconds", "peak_rss_mb")  # JSON keys; also any key ending in one of MEASUREMENT_SUFFIXES
MEASUREMENT_SUFFIXES = ("_seconds", "_runtime", "_per_second")
STEADY_NOTES = {
    "time": "wall-clock times later than SOURCE_DATE_EPOCH ({epoch}) are clamped to it",
    "id": "random ids are replaced: builds build-N, index runs index-N, runs run-N (N in start order), the "
          "catalog's id 'catalog'; the same in every table and JSON value",
    "json": "durations, rates and memory peaks in JSON values (keys seconds, peak_rss_mb, *_seconds, *_runtime, "
            "*_per_second) are null; random ids and paths in them are rewritten as in the columns",
    "path": "absolute paths inside the build folder are written relative to it",
}
_STEADY_IDS = "taxreg_steady_id"  # a temporary table: random id -> steady id
_STEADY_JSON = "taxreg_steady_json"  # a Python function over JSON text


@dataclass(frozen=True, slots=True)
class Steady:
    """A release's copy: wall-clock times clamped to `epoch` (SOURCE_DATE_EPOCH), random ids replaced, durations
    nulled, absolute paths under `root` (the build folder) made relative. See STEADY_NOTES."""

    epoch: datetime
    root: Path | None = None

    def notes(self) -> dict[str, str]:
        epoch = self.epoch.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {kind: note.format(epoch=epoch) for kind, note in STEADY_NOTES.items()}

    def rewrite(self, table: str, name: str, dtype: str, column: str, text: str) -> tuple[str, str | None]:
        """The SQL of a column's value in a release's copy (`column` quoted, `text` as published otherwise), and
        the STEADY_NOTES kind of rewrite (None: unchanged)."""
        if dtype.startswith("TIMESTAMP"):
            epoch = self.epoch.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + ("+00" if "ZONE" in dtype else "")
            bound = f"CAST({literal(epoch)} AS {dtype})"
            return f"CASE WHEN {column} > {bound} THEN {bound} ELSE {column} END", "time"  # least() drops NULLs
        if dtype == "VARCHAR" and (name in ID_COLUMNS or (table, name) in ID_VALUES):
            return f"coalesce((SELECT i.new FROM temp.main.{_STEADY_IDS} i WHERE i.old = {column}), {column})", "id"
        if dtype == "JSON" and (table, name) not in CONTENT_JSON:
            return f"{_STEADY_JSON}({text})", "json"
        if dtype == "VARCHAR" and (name == "path" or name.endswith("_path")) and self.root is not None:
            root = str(self.root)
            return (f"CASE WHEN starts_with({column}, {literal(root + '/')}) THEN substr({column}, {len(root) + 2}) "
                    f"WHEN {column} = {literal(root)} THEN '.' ELSE {column} END"), "path"
        return text, None

    def start(self, con: Any, home: str) -> None:
        """The random id -> steady id table and the JSON function, for this connection until stop()."""
        ids: dict[str, str] = {}
        for prefix, sql in ID_SOURCES:
            for n, (old,) in enumerate(con.execute(sql.format(db=ident(home))).fetchall(), 1):
                ids[old] = f"{prefix}-{n}"
        catalog_id = f"SELECT value FROM {ident(home)}.main.catalog_meta WHERE key = 'catalog_id'"
        for (old,) in con.execute(catalog_id).fetchall():
            ids[old] = "catalog"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_STEADY_IDS} (old VARCHAR, new VARCHAR)")
        if ids:
            con.executemany(f"INSERT INTO temp.main.{_STEADY_IDS} VALUES (?, ?)", sorted(ids.items()))
        root = str(self.root) if self.root is not None else None

        def steady_json(text: str) -> str:
            loaded = json.loads(text)
            cleaned = _value(loaded, ids, root)
            return text if cleaned == loaded else json.dumps(cleaned, ensure_ascii=False)

        con.create_function(_STEADY_JSON, steady_json, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"))

    @staticmethod
    def stop(con: Any) -> None:
        con.execute(f"DROP TABLE IF EXISTS temp.main.{_STEADY_IDS}")
        con.remove_function(_STEADY_JSON)


def _value(value: Any, ids: dict[str, str], root: str | None) -> Any:
    if isinstance(value, dict):
        return {k: None if _measurement(k) else _value(v, ids, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v, ids, root) for v in value]
    if isinstance(value, str):
        if value in ids:
            return ids[value]
        if root is not None and (value == root or value.startswith(root + "/")):
            return value[len(root) + 1:] or "."
    return value


def _measurement(key: str) -> bool:
    return key in MEASUREMENTS or key.endswith(MEASUREMENT_SUFFIXES)


