"""`taxreg index`: validate the tree and write the catalog, incrementally, in one transaction.

Rows are built as Arrow tables and inserted in bulk (row-by-row inserts were ~50x slower). Content
rows are append-only (`INSERT OR IGNORE` on their keys); the `finding` table holds the last validation.
A failed or killed run rolls back, so the previous catalog stays intact and openable.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from registry import __version__, gitrepo
from registry.catalog.connection import open_catalog
from registry.catalog.verdicts import CatalogVerdicts, encode
from registry.config import ValidationConfig
from registry.errors import ValidationFailed
from registry.findings import Finding, Severity
from registry.licenses import classify
from registry.records import Kind
from registry.validation import LeafState, ValidationReport, input_fingerprint, validate

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    run_id: str
    status: str  # indexed | indexed_with_errors | unchanged
    findings: list[Finding]
    leaves_total: int
    leaves_parsed: int
    leaves_indexed: int
    leaves_retired: int

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity is Severity.WARNING for f in self.findings)


def index(root: Path, catalog: Path, config: ValidationConfig | None = None, allow_errors: bool = False,
          workers: int | None = None) -> IndexOutcome:
    config = config or ValidationConfig()
    started = datetime.now(UTC)
    in_git = gitrepo.is_repository(root)
    head = gitrepo.head(root) if in_git else None
    fingerprint = input_fingerprint(root, config, extra=f"{head}|{__version__}")
    con = open_catalog(catalog)
    try:
        unchanged = _unchanged(con, fingerprint, root, started)
        if unchanged is not None:
            return unchanged
        report = validate(root, config, cache=CatalogVerdicts(con, config.file_rules_key()), workers=workers)
        if report.errors and not allow_errors:
            raise ValidationFailed(
                f"validation found {report.errors} error(s) in {len(report.files_with_errors())} file(s); "
                "the catalog was not changed", hint="fix them, or pass --allow-errors to index the valid leaves",
                findings=report.findings)
        return _Run(con, report, config, root, fingerprint, head, started, in_git).write()
    finally:
        con.close()


def _unchanged(con: Any, fingerprint: str, root: Path, started: datetime) -> IndexOutcome | None:
    last = con.execute("SELECT config_sha256, inputs_sha256, leaves_total FROM index_run "
                       "WHERE status <> 'unchanged' ORDER BY finished_at DESC LIMIT 1").fetchone()
    if last is None or last[1] != fingerprint:
        return None
    findings = [Finding(r[0], Severity(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in con.execute(
        "SELECT code, severity, path, line, col, yaml_path, message FROM finding "
        "ORDER BY path, line, col, code").fetchall()]
    run_id = _run_id()
    outcome = IndexOutcome(run_id, "unchanged", findings, last[2], 0, 0, 0)
    _insert_run(con, outcome, root, None, fingerprint, started, config_sha=last[0])
    return outcome


class _Run:
    def __init__(self, con: Any, report: ValidationReport, config: ValidationConfig, root: Path,
                 fingerprint: str, head: str | None, started: datetime, in_git: bool) -> None:
        self.con, self.report, self.config, self.root = con, report, config, root
        self.fingerprint, self.head, self.started = fingerprint, head, started
        self.run_id = _run_id()
        self.last_commits = gitrepo.last_commits(root) if in_git and head else {}
        self.dirty = gitrepo.dirty_paths(root) if in_git and head else set()
        self.commits = gitrepo.commits(root) if in_git and head else []

    def write(self) -> IndexOutcome:
        con = self.con
        valid = [s for s in self.report.leaves if s.version is not None]
        con.execute("BEGIN TRANSACTION")
        try:
            self._versions(valid)
            self._attributions(valid)
            self._documents(valid)
            retired = self._contributions()
            self._contributors(valid)
            self._commits()
            self._findings()
            self._cache()
            status = "indexed_with_errors" if self.report.errors else "indexed"
            outcome = IndexOutcome(self.run_id, status, self.report.findings, len(self.report.leaves),
                                   self.report.parsed, len(valid), retired)
            _insert_run(con, outcome, self.root, self.head, self.fingerprint, self.started,
                        self.config.file_rules_key())
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return outcome

    def _versions(self, valid: list[LeafState]) -> None:
        rows: list[dict[str, Any]] = []
        seeds: list[dict[str, Any]] = []
        for state in valid:
            v = state.version
            assert v is not None
            rows.append({
                "version_id": v.version_id, "contribution_id": v.contribution_id,
                "commit_sha": None if v.source_path in self.dirty else self.last_commits.get(v.source_path),
                "schema_version": v.schema_version, "source_path": v.source_path, "kind": v.kind.value,
                "grounded": v.grounded, "created_by": v.created_by, "knowledge_domain": v.domain,
                "task_description": v.task_description, "document_outline": v.document_outline,
                "byte_size": v.byte_size, "word_count": v.word_count, "parsed": v.parsed,
                "first_seen_run": self.run_id,
            })
            if not state.reused or not self._has_version(v.contribution_id, v.version_id):
                seeds.extend({"seed_id": s.seed_id, "contribution_id": v.contribution_id,
                              "version_id": v.version_id, "ordinal": s.ordinal, "context": s.context,
                              "question": s.question, "answer": s.answer, "line": s.line} for s in v.seeds)
        _insert(self.con, "contribution_version", rows)
        _insert(self.con, "seed_example", seeds)

    def _has_version(self, contribution_id: str, version_id: str) -> bool:
        if not hasattr(self, "_known"):
            self._known = set(self.con.execute(
                "SELECT contribution_id, version_id FROM contribution_version").fetchall())
        return (contribution_id, version_id) in self._known

    def _attributions(self, valid: list[LeafState]) -> None:
        rows: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        for state in valid:
            if state.attribution is None or state.attribution_sha256 is None or state.version is None:
                continue
            cid = state.leaf.contribution_id
            links.append({"contribution_id": cid, "version_id": state.version.version_id,
                          "attribution_sha256": state.attribution_sha256})
            rows.extend({"contribution_id": cid, "attribution_sha256": state.attribution_sha256, "ordinal": i,
                         "title": e.title, "link": e.link, "revision": e.revision, "license_raw": e.license_raw,
                         "license_spdx": e.license_spdx, "creators": e.creators, "first_seen_run": self.run_id}
                        for i, e in enumerate(state.attribution.entries))
        _insert(self.con, "attribution", rows)
        _insert(self.con, "contribution_attribution", links)

    def _documents(self, valid: list[LeafState]) -> None:
        docs, links = [], []
        for state in valid:
            assert state.version is not None
            license_spdx = _single_license(state)
            cls = classify(license_spdx)
            for resolved in state.resolution.documents:
                d = resolved.document
                docs.append({
                    "doc_sha256": d.doc_sha256, "repo_url": d.repo_url, "repo_commit": d.repo_commit,
                    "path": d.path, "title": d.title, "media_type": d.media_type, "byte_size": d.byte_size,
                    "license_spdx": license_spdx, "license_class": cls.label if cls else "unspecified",
                    "attribution_required": cls.attribution_required if cls else None,
                    "share_alike": cls.share_alike if cls else None, "first_seen_run": self.run_id,
                })
                links.append({"contribution_id": state.leaf.contribution_id,
                              "version_id": state.version.version_id, "doc_sha256": d.doc_sha256,
                              "pattern": resolved.pattern, "path": d.path})
        _insert(self.con, "source_document", docs)
        _insert(self.con, "contribution_source", links)

    def _contributions(self) -> int:
        rows = []
        for state in self.report.leaves:
            cid = state.leaf.contribution_id
            v = state.version
            rows.append({"contribution_id": cid, "kind": _kind(cid), "domain": _domain(cid),
                         "created_by": v.created_by if v else None,
                         "status": "active" if v else "invalid", "current_version_id": v.version_id if v else None,
                         "first_seen_run": self.run_id, "last_seen_run": self.run_id})
        table = _arrow(rows, "contribution", self.con)
        self.con.register("_current", table)
        try:
            self.con.execute("""
                INSERT INTO contribution BY NAME SELECT * FROM _current
                ON CONFLICT (contribution_id) DO UPDATE SET
                    created_by = coalesce(excluded.created_by, contribution.created_by),
                    status = CASE WHEN contribution.status = 'taken_down' THEN 'taken_down' ELSE excluded.status END,
                    current_version_id = excluded.current_version_id,
                    last_seen_run = excluded.last_seen_run""")
            retired = self.con.execute("""
                UPDATE contribution SET status = 'retired', current_version_id = NULL
                WHERE status IN ('active', 'invalid')
                  AND contribution_id NOT IN (SELECT contribution_id FROM _current)""").fetchone()[0]
        finally:
            self.con.unregister("_current")
        return int(retired)

    def _contributors(self, valid: list[LeafState]) -> None:
        logins = sorted({s.version.created_by for s in valid if s.version is not None})
        _insert(self.con, "contributor", [
            {"contributor_id": login.lower(), "kind": "person", "login": login, "display_name": None,
             "public_profile": f"https://github.com/{login}" if _LOGIN.match(login) else None}
            for login in logins])

    def _commits(self) -> None:
        _insert(self.con, "taxonomy_commit", [
            {"commit_sha": c.commit_sha, "parents": list(c.parents), "author": c.author,
             "committed_at": datetime.fromisoformat(c.committed_at), "subject": c.subject,
             "signed_off": c.signed_off} for c in self.commits])

    def _findings(self) -> None:
        by_path = {s.leaf.source_path: s.leaf.contribution_id for s in self.report.leaves}
        self.con.execute("DELETE FROM finding")
        _insert(self.con, "finding", [
            {"run_id": self.run_id, "code": f.code, "severity": f.severity.value, "path": f.path,
             "line": f.line, "col": f.col, "yaml_path": f.yaml_path, "message": f.message,
             "contribution_id": by_path.get(f.path) or _leaf_of(f.path)} for f in self.report.findings],
                keyed=False)

    def _cache(self) -> None:
        key = self.config.file_rules_key()
        rows = [{"source_path": s.leaf.source_path, "mtime_ns": s.stat.st_mtime_ns, "byte_size": s.stat.st_size,
                 "sha256": s.result.sha256, "rules_key": key, "result": encode(s.result)}
                for s in self.report.leaves if not s.reused and s.stat is not None and s.result.sha256]
        current = [{"source_path": s.leaf.source_path} for s in self.report.leaves]
        self.con.register("_present", _arrow(current, None, self.con))
        try:
            self.con.execute("DELETE FROM leaf_cache WHERE source_path NOT IN (SELECT source_path FROM _present)")
        finally:
            self.con.unregister("_present")
        if rows:
            self.con.register("_fresh", _arrow(rows, "leaf_cache", self.con))
            try:
                self.con.execute("INSERT OR REPLACE INTO leaf_cache BY NAME SELECT * FROM _fresh")
            finally:
                self.con.unregister("_fresh")


def _insert_run(con: Any, outcome: IndexOutcome, root: Path, head: str | None, fingerprint: str,
                started: datetime, config_sha: str) -> None:
    _insert(con, "index_run", [{
        "run_id": outcome.run_id, "started_at": started, "finished_at": datetime.now(UTC),
        "taxonomy_root": str(root.resolve()), "taxonomy_commit": head, "builder_version": __version__,
        "config_sha256": config_sha, "inputs_sha256": fingerprint, "status": outcome.status,
        "leaves_total": outcome.leaves_total, "leaves_parsed": outcome.leaves_parsed,
        "leaves_indexed": outcome.leaves_indexed, "leaves_retired": outcome.leaves_retired,
        "errors": outcome.errors, "warnings": outcome.warnings}])


def _insert(con: Any, table: str, rows: list[dict[str, Any]], keyed: bool = True) -> None:
    """Bulk insert from Arrow; rows whose key already exists are kept as they are (append-only)."""
    if not rows:
        return
    con.register("_rows", _arrow(rows, table, con))
    try:
        con.execute(f"INSERT {'OR IGNORE ' if keyed else ''}INTO {table} BY NAME SELECT * FROM _rows")
    finally:
        con.unregister("_rows")


def _arrow(rows: list[dict[str, Any]], table: str | None, con: Any) -> pa.Table:
    if table is None:
        return pa.Table.from_pylist(rows)
    schema = _arrow_schema(con, table)
    return pa.Table.from_pylist(rows, schema=pa.schema([schema.field(name) for name in rows[0]]))


_SCHEMAS: dict[str, pa.Schema] = {}


def _arrow_schema(con: Any, table: str) -> pa.Schema:
    if table not in _SCHEMAS:
        _SCHEMAS[table] = con.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema
    return _SCHEMAS[table]


def _run_id() -> str:
    return uuid.uuid4().hex


def _kind(contribution_id: str) -> str:
    return Kind.of_path(contribution_id).value


def _domain(contribution_id: str) -> str:
    parts = contribution_id.split("/")[1:]
    if parts and parts[0] == "grounded":
        parts = parts[1:]
    return parts[0] if len(parts) > 1 else "miscellaneous_unknown"


def _leaf_of(path: str) -> str | None:
    return path.rsplit("/", 1)[0] if "/" in path else None


def _single_license(state: LeafState) -> str | None:
    if state.attribution is None:
        return None
    licenses = {e.license_spdx for e in state.attribution.entries}
    return licenses.pop() if len(licenses) == 1 else None
