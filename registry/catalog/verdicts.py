"""The per-file verdict cache kept in the catalog (`leaf_cache`): unchanged files are not parsed again."""

from __future__ import annotations

import json
import os
from typing import Any

from registry.discovery import LeafFile
from registry.findings import Finding, Severity
from registry.leaf import LeafResult
from registry.records import ContributionVersion, DocumentRef, Kind, SeedExample, sha256_bytes


class CatalogVerdicts:
    """Implements `registry.validation.VerdictCache` over the rows of the last index run."""

    def __init__(self, con: Any, rules_key: str) -> None:
        rows = con.execute("SELECT source_path, mtime_ns, byte_size, sha256, result FROM leaf_cache "
                           "WHERE rules_key = ?", [rules_key]).fetchall()
        self._rows: dict[str, tuple[int, int, str, str]] = {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def lookup(self, leaf: LeafFile, stat: os.stat_result) -> LeafResult | None:
        row = self._rows.get(leaf.source_path)
        if row is None:
            return None
        mtime_ns, size, digest, result = row
        if (mtime_ns, size) != (stat.st_mtime_ns, stat.st_size):
            try:  # touched but maybe not changed: the hash decides
                if sha256_bytes(leaf.abs_path.read_bytes()) != digest:
                    return None
            except OSError:
                return None
        return decode(result)


def encode(result: LeafResult) -> str:
    version = result.version
    return json.dumps({
        "sha256": result.sha256, "byte_size": result.byte_size,
        "findings": [[f.code, f.severity.value, f.path, f.line, f.col, f.yaml_path, f.message]
                     for f in result.findings],
        "version": None if version is None else _encode_version(version),
    }, ensure_ascii=False)


def _encode_version(v: ContributionVersion) -> dict[str, Any]:
    doc = v.document
    return {
        "version_id": v.version_id, "contribution_id": v.contribution_id, "source_path": v.source_path,
        "kind": v.kind.value, "schema_version": v.schema_version, "created_by": v.created_by,
        "domain": v.domain, "task_description": v.task_description, "document_outline": v.document_outline,
        "document": None if doc is None else [doc.repo, doc.commit, doc.patterns, doc.pattern_lines, doc.line],
        "seeds": [[s.seed_id, s.ordinal, s.context, s.question, s.answer, s.line, s.context_line] for s in v.seeds],
        "byte_size": v.byte_size, "word_count": v.word_count, "parsed": v.parsed,
    }


def decode(text: str) -> LeafResult:
    raw = json.loads(text)
    findings = tuple(Finding(c, Severity(s), p, ln, col, yp, m) for c, s, p, ln, col, yp, m in raw["findings"])
    v = raw["version"]
    version = None
    if v is not None:
        doc = v["document"]
        version = ContributionVersion(
            version_id=v["version_id"], contribution_id=v["contribution_id"], source_path=v["source_path"],
            kind=Kind(v["kind"]), schema_version=v["schema_version"], created_by=v["created_by"],
            domain=v["domain"], task_description=v["task_description"], document_outline=v["document_outline"],
            document=None if doc is None else DocumentRef(doc[0], doc[1], tuple(doc[2]), tuple(doc[3]), doc[4]),
            seeds=tuple(SeedExample(*s) for s in v["seeds"]), byte_size=v["byte_size"],
            word_count=v["word_count"], parsed=v["parsed"],
        )
    return LeafResult(raw["sha256"], raw["byte_size"], version, findings)
