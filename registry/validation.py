"""Validating a whole taxonomy: every file, every rule, every finding (never stopping at the first).

Per-file verdicts are pure functions of the bytes and the limits, so a `VerdictCache` (the catalog)
can hand them back for unchanged files; attribution, documents and cross-leaf rules are re-checked
on every run because they depend on other files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

from registry import attribution
from registry.attribution import AttributionResult
from registry.config import ValidationConfig
from registry.discovery import LeafFile, discover
from registry.documents import DocumentResolver, Resolution
from registry.findings import Finding, Severity, finding
from registry.leaf import LeafResult, normalize_question, read_leaf
from registry.records import TOP_FOLDERS, ContributionVersion, sha256_bytes
from registry.yamlfile import require_libyaml

PARALLEL_THRESHOLD = 400  # below this many files to parse, process start-up costs more than it saves


class VerdictCache(Protocol):
    def lookup(self, leaf: LeafFile, stat: os.stat_result) -> LeafResult | None: ...


@dataclass(slots=True)
class LeafState:
    leaf: LeafFile
    result: LeafResult
    stat: os.stat_result | None
    attribution: AttributionResult | None = None
    attribution_sha256: str | None = None
    resolution: Resolution = field(default_factory=Resolution)
    reused: bool = False

    @property
    def version(self) -> ContributionVersion | None:
        return self.result.version


@dataclass(slots=True)
class ValidationReport:
    root: Path
    leaves: list[LeafState]
    findings: list[Finding]
    parsed: int = 0  # files parsed in this run (the rest came from the cache)

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


def validate(root: Path, config: ValidationConfig | None = None, only: Iterable[str] | None = None,
             cache: VerdictCache | None = None, workers: int | None = None) -> ValidationReport:
    require_libyaml()
    config = config or ValidationConfig()
    found = discover(root)
    leaves = found.leaves
    if only is not None:
        wanted = set(only)
        leaves = [leaf for leaf in leaves if leaf.source_path in wanted]
        found.findings = [f for f in found.findings if f.path in wanted]
    states = _read_all(leaves, config, cache, workers)
    findings = list(found.findings)
    resolver = DocumentResolver(config.documents(root))
    for state in states:
        findings.extend(state.result.findings)
        findings.extend(_attribution(state, config, root))
        if state.version is not None:
            state.resolution = resolver.resolve(state.version)
            findings.extend(state.resolution.findings)
            findings.extend(resolver.context_findings(state.version, state.resolution))
    findings.extend(_duplicate_questions(states))
    findings.sort(key=Finding.sort_key)
    parsed = sum(not s.reused for s in states)
    return ValidationReport(root, states, findings, parsed)


def _read_all(leaves: list[LeafFile], config: ValidationConfig, cache: VerdictCache | None,
              workers: int | None) -> list[LeafState]:
    states: list[LeafState] = []
    misses: list[LeafState] = []
    for leaf in leaves:
        try:
            stat = leaf.abs_path.stat()
        except OSError:
            stat = None
        cached = cache.lookup(leaf, stat) if cache is not None and stat is not None else None
        state = LeafState(leaf, cached or LeafResult("", 0, None, ()), stat, reused=cached is not None)
        states.append(state)
        if cached is None:
            misses.append(state)
    for state, result in zip(misses, _parse(misses, config, workers), strict=True):
        state.result = result
    return states


def _parse(states: list[LeafState], config: ValidationConfig, workers: int | None) -> Iterator[LeafResult]:
    leaves = [s.leaf for s in states]
    workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if workers <= 1 or len(leaves) < PARALLEL_THRESHOLD:
        return (read_leaf(leaf, config) for leaf in leaves)
    chunk = max(16, len(leaves) // (workers * 8))
    # fork: workers inherit the loaded schemas and validators instead of importing them again
    pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"))
    try:
        return iter(list(pool.map(read_leaf, leaves, [config] * len(leaves), chunksize=chunk)))
    finally:
        pool.shutdown()


def _attribution(state: LeafState, config: ValidationConfig, root: Path) -> list[Finding]:
    path = state.leaf.attribution_path
    rel = Path(state.leaf.source_path).with_name("attribution.txt").as_posix()
    if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
        return []  # discovery reported the link (TR108); what it points to is never read
    try:
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
        if state.version is None:
            continue
        seen_here = set()
        for seed in state.version.seeds:
            key = normalize_question(seed.question, seed.context)
            if key in seen_here:
                continue
            seen_here.add(key)
            owner = first.setdefault(key, (state.leaf.source_path, seed.line))
            if owner[0] != state.leaf.source_path:
                out.append(finding("TR404", state.leaf.source_path, f"this question is also asked in {owner[0]} "
                                   f"at line {owner[1]}", seed.line))
    return out


def input_fingerprint(root: Path, config: ValidationConfig, extra: str = "") -> str:
    """A hash of every input's path, size and mtime plus the config: equal means nothing changed."""
    digest = hashlib.sha256(f"{config.file_rules_key()}|{sorted(config.policy.allowed)}|{extra}".encode())
    for base in [*(root / top for top in TOP_FOLDERS), config.documents(root)]:
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()
