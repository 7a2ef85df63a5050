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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple, Protocol

from registry import attribution, gitrepo
from registry.attribution import AttributionResult
from registry.config import ValidationConfig
from registry.discovery import ATTRIBUTION_FILE, Discovery, LeafFile, Stamp, discover
from registry.documents import DocumentResolver, Resolution
from registry.findings import Finding, Severity, finding
from registry.fingerprint import documents_fingerprint
from registry.leaf import read_file, read_leaf
from registry.records import ContributionVersion, sha256_bytes
from registry.yamlfile import require_libyaml

PARALLEL_THRESHOLD = 400  # below this many leaves to check, process start-up costs more than it saves
SINK_BATCH = 1000  # leaves handed to an `on_checked` sink at a time


class LeafVerdict(NamedTuple):
    """What a leaf's check concluded: enough to report it and to compare it with other leaves.
    (A NamedTuple: every worker result carries one, and tuples pickle ~3x faster than frozen dataclasses.)"""

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


Sink = Callable[[list[LeafState]], None]  # receives batches of freshly checked leaves


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
             cache: VerdictCache | None = None, workers: int | None = None, found: Discovery | None = None,
             on_checked: Sink | None = None) -> ValidationReport:
    """Check every leaf.

    found: the tree as `discover(root)` just walked it (the indexer walked it to fingerprint its inputs).
    on_checked: called with each batch of freshly checked leaves as the workers hand them back (without
    their stamps yet), so that the indexer writes their rows while the rest are still being parsed.
    """
    require_libyaml()
    config = config or ValidationConfig()
    found = found if found is not None else discover(root)
    leaves = found.leaves
    documents_root = config.documents(root)
    documents_key = documents_fingerprint(documents_root)
    states = [_stamped(leaf, found.stamps) for leaf in leaves]
    misses = []
    for state in states:
        cached = None
        if cache is not None and state.stamp is not None:
            cached = cache.lookup(state.leaf, state.stamp, state.attribution_stamp, documents_key)
        if cached is None:
            misses.append(state)
        else:
            state.verdict, state.reused = cached, True
    with paused_gc():
        job = _Job(config, root, documents_root, documents_key)
        checked = _check_all([s.leaf for s in misses], job, workers, on_checked)
        states = _merge(states, misses, checked)
        findings = [*found.findings, *(f for s in states for f in s.verdict.findings),
                    *_duplicate_questions(states)]
    if report_only is not None:
        folders = {path.rsplit("/", 1)[0] + "/" for path in report_only}
        findings = [f for f in findings if any(f.path.startswith(folder) for folder in folders)]
        states = [s for s in states if s.leaf.contribution_id + "/" in folders]
    findings.sort(key=Finding.sort_key)
    return ValidationReport(root, states, findings, documents_key, found.unreadable)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Checking allocates millions of short-lived objects and keeps all results alive: the cyclic GC
    would re-scan the growing heap again and again for nothing (measured: a third of the time).
    Nothing here makes reference cycles worth collecting; re-entrant (an index run pauses it too)."""
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


_UNCHECKED = LeafVerdict("", None, None, (), ())


def _stamped(leaf: LeafFile, stamps: dict[str, Stamp]) -> LeafState:
    attribution = stamps.get(f"{leaf.contribution_id}/{ATTRIBUTION_FILE}")
    return LeafState(leaf, stamps.get(leaf.source_path), attribution, _UNCHECKED)


@dataclass(frozen=True, slots=True)
class _Job:
    config: ValidationConfig
    root: Path
    documents_root: Path  # worked out once: building a Path for every leaf costs ~2% of a check
    documents_key: str  # the state of the document cache this job saw


# One resolver per process and document cache state: each document is read once per worker, and a
# changed cache (a new key) never sees stale text.
_RESOLVERS: dict[tuple[Path, str], DocumentResolver] = {}


def _resolver(job: _Job) -> DocumentResolver:
    key = (job.documents_root, job.documents_key)
    if key not in _RESOLVERS:
        _RESOLVERS.clear()
        _RESOLVERS[key] = DocumentResolver(key[0])
    return _RESOLVERS[key]


class _Checked(NamedTuple):
    """What a parse worker sends back for one leaf: the parent already holds the LeafFile and its stamps."""

    verdict: LeafVerdict
    version: ContributionVersion | None
    attribution: AttributionResult | None
    attribution_sha256: str | None
    resolution: Resolution


def check_leaf(leaf: LeafFile, job: _Job) -> LeafState:
    """Everything about one leaf: its file, its attribution and its documents."""
    return _state(leaf, _check(leaf, job))


def _state(leaf: LeafFile, checked: _Checked) -> LeafState:
    return LeafState(leaf, None, None, checked.verdict, checked.version, checked.attribution,
                     checked.attribution_sha256, checked.resolution)


def _check(leaf: LeafFile, job: _Job) -> _Checked:
    result = read_leaf(leaf, job.config)
    attribution_sha256, parsed_attribution, attribution_findings = _attribution(leaf, job.config, job.root)
    findings = [*result.findings, *attribution_findings]
    version = result.version
    resolution = Resolution()
    if version is not None:
        resolver = _resolver(job)
        resolution = resolver.resolve(version)
        findings.extend(resolution.findings)
        findings.extend(resolver.context_findings(version, resolution, result.contexts))
        resolution.drop_texts()  # the parent needs hashes, not the documents' text
    verdict = LeafVerdict(result.sha256, version.version_id if version else None,
                          version.created_by if version else None, tuple(findings), result.question_keys)
    return _Checked(verdict, version, parsed_attribution, attribution_sha256, resolution)


def _check_all(leaves: list[LeafFile], job: _Job, workers: int | None, on_checked: Sink | None) -> list[LeafState]:
    workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if workers <= 1 or len(leaves) < PARALLEL_THRESHOLD:
        return _collect((check_leaf(leaf, job) for leaf in leaves), on_checked)
    # small chunks: the last one finishing alone leaves a core idle for its duration (~0.1 s at 10,000 leaves)
    chunk = max(16, len(leaves) // (workers * 32))
    # fork: workers inherit the loaded schemas and validators instead of importing them again, and the job
    # itself (pickling it with every leaf cost ~20 us a leaf, more than reading the leaf's two files)
    with ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_adopt, initargs=(job,)) as pool:
        checked = pool.map(_check_adopted, leaves, chunksize=chunk)
        return _collect((_state(leaf, c) for leaf, c in zip(leaves, checked, strict=True)), on_checked)


_WORKER_JOB: list[_Job] = []  # in a parse worker: the job it was started for


def _adopt(job: _Job) -> None:
    _WORKER_JOB[:] = [job]


def _check_adopted(leaf: LeafFile) -> _Checked:
    return _check(leaf, _WORKER_JOB[0])


def _collect(states: Iterable[LeafState], on_checked: Sink | None) -> list[LeafState]:
    """The states in order, handed to `on_checked` in batches as they arrive."""
    out: list[LeafState] = []
    for state in states:
        out.append(state)
        if on_checked is not None and len(out) % SINK_BATCH == 0:
            on_checked(out[-SINK_BATCH:])
    if on_checked is not None and len(out) % SINK_BATCH:
        on_checked(out[-(len(out) % SINK_BATCH):])
    return out


def _attribution(leaf: LeafFile, config: ValidationConfig,
                 root: Path) -> tuple[str | None, AttributionResult | None, tuple[Finding, ...]]:
    """The attribution.txt beside a leaf: (sha256 of its bytes, its parsed entries, findings)."""
    path = leaf.attribution_file
    rel = leaf.contribution_id + "/attribution.txt"
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root)):
                return None, None, ()  # discovery reported the link (TR108); what it points to is never read
            info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return None, None, (finding("TR302", rel, "attribution.txt is not a regular file"),)
        data = read_file(path, info.st_size)
    except FileNotFoundError:
        code = "TR306" if leaf.top_folder == "foundational_skills" else "TR301"
        return None, None, (finding(code, leaf.source_path, "no attribution.txt beside qna.yaml: add one with "
                                    "'Title of work:', 'Link to work:', 'Revision:', 'License of the work:', "
                                    "'Creator names:'"),)
    except OSError as exc:
        return None, None, (finding("TR302", rel, f"cannot read attribution.txt: {exc.strerror}"),)
    digest = sha256_bytes(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return digest, None, (finding("TR302", rel, "attribution.txt is not UTF-8 text"),)
    parsed = attribution.parse(text, rel, config.policy)
    return digest, parsed, parsed.findings


def _duplicate_questions(states: list[LeafState]) -> list[Finding]:
    """TR404: a question asked in another leaf. Duplicates are rare: one set of every leaf's distinct
    keys tells whether there are any before the leaves are walked in order to name them."""
    distinct = [{key for key, _ in s.verdict.question_keys} for s in states]
    if len(set().union(*distinct)) == sum(map(len, distinct)):
        return []
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
