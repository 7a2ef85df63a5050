"""Validating a whole taxonomy: every file, every rule, every finding (never stopping at the first).

Everything that concerns one leaf (its qna.yaml, its attribution.txt, its documents) is checked in one
worker call, in parallel; only cross-leaf rules run in the parent. A leaf's verdict depends on its two
files, the document cache and the limits, so a `VerdictCache` (the catalog) can hand verdicts back for
leaves whose files, documents and configuration are unchanged.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

from registry import attribution, gitrepo
from registry.attribution import AttributionResult
from registry.config import ValidationConfig
from registry.discovery import LeafFile, discover
from registry.documents import DocumentResolver, Resolution
from registry.findings import Finding, Severity, finding
from registry.fingerprint import documents_fingerprint
from registry.leaf import read_leaf
from registry.records import ContributionVersion, sha256_bytes
from registry.yamlfile import require_libyaml

PARALLEL_THRESHOLD = 400  # below this many leaves to check, process start-up costs more than it saves
Stamp = tuple[int, int]  # (mtime_ns, size): a file whose stamp is unchanged is not read again


@dataclass(frozen=True, slots=True)
class LeafVerdict:
    """What a leaf's check concluded: enough to report it and to compare it with other leaves."""

    sha256: str
    version_id: str | None  # None when the file did not pass the schema
    created_by: str | None
    findings: tuple[Finding, ...]
    question_keys: tuple[tuple[str, int], ...]  # (digest of the normalised question and context, line)

    @property
    def valid(self) -> bool:
        """Indexable: the file passed the schema and no error concerns the leaf's own files."""
        return self.version_id is not None and not any(f.is_error for f in self.findings)


class VerdictCache(Protocol):
    def lookup(self, leaf: LeafFile, stamp: Stamp, attribution_stamp: Stamp | None,
               documents_key: str) -> LeafVerdict | None: ...


@dataclass(slots=True)
class LeafState:
    leaf: LeafFile
    stamp: Stamp | None
    attribution_stamp: Stamp | None
    verdict: LeafVerdict
    version: ContributionVersion | None = None  # the parsed record; None when the verdict came from the cache
    attribution: AttributionResult | None = None
    attribution_sha256: str | None = None
    resolution: Resolution = field(default_factory=Resolution)
    reused: bool = False


@dataclass(slots=True)
class ValidationReport:
    root: Path
    leaves: list[LeafState]
    findings: list[Finding]
    documents_key: str = ""
    unreadable: list[str] = field(default_factory=list)  # folders whose leaves were not seen

    @property
    def parsed(self) -> int:
        return sum(not s.reused for s in self.leaves)

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity is Severity.WARNING for f in self.findings)

    def failed(self, strict: bool = False) -> bool:
        return self.errors > 0 or (strict and self.warnings > 0)

    def files_with_errors(self) -> set[str]:
        return {f.path for f in self.findings if f.severity is Severity.ERROR}


def validate_since(root: Path, ref: str, config: ValidationConfig | None = None,
                   cache: VerdictCache | None = None) -> ValidationReport:
    """Report only on leaves changed since a git ref (their qna.yaml or attribution.txt); every leaf is
    still read (from the cache when it can be), so duplicates of unchanged leaves are found too."""
    changed = [c.path for c in gitrepo.changes_since(root, ref) if c.status != "removed"]
    return validate(root, config, report_only=changed, cache=cache)


