"""`taxreg generate`: one generator over the current leaves (or those changed since a ref), one run."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.generators import GENERATORS, Generator, GeneratorInput
from builder.generators.base import LoadedDocument
from builder.generators.judge import Judge
from builder.progress import Report, ignore
from registry import gitrepo
from registry.catalog.connection import open_catalog
from registry.catalog.generation import (
    Judgement,
    LeafInput,
    RunInfo,
    current_leaves,
    new_run_id,
    record_failed_run,
    write_run,
)
from registry.catalog.journal import merge_run_stats
from registry.chunking import Chunk, ChunkingConfig, chunk_document
from registry.config import documents_root
from registry.documents import commit_dir
from registry.errors import RegistryError
from registry.records import DocumentRef, sha256_bytes
from registry.samples import FilterConfig, FilterStats, Verdict, apply_filters

if TYPE_CHECKING:
    from builder.generators.batch import BatchFiles, BatchPending
    from builder.generators.judge import JudgeConfig
    from builder.generators.teacher import TeacherConfig


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    generator: str = "seed"
    since: str | None = None
    random_seed: int = 0
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    documents_dir: Path | None = None
    teacher: TeacherConfig | None = None  # endpoint and parameters of the `teacher` generator
    judge: JudgeConfig | None = None  # scores the teacher's samples before they are kept (None: no judge)
    batch: BatchFiles | None = None  # the teacher's and judge's requests through Batch API files, not live
    progress: Report = ignore  # told the teacher's requests done/total as they finish


@dataclass(frozen=True, slots=True)
class GenerateOutcome:
    run_id: str  # "" when the command stopped to have a batch file answered (`pending`)
    leaves: int
    stats: dict[str, Any]
    pending: BatchPending | None = None  # the requests written with --batch-out, to be answered before the run


def generate(taxonomy: Path, catalog: Path, options: GenerateOptions) -> GenerateOutcome:
    from builder.generators.batch import BatchPending

    if options.generator not in GENERATORS:
        raise RegistryError(f"unknown generator {options.generator!r}", hint=f"one of: {', '.join(GENERATORS)}")
    if options.batch is not None:
        options.batch.check()
    only = _changed_leaves(taxonomy, options.since) if options.since else None
    with open_catalog(catalog) as con:
        leaves = current_leaves(con, only)
        if not leaves and only is None:
            raise RegistryError("the catalog has no active contributions to generate from",
                                hint="run `taxreg index` first")
        generator = GENERATORS[options.generator]()
        teacher = options.teacher if options.generator == "teacher" else None
        judge = Judge(options.judge) if teacher is not None and options.judge is not None else None
        info = _info(generator, options, teacher, judge, taxonomy)
        run_id, started = new_run_id(), datetime.now(UTC)
        recorded = True  # a run row is written (succeeded or failed), unless the command stops for a batch file
        try:
            documents = load_documents(documents_root(taxonomy, options.documents_dir), leaves, options.chunking)
            given = GeneratorInput(leaves, documents, options.random_seed, teacher, con, run_id, options.progress,
                                   options.batch)
            verdicts, stats, judgements = _produce(generator, judge, given, options)
            chunker = f"{options.chunking.unit}:{options.chunking.max_size}"
            chunks = [(chunker, c) for d in documents.values() for c in d.chunks]
            write_run(con, run_id, info, started, chunks, verdicts, stats, judgements)
        except BatchPending as pending:  # not a failure: the run goes on once the batch file is answered
            recorded = False
            return GenerateOutcome("", len(leaves), _report(generator, judge), pending)
        except Exception as exc:
            record_failed_run(con, run_id, info, started, str(exc))
            raise
        finally:
            if recorded and _report(generator, judge):
                merge_run_stats(con, run_id, _report(generator, judge))
        return GenerateOutcome(run_id, len(leaves), stats.as_dict() | _report(generator, judge))


def _produce(generator: Generator, judge: Judge | None, given: GeneratorInput,
             options: GenerateOptions) -> tuple[list[Verdict], FilterStats, list[Judgement]]:
    """The generator's samples through the filters, then (the teacher's) through the judge."""
    verdicts, stats = apply_filters(generator.generate(given), options.filters)
    verdicts += _rejected(generator, stats)
    if judge is None:
        return verdicts, stats, []
    judged, judgements = judge.judge(verdicts, getattr(generator, "subjects", {}), stats, given.catalog, given.run_id,
                                     options.random_seed, options.batch)
    return judged, stats, judgements


def _info(generator: Generator, options: GenerateOptions, teacher: TeacherConfig | None, judge: Judge | None,
          taxonomy: Path) -> RunInfo:
    params = _params(options) | (teacher.params() if teacher else {}) | (judge.config.params() if judge else {})
    return RunInfo(generator.name, params, options.random_seed, generator.template_sha256,
                   teacher_model_ref=teacher.model if teacher else None,
                   taxonomy_commit=gitrepo.head(taxonomy) if gitrepo.is_repository(taxonomy) else None,
                   judge_model_ref=judge.config.model if judge else None,
                   rubric_sha256=judge.config.rubric_sha256 if judge else None)


def _changed_leaves(taxonomy: Path, since: str) -> list[str]:
    return [c.path.rsplit("/", 1)[0] for c in gitrepo.changes_since(taxonomy, since) if c.status != "removed"]


def _rejected(generator: Generator, stats: FilterStats) -> list[Verdict]:
    """What a generator could not turn into a sample (a teacher's unparseable answer): kept, as dropped."""
    rejected: list[tuple[Any, str]] = list(getattr(generator, "rejected", ()))
    stats.produced += len(rejected)
    if stats.dropped is not None:
        stats.dropped.update(reason for _, reason in rejected)
    return [Verdict(sample, False, reason) for sample, reason in rejected]


def _report(generator: Generator, judge: Judge | None = None) -> dict[str, Any]:
    """What a generator (the teacher's requests) and the judge counted beside the samples, under their names."""
    report = getattr(generator, "report", None)
    return ({generator.name: report.as_dict()} if report is not None else {}) | \
        ({"judge": judge.report.as_dict()} if judge is not None else {})


def _params(options: GenerateOptions) -> dict[str, Any]:
    return {"since": options.since, "chunk_unit": options.chunking.unit, "chunk_size": options.chunking.max_size,
            "max_words": options.filters.max_words, "min_answer_words": options.filters.min_answer_words}


def load_documents(root: Path, leaves: list[LeafInput], chunking: ChunkingConfig) -> dict[str, LoadedDocument]:
    """Every referenced markdown document, read from the cache, checked against its indexed hash, chunked."""
    wanted: dict[str, Path] = {}
    for row in (d for leaf in leaves for d in leaf.documents):
        if row.doc_sha256 not in wanted and row.path.lower().endswith(".md"):
            wanted[row.doc_sha256] = commit_dir(root, DocumentRef(row.repo_url, row.repo_commit, (), (), 0)) / row.path
    jobs = [(sha, path, chunking) for sha, path in wanted.items()]
    if len(jobs) < 200:
        return dict(_load(job) for job in jobs)
    # chunking parses markdown: spread it over the cores for large taxonomies
    with ProcessPoolExecutor(min(os.cpu_count() or 1, 4), mp_context=get_context("fork")) as pool:
        return dict(pool.map(_load, jobs, chunksize=max(8, len(jobs) // 16)))


def _load(job: tuple[str, Path, ChunkingConfig]) -> tuple[str, LoadedDocument]:
    sha, path, chunking = job
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror}",
                            hint="run `taxreg documents fetch`, then `taxreg index`") from None
    if sha256_bytes(data) != sha:
        raise RegistryError(f"{path} changed since it was indexed", hint="run `taxreg index` first")
    text = data.decode("utf-8")
    chunks: tuple[Chunk, ...] = tuple(chunk_document(text, sha, chunking))
    return sha, LoadedDocument.make(sha, text, chunks)
