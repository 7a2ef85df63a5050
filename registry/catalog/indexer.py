"""`taxreg index`: validate the tree and write the catalog, incrementally, in one transaction.

Rows are inserted in bulk as columns (`registry.catalog.columns`; row-by-row inserts were ~50x slower).
Only what is new is written: versions, seeds and document links of leaves whose bytes changed. Versions
and seeds are written batch by batch while the parse workers are still checking the rest of the tree;
everything else once every leaf is checked. Content rows are append-only; `finding` holds the last
validation. A failed or killed run rolls back, so the previous catalog stays intact and openable.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import __version__, gitrepo
from registry.catalog.columns import insert, register, upsert
from registry.catalog.connection import open_catalog, transaction
from registry.config import ValidationConfig
from registry.discovery import Discovery, discover, require_taxonomy
from registry.errors import ValidationFailed
from registry.findings import Finding, Severity
from registry.fingerprint import input_fingerprint
from registry.licenses import classify
from registry.records import Kind

if TYPE_CHECKING:
    from registry.catalog.verdicts import CatalogVerdicts
    from registry.validation import LeafState, ValidationReport

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
    require_taxonomy(root)
    started = datetime.now(UTC)
    in_git = gitrepo.is_repository(root)
    tree = gitrepo.tree_state(root) if in_git else None
    head = tree.commit if tree else None
    found = discover(root, config.documents(root))
    fingerprint = input_fingerprint(root, config, found, extra=f"{head}|{__version__}")
    with open_catalog(catalog) as con:
        unchanged = _unchanged(con, fingerprint, root, started, allow_errors, tree)
        if unchanged is not None:
            return unchanged
        # imported here: a tree with nothing changed never needs the parser, the schemas or pyarrow
        from registry.catalog.verdicts import CatalogVerdicts
        from registry.validation import paused_gc

        with paused_gc():  # the rows of every leaf stay alive until the commit: nothing for the GC to free
            verdicts = CatalogVerdicts(con, config.file_rules_key())
            return _Run(con, root, config, fingerprint, tree, started).run(found, verdicts, workers, allow_errors)


def _last_findings(con: Any) -> list[Finding]:
    return [Finding(r[0], Severity(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in con.execute(
        "SELECT code, severity, path, line, col, yaml_path, message FROM finding "
        "ORDER BY path, line, col, code").fetchall()]


def _unchanged(con: Any, fingerprint: str, root: Path, started: datetime, allow_errors: bool,
               tree: gitrepo.TreeState | None) -> IndexOutcome | None:
    rows = con.execute("SELECT config_sha256, inputs_sha256, leaves_total, taxonomy_commit, errors FROM index_run "
                       "WHERE status <> 'unchanged' ORDER BY finished_at DESC LIMIT 1").fetchall()
    last = rows[0] if rows else None
    if last is None or last[1] != fingerprint:
        return None
    if last[4] and not allow_errors:  # unchanged, but the last run only went through with --allow-errors
        raise ValidationFailed(
            f"the catalog was indexed with --allow-errors and the tree still has {last[4]} error(s)",
            hint="fix them, or pass --allow-errors again", findings=_last_findings(con))
    outcome = IndexOutcome(_run_id(), "unchanged", _last_findings(con), last[2], 0, 0, 0)
    _insert_run(con, outcome, root, tree, fingerprint, started, config_sha=last[0])
    return outcome


class _Run:
    """One index run, in one transaction. The transaction is opened before the leaves are checked, so
    that versions and seeds are written batch by batch while the workers are still parsing; errors
    (without --allow-errors) or any failure roll it all back."""

    def __init__(self, con: Any, root: Path, config: ValidationConfig, fingerprint: str,
                 tree: gitrepo.TreeState | None, started: datetime) -> None:
        self.con, self.root, self.config = con, root, config
        self.fingerprint, self.tree, self.started = fingerprint, tree, started
        self.run_id = _run_id()
        self.last_commits = gitrepo.last_commits(root) if tree else {}
        self.dirty = set(tree.dirty) if tree else set()
        self.commits = gitrepo.commits(root) if tree else []
        self.known: set[tuple[str, str]] = set()  # (contribution_id, version_id) already in the catalog

    def run(self, found: Discovery, verdicts: CatalogVerdicts, workers: int | None,
            allow_errors: bool) -> IndexOutcome:
        from registry.validation import validate

        self.con.execute("SET enable_progress_bar = false")  # a long COMMIT would draw one on stdout
        # Seed text is most of the catalog: zstd stores strings in ~70% of the bytes of DuckDB's default
        # compression for ~2/3 of its CPU time (other types keep their usual compression).
        self.con.execute("SET force_compression = 'zstd'")
        try:
            with transaction(self.con):
                self.known = set(self.con.execute("SELECT contribution_id, version_id FROM contribution_version")
                                 .fetchall())
                report = validate(self.root, self.config, cache=verdicts, workers=workers, found=found,
                                  on_checked=self._versions)
                if report.errors and not allow_errors:
                    raise ValidationFailed(
                        f"validation found {report.errors} error(s) in {len(report.files_with_errors())} file(s); "
                        "nothing was indexed", hint="fix them; `taxreg index --allow-errors` indexes the valid "
                                                    "leaves and records the others as invalid",
                        findings=report.findings)
                outcome = self._write(report, verdicts.restamped)
        finally:
            with contextlib.suppress(Exception):
                self.con.execute("RESET force_compression")
        return outcome

    def _write(self, report: ValidationReport, restamped: set[str]) -> IndexOutcome:
        """Everything but versions and seeds (written as the leaves came back): links, documents,
        attributions, contributions, findings, the verdict cache and the run itself."""
        self.report, self.restamped = report, restamped
        known = self.known
        checked = [s for s in report.leaves if not s.reused]
        self._forget_links([s for s in checked if s.verdict.valid and s.version is not None
                            and (s.leaf.contribution_id, s.version.version_id) in known])  # new: no links yet
        self._commit_links()
        self._documents([s for s in checked if s.version is not None and s.verdict.valid])  # can change alone
        self._attributions([s for s in checked if s.verdict.valid])
        retired = self._contributions()
        self._contributors()
        self._commits()
        self._findings()
        self._cache()
        valid = sum(s.verdict.valid for s in report.leaves)
        status = "indexed_with_errors" if report.errors else "indexed"
        outcome = IndexOutcome(self.run_id, status, report.findings, len(report.leaves), report.parsed, valid,
                               retired)
        _insert_run(self.con, outcome, report.root, self.tree, self.fingerprint, self.started,
                    self.config.file_rules_key())
        return outcome

    def _forget_links(self, checked: list[LeafState]) -> None:
        """Links of a re-checked version are written anew: a dropped pattern or attribution leaves no stale row."""
        if not checked:
            return
        register(self.con, "_checked", None, {"contribution_id": [s.leaf.contribution_id for s in checked],
                                              "version_id": [s.verdict.version_id for s in checked]})
        try:
            for table in ("contribution_source", "contribution_attribution"):
                self.con.execute(f"""DELETE FROM {table} WHERE (contribution_id, version_id) IN
                                     (SELECT contribution_id, version_id FROM _checked)""")
        finally:
            self.con.unregister("_checked")

    def _commit_links(self) -> None:
        """A version first seen as an uncommitted edit gets its commit once the file is committed as is."""
        linked = [(s.leaf.contribution_id, s.verdict.version_id, self.last_commits[s.leaf.source_path])
                  for s in self.report.leaves if s.verdict.valid and s.leaf.source_path not in self.dirty
                  and s.leaf.source_path in self.last_commits]
        if not linked:
            return
        register(self.con, "_commits", None, {"contribution_id": [x[0] for x in linked],
                                              "version_id": [x[1] for x in linked],
                                              "commit_sha": [x[2] for x in linked]})
        try:
            self.con.execute("""
                UPDATE contribution_version SET commit_sha = c.commit_sha FROM _commits c
                WHERE contribution_version.contribution_id = c.contribution_id
                  AND contribution_version.version_id = c.version_id AND contribution_version.commit_sha IS NULL""")
        finally:
            self.con.unregister("_commits")

    def _versions(self, checked: list[LeafState]) -> None:
        """Versions and seeds of valid leaves not yet in the catalog, for one batch of checked leaves."""
        versions = [s.version for s in checked if s.version is not None and s.verdict.valid
                    and (s.leaf.contribution_id, s.version.version_id) not in self.known]
        if not versions:
            return
        insert(self.con, "contribution_version", {
            "version_id": [v.version_id for v in versions],
            "contribution_id": [v.contribution_id for v in versions],
            "commit_sha": [None if v.source_path in self.dirty else self.last_commits.get(v.source_path)
                           for v in versions],
            "schema_version": [v.schema_version for v in versions],
            "source_path": [v.source_path for v in versions],
            "kind": [v.kind.value for v in versions],
            "grounded": [v.grounded for v in versions],
            "created_by": [v.created_by for v in versions],
            "knowledge_domain": [v.domain for v in versions],
            "task_description": [v.task_description for v in versions],
            "document_outline": [v.document_outline for v in versions],
            "byte_size": [v.byte_size for v in versions],
            "word_count": [v.word_count for v in versions],
            "document_repo": [v.document.repo if v.document else None for v in versions],
            "document_commit": [v.document.commit if v.document else None for v in versions],
            "document_patterns": [list(v.document.patterns) if v.document else None for v in versions],
            "first_seen_run": [self.run_id] * len(versions),
        }, keyed=False)  # a plain INSERT (OR IGNORE costs ~40% more): `known` holds every stored version,
        # and a run sees each contribution once; a duplicate would fail the run, never change a row
        seeds = [s for v in versions for s in v.seeds]
        if not seeds:
            return
        # ~13 seeds a leaf: transposed in one C-level zip rather than one comprehension per column
        seed_ids, ordinals, contexts, questions, answers, lines, _ = zip(*seeds, strict=True)
        insert(self.con, "seed_example", {
            "seed_id": seed_ids,
            "contribution_id": [v.contribution_id for v in versions for _ in v.seeds],
            "version_id": [v.version_id for v in versions for _ in v.seeds],
            "ordinal": ordinals, "context": contexts, "question": questions, "answer": answers, "line": lines,
        }, keyed=False)

    def _documents(self, checked: list[LeafState]) -> None:
        docs: list[tuple[LeafState, Any, str | None]] = []
        for state in checked:
            license_spdx = _single_license(state)
            docs.extend((state, resolved, license_spdx) for resolved in state.resolution.documents)
        classes = [classify(license_spdx) for _, _, license_spdx in docs]
        # the license comes from the referencing leaf's attribution.txt: when that changes, so does this row
        upsert(self.con, "source_document", {
            "doc_sha256": [r.document.doc_sha256 for _, r, _ in docs],
            "repo_url": [r.document.repo_url for _, r, _ in docs],
            "repo_commit": [r.document.repo_commit for _, r, _ in docs],
            "path": [r.document.path for _, r, _ in docs],
            "title": [r.document.title for _, r, _ in docs],
            "media_type": [r.document.media_type for _, r, _ in docs],
            "byte_size": [r.document.byte_size for _, r, _ in docs],
            "license_spdx": [license_spdx for _, _, license_spdx in docs],
            "license_class": [c.label if c else "unspecified" for c in classes],
            "attribution_required": [c.attribution_required if c else None for c in classes],
            "share_alike": [c.share_alike if c else None for c in classes],
            "first_seen_run": [self.run_id] * len(docs),
        }, key=("doc_sha256", "repo_url", "repo_commit", "path"),
            update=("license_spdx", "license_class", "attribution_required", "share_alike"))
        insert(self.con, "contribution_source", {
            "contribution_id": [s.leaf.contribution_id for s, _, _ in docs],
            "version_id": [s.verdict.version_id for s, _, _ in docs],
            "doc_sha256": [r.document.doc_sha256 for _, r, _ in docs],
            "pattern": [r.pattern for _, r, _ in docs],
            "path": [r.document.path for _, r, _ in docs],
        })

    def _attributions(self, checked: list[LeafState]) -> None:
        with_attribution = [s for s in checked if s.attribution is not None and s.verdict.version_id is not None]
        entries = [(s, i, e) for s in with_attribution if s.attribution for i, e in enumerate(s.attribution.entries)]
        insert(self.con, "attribution", {
            "contribution_id": [s.leaf.contribution_id for s, _, _ in entries],
            "attribution_sha256": [s.attribution_sha256 for s, _, _ in entries],
            "ordinal": [i for _, i, _ in entries],
            "title": [e.title for _, _, e in entries],
            "link": [e.link for _, _, e in entries],
            "revision": [e.revision for _, _, e in entries],
            "license_raw": [e.license_raw for _, _, e in entries],
            "license_spdx": [e.license_spdx for _, _, e in entries],
            "creators": [e.creators for _, _, e in entries],
            "first_seen_run": [self.run_id] * len(entries),
        })
        insert(self.con, "contribution_attribution", {
            "contribution_id": [s.leaf.contribution_id for s in with_attribution],
            "version_id": [s.verdict.version_id for s in with_attribution],
            "attribution_sha256": [s.attribution_sha256 for s in with_attribution],
        })

    def _contributions(self) -> int:
        leaves = self.report.leaves
        register(self.con, "_current", "contribution", {
            "contribution_id": [s.leaf.contribution_id for s in leaves],
            "kind": [Kind.of_path(s.leaf.contribution_id).value for s in leaves],
            "domain": [_domain(s.leaf.contribution_id) for s in leaves],
            "created_by": [s.verdict.created_by for s in leaves],
            "status": ["active" if s.verdict.valid else "invalid" for s in leaves],
            "current_version_id": [s.verdict.version_id if s.verdict.valid else None for s in leaves],
            "first_seen_run": [self.run_id] * len(leaves),
            "last_seen_run": [self.run_id] * len(leaves),
        })
        try:
            self.con.execute("""
                INSERT INTO contribution BY NAME SELECT * FROM _current
                ON CONFLICT (contribution_id) DO UPDATE SET
                    created_by = coalesce(excluded.created_by, contribution.created_by),
                    status = CASE WHEN contribution.status = 'taken_down' THEN 'taken_down' ELSE excluded.status END,
                    current_version_id = excluded.current_version_id,
                    last_seen_run = excluded.last_seen_run""")
            hidden = [f"{folder}/%" for folder in self.report.unreadable] or ["\x00"]
            retired = self.con.execute("""
                UPDATE contribution SET status = 'retired', current_version_id = NULL
                WHERE status IN ('active', 'invalid')
                  AND contribution_id NOT IN (SELECT contribution_id FROM _current)
                  AND NOT list_bool_or([contribution_id LIKE p FOR p IN ?])""", [hidden]).fetchall()[0][0]
        finally:
            self.con.unregister("_current")
        return int(retired)

    def _contributors(self) -> None:
        logins = sorted({s.verdict.created_by for s in self.report.leaves if s.verdict.created_by})
        insert(self.con, "contributor", {
            "contributor_id": [login.lower() for login in logins], "kind": ["person"] * len(logins),
            "login": logins, "display_name": [None] * len(logins),
            "public_profile": [f"https://github.com/{login}" if _LOGIN.match(login) else None for login in logins],
        })

    def _commits(self) -> None:
        commits = self.commits
        insert(self.con, "taxonomy_commit", {
            "commit_sha": [c.commit_sha for c in commits], "parents": [list(c.parents) for c in commits],
            "author": [c.author for c in commits],
            "committed_at": [c.committed_at for c in commits],  # ISO 8601 with its offset: DuckDB casts it
            "subject": [c.subject for c in commits], "signed_off": [c.signed_off for c in commits],
        })

    def _findings(self) -> None:
        by_path = {s.leaf.source_path: s.leaf.contribution_id for s in self.report.leaves}
        found = self.report.findings
        self.con.execute("DELETE FROM finding")
        insert(self.con, "finding", {
            "run_id": [self.run_id] * len(found), "code": [f.code for f in found],
            "severity": [f.severity.value for f in found], "path": [f.path for f in found],
            "line": [f.line for f in found], "col": [f.col for f in found],
            "yaml_path": [f.yaml_path for f in found], "message": [f.message for f in found],
            "contribution_id": [by_path.get(f.path) or _leaf_of(f.path) for f in found],
        }, keyed=False)

    def _cache(self) -> None:
        present = [s.leaf.source_path for s in self.report.leaves]
        register(self.con, "_present", None, {"source_path": present})
        try:
            self.con.execute("DELETE FROM leaf_cache WHERE source_path NOT IN (SELECT source_path FROM _present)")
        finally:
            self.con.unregister("_present")
        from registry.catalog.verdicts import cache_columns

        columns = cache_columns(self.report.leaves, self.config.file_rules_key(), self.report.documents_key,
                                self.restamped)
        if columns["source_path"]:
            register(self.con, "_fresh", "leaf_cache", columns)
            try:
                self.con.execute("INSERT OR REPLACE INTO leaf_cache BY NAME SELECT * FROM _fresh")
            finally:
                self.con.unregister("_fresh")


def _insert_run(con: Any, outcome: IndexOutcome, root: Path, tree: gitrepo.TreeState | None, fingerprint: str,
                started: datetime, config_sha: str) -> None:
    con.execute("INSERT INTO index_run VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        outcome.run_id, started, datetime.now(UTC), str(root.resolve()), tree.commit if tree else None, __version__,
        config_sha, fingerprint, outcome.status, outcome.leaves_total, outcome.leaves_parsed, outcome.leaves_indexed,
        outcome.leaves_retired, outcome.errors, outcome.warnings, list(tree.dirty) if tree else None,
        tree.tree_sha256 if tree else None])


def _run_id() -> str:
    return uuid.uuid4().hex


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