def validate(root: Path, config: ValidationConfig | None = None, report_only: Iterable[str] | None = None,
             cache: VerdictCache | None = None, workers: int | None = None) -> ValidationReport:
    require_libyaml()
    config = config or ValidationConfig()
    found = discover(root)
    leaves = found.leaves
    documents_key = documents_fingerprint(config.documents(root))
    states = [_stamped(leaf) for leaf in leaves]
    misses = []
    for state in states:
        cached = None
        if cache is not None and state.stamp is not None:
            cached = cache.lookup(state.leaf, state.stamp, state.attribution_stamp, documents_key)
        if cached is None:
            misses.append(state)
        else:
            state.verdict, state.reused = cached, True
    with _paused_gc():
        checked = _check_all([s.leaf for s in misses], _Job(config, root, documents_key), workers)
        states = _merge(states, misses, checked)
    findings = [*found.findings, *(f for s in states for f in s.verdict.findings), *_duplicate_questions(states)]
    if report_only is not None:
        folders = {path.rsplit("/", 1)[0] + "/" for path in report_only}
        findings = [f for f in findings if any(f.path.startswith(folder) for folder in folders)]
        states = [s for s in states if s.leaf.contribution_id + "/" in folders]
    findings.sort(key=Finding.sort_key)
    return ValidationReport(root, states, findings, documents_key, found.unreadable)


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Checking allocates millions of short-lived objects and keeps all results alive: the cyclic GC
    would re-scan the growing heap again and again for nothing (measured: a third of the time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _merge(states: list[LeafState], misses: list[LeafState], checked: list[LeafState]) -> list[LeafState]:
    fresh = {}
    for old, new in zip(misses, checked, strict=True):
        new.stamp, new.attribution_stamp = old.stamp, old.attribution_stamp
        fresh[id(old)] = new
    return [fresh.get(id(s), s) for s in states]


def _stamped(leaf: LeafFile) -> LeafState:
    empty = LeafVerdict("", None, None, (), ())
    return LeafState(leaf, _stamp(leaf.abs_path), _stamp(leaf.attribution_path), empty)


def _stamp(path: Path) -> Stamp | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


@dataclass(frozen=True, slots=True)
class _Job:
    config: ValidationConfig
    root: Path
    documents_key: str  # the state of the document cache this job saw


# One resolver per process and document cache state: each document is read once per worker, and a
# changed cache (a new key) never sees stale text.
_RESOLVERS: dict[tuple[Path, str], DocumentResolver] = {}


def _resolver(job: _Job) -> DocumentResolver:
    key = (job.config.documents(job.root), job.documents_key)
    if key not in _RESOLVERS:
        _RESOLVERS.clear()
        _RESOLVERS[key] = DocumentResolver(key[0])
    return _RESOLVERS[key]


def check_leaf(leaf: LeafFile, job: _Job) -> LeafState:
    """Everything about one leaf: its file, its attribution and its documents."""
    result = read_leaf(leaf, job.config)
    state = LeafState(leaf, None, None, LeafVerdict(result.sha256, None, None, (), ()), version=result.version)
    findings = [*result.findings, *_attribution(state, job.config, job.root)]
    version = result.version
    if version is not None:
        resolver = _resolver(job)
        state.resolution = resolver.resolve(version)
        findings.extend(state.resolution.findings)
        findings.extend(resolver.context_findings(version, state.resolution))
        state.resolution.drop_texts()  # the parent needs hashes, not the documents' text
    state.verdict = LeafVerdict(result.sha256, version.version_id if version else None,
                                version.created_by if version else None, tuple(findings), result.question_keys)
    return state


def _check_all(leaves: list[LeafFile], job: _Job, workers: int | None) -> list[LeafState]:
    workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if workers <= 1 or len(leaves) < PARALLEL_THRESHOLD:
        return [check_leaf(leaf, job) for leaf in leaves]
    chunk = max(16, len(leaves) // (workers * 8))
    # fork: workers inherit the loaded schemas and validators instead of importing them again
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        return list(pool.map(check_leaf, leaves, [job] * len(leaves), chunksize=chunk))


def _attribution(state: LeafState, config: ValidationConfig, root: Path) -> list[Finding]:
    path = state.leaf.attribution_path
    rel = state.leaf.contribution_id + "/attribution.txt"
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root)):
                return []  # discovery reported the link (TR108); what it points to is never read
            info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return [finding("TR302", rel, "attribution.txt is not a regular file")]
        data = path.read_bytes()
    except FileNotFoundError:
        code = "TR306" if state.leaf.top_folder == "foundational_skills" else "TR301"
        return [finding(code, state.leaf.source_path, "no attribution.txt beside qna.yaml: add one with "
                        "'Title of work:', 'Link to work:', 'Revision:', 'License of the work:', 'Creator names:'")]
    except OSError as exc:
        return [finding("TR302", rel, f"cannot read attribution.txt: {exc.strerror}")]
    state.attribution_sha256 = sha256_bytes(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [finding("TR302", rel, "attribution.txt is not UTF-8 text")]
    state.attribution = attribution.parse(text, rel, config.policy)
    return list(state.attribution.findings)


def _duplicate_questions(states: list[LeafState]) -> list[Finding]:
    first: dict[str, tuple[str, int]] = {}
    out = []
    for state in sorted(states, key=lambda s: s.leaf.source_path):
        path = state.leaf.source_path
        seen_here = set()
        for key, line in state.verdict.question_keys:
            if key in seen_here:
                continue
            seen_here.add(key)
            owner = first.setdefault(key, (path, line))
            if owner[0] != path:
                out.append(finding("TR404", path, f"this question is also asked in {owner[0]} at line {owner[1]}",
                                   line))
    return out
