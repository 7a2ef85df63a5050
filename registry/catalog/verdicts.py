"""The verdict cache kept in the catalog (`leaf_cache`): unchanged leaves are not checked again."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from registry.discovery import LeafFile, Stamp
from registry.findings import Finding, Severity
from registry.records import sha256_bytes
from registry.validation import LeafState, LeafVerdict


def catalog_cache(catalog: Path, rules_key: str) -> CatalogVerdicts | None:
    """The verdicts of an existing catalog, read-only; a missing, busy or foreign catalog only costs speed."""
    from registry.catalog.connection import open_read_only
    from registry.errors import CatalogError

    if not catalog.is_file():
        return None
    try:
        con = open_read_only(catalog)
    except CatalogError:
        return None
    with con:
        try:
            return CatalogVerdicts(con, rules_key)
        except Exception:  # an older catalog without leaf_cache: no cache
            return None


class CatalogVerdicts:
    """Implements `registry.validation.VerdictCache` over the rows the last index run left."""

    def __init__(self, con: Any, rules_key: str) -> None:
        rows = con.execute(
            "SELECT source_path, mtime_ns, byte_size, attribution_mtime_ns, attribution_size, documents_key, "
            "sha256, version_id, created_by, findings, question_keys FROM leaf_cache WHERE rules_key = ?",
            [rules_key]).fetchall()
        self._rows = {r[0]: r[1:] for r in rows}
        self.restamped: set[str] = set()  # touched but unchanged: their cache rows need the new stamp

    def lookup(self, leaf: LeafFile, stamp: Stamp, attribution_stamp: Stamp | None,
               documents_key: str) -> LeafVerdict | None:
        row = self._rows.get(leaf.source_path)
        if row is None:
            return None
        mtime_ns, size, attr_mtime, attr_size, docs_key, sha256, version_id, created_by, found, keys = row
        if _stamp(attr_mtime, attr_size) != attribution_stamp:
            return None
        if (mtime_ns, size) != stamp:  # touched, maybe not changed: the hash decides
            if size != stamp[1] or not _regular(leaf.file):
                return None
            try:
                if sha256_bytes(Path(leaf.file).read_bytes()) != sha256:
                    return None
            except OSError:
                return None
            self.restamped.add(leaf.source_path)
        if docs_key != documents_key:  # any change in the document cache re-checks (documents rarely change)
            return None
        findings = tuple(Finding(c, Severity(s), p, ln, col, yp, m) for c, s, p, ln, col, yp, m in json.loads(found))
        return LeafVerdict(sha256, version_id, created_by, findings, tuple((k, ln) for k, ln in json.loads(keys)))


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _stamp(mtime_ns: int | None, size: int | None) -> Stamp | None:
    return None if mtime_ns is None or size is None else (mtime_ns, size)


def cache_columns(states: list[LeafState], rules_key: str, documents_key: str,
                  restamped: set[str]) -> dict[str, list[Any]]:
    """Rows for `leaf_cache`, one per freshly checked (or touched) leaf, as columns."""
    fresh = [s for s in states if (not s.reused or s.leaf.source_path in restamped)
             and s.stamp is not None and s.verdict.sha256]
    return {
        "source_path": [s.leaf.source_path for s in fresh],
        "mtime_ns": [s.stamp[0] for s in fresh if s.stamp],
        "byte_size": [s.stamp[1] for s in fresh if s.stamp],
        "attribution_mtime_ns": [s.attribution_stamp[0] if s.attribution_stamp else None for s in fresh],
        "attribution_size": [s.attribution_stamp[1] if s.attribution_stamp else None for s in fresh],
        "documents_key": [documents_key] * len(fresh),
        "rules_key": [rules_key] * len(fresh),
        "sha256": [s.verdict.sha256 for s in fresh],
        "version_id": [s.verdict.version_id for s in fresh],
        "created_by": [s.verdict.created_by for s in fresh],
        "findings": [json.dumps([[f.code, f.severity.value, f.path, f.line, f.col, f.yaml_path, f.message]
                                 for f in s.verdict.findings], ensure_ascii=False) if s.verdict.findings else "[]"
                     for s in fresh],  # most leaves have none
        "question_keys": [json.dumps(s.verdict.question_keys) for s in fresh],
    }

