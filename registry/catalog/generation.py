"""Reading what generation starts from (current versions, seeds, documents) and writing a run's samples."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from registry import __version__
from registry.catalog.columns import insert
from registry.catalog.connection import transaction
from registry.chunking import Chunk
from registry.samples import FilterStats, Verdict


@dataclass(frozen=True, slots=True)
class SeedRow:
    seed_id: str
    ordinal: int
    context: str | None
    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class DocumentRow:
    doc_sha256: str
    repo_url: str
    repo_commit: str
    path: str


@dataclass(slots=True)
class LeafInput:
    contribution_id: str
    version_id: str
    kind: str
    task_description: str | None
    seeds: list[SeedRow] = field(default_factory=list)
    documents: list[DocumentRow] = field(default_factory=list)


def current_leaves(con: Any, only: Iterable[str] | None = None) -> list[LeafInput]:
    """Active contributions at their current version, with seeds (in file order) and documents."""
    leaves: dict[str, LeafInput] = {}
    for cid, vid, kind, task in con.execute("""
            SELECT c.contribution_id, cv.version_id, c.kind, cv.task_description
            FROM contribution c JOIN contribution_version cv
              ON cv.contribution_id = c.contribution_id AND cv.version_id = c.current_version_id
            WHERE c.status = 'active' ORDER BY c.contribution_id""").fetchall():
        leaves[cid] = LeafInput(cid, vid, kind, task)
    if only is not None:
        wanted = set(only)
        leaves = {k: v for k, v in leaves.items() if k in wanted}
    for cid, seed_id, ordinal, context, question, answer in con.execute("""
            SELECT s.contribution_id, s.seed_id, s.ordinal, s.context, s.question, s.answer
            FROM seed_example s JOIN contribution c
              ON c.contribution_id = s.contribution_id AND c.current_version_id = s.version_id
            ORDER BY s.contribution_id, s.ordinal""").fetchall():
        if cid in leaves:
            leaves[cid].seeds.append(SeedRow(seed_id, ordinal, context, question, answer))
    for cid, sha, repo, commit, path in con.execute("""
            SELECT DISTINCT cs.contribution_id, d.doc_sha256, d.repo_url, d.repo_commit, d.path
            FROM contribution_source cs JOIN contribution c
              ON c.contribution_id = cs.contribution_id AND c.current_version_id = cs.version_id
            JOIN source_document d ON d.doc_sha256 = cs.doc_sha256 AND d.path = cs.path
            ORDER BY 1, 5""").fetchall():
        if cid in leaves:
            leaves[cid].documents.append(DocumentRow(sha, repo, commit, path))
    return list(leaves.values())


@dataclass(frozen=True, slots=True)
class RunInfo:
    generator: str
    params: dict[str, Any]
    random_seed: int
    prompt_template_sha256: str | None
    teacher_model_ref: str | None = None
    taxonomy_commit: str | None = None
    stage: str = "generate"  # generate | import | train | export
    build_id: str | None = None
    judge_model_ref: str | None = None  # the model that scored the samples (None: no judge)
    rubric_sha256: str | None = None  # the hash of the judge's rubric templates


@dataclass(frozen=True, slots=True)
class Judgement:
    """A judge's verdict on one sample of a run: lineage, like the edges."""

    sample_id: str
    request_sha256: str  # the judge request, in the teacher_request journal
    judge_model_ref: str
    rubric: str  # which rubric template, e.g. knowledge_v1
    rubric_sha256: str  # the hash of the rubric templates' set
    scores: dict[str, int] | None  # criterion -> 1..5; None when the answer had not every score
    score: int | None  # the lowest
    threshold: int
    verdict: str  # passed | below_threshold | unparseable
    reason: str | None  # the judge's sentence (or its words, when no score could be read)


def new_run_id() -> str:
    return uuid.uuid4().hex


def write_run(con: Any, run_id: str, info: RunInfo, started: datetime, chunks: list[tuple[str, Chunk]],
              verdicts: list[Verdict], stats: FilterStats, judgements: Sequence[Judgement] = ()) -> None:
    """The run, its chunks, samples, per-run verdicts, lineage and judgements, in one transaction."""
    with transaction(con):
        _insert_run(con, run_id, info, started, "succeeded", stats.as_dict())
        insert(con, "source_chunk", {
            "chunk_sha256": [c.chunk_sha256 for _, c in chunks], "doc_sha256": [c.doc_sha256 for _, c in chunks],
            "chunker": [name for name, _ in chunks], "ordinal": [c.ordinal for _, c in chunks],
            "char_start": [c.char_start for _, c in chunks], "char_end": [c.char_end for _, c in chunks],
            "size": [c.size for _, c in chunks], "heading": [c.heading for _, c in chunks]})
        samples = [v.sample for v in verdicts]
        insert(con, "sample", {
            "sample_id": [s.sample_id for s in samples], "messages": [s.messages_json() for s in samples],
            "kind": [s.kind for s in samples], "n_words": [s.n_words for s in samples],
            "kept": [v.kept for v in verdicts], "drop_reason": [v.drop_reason for v in verdicts],
            "first_run_id": [run_id] * len(samples)})
        insert(con, "run_sample", {
            "run_id": [run_id] * len(verdicts), "sample_id": [s.sample_id for s in samples],
            "kept": [v.kept for v in verdicts], "drop_reason": [v.drop_reason for v in verdicts]})
        # the newest decision stands: a stricter judge or filter drops a sample an earlier run kept, and back
        con.execute("""UPDATE sample SET kept = rs.kept, drop_reason = rs.drop_reason FROM run_sample rs
                       WHERE rs.run_id = ? AND rs.sample_id = sample.sample_id
                         AND (sample.kept <> rs.kept OR sample.drop_reason IS DISTINCT FROM rs.drop_reason)""",
                    [run_id])
        edges = [(s.sample_id, e) for s in samples for e in s.lineage]
        insert(con, "sample_lineage", {
            "sample_id": [sid for sid, _ in edges], "parent_kind": [e.parent_kind for _, e in edges],
            "parent_id": [e.parent_id for _, e in edges], "role": [e.role for _, e in edges],
            "contribution_id": [e.contribution_id for _, e in edges], "version_id": [e.version_id for _, e in edges],
            "doc_sha256": [e.doc_sha256 for _, e in edges], "run_id": [run_id] * len(edges),
            "method": [e.method for _, e in edges]}, keyed=False)
        _insert_judgements(con, run_id, judgements)


def _insert_judgements(con: Any, run_id: str, judgements: Sequence[Judgement]) -> None:
    insert(con, "sample_judgement", {
        "run_id": [run_id] * len(judgements), "sample_id": [j.sample_id for j in judgements],
        "request_sha256": [j.request_sha256 for j in judgements],
        "judge_model_ref": [j.judge_model_ref for j in judgements], "rubric": [j.rubric for j in judgements],
        "rubric_sha256": [j.rubric_sha256 for j in judgements],
        "scores": [json.dumps(j.scores, sort_keys=True) if j.scores is not None else None for j in judgements],
        "score": [j.score for j in judgements], "threshold": [j.threshold for j in judgements],
        "verdict": [j.verdict for j in judgements], "reason": [j.reason for j in judgements]})


def record_failed_run(con: Any, run_id: str, info: RunInfo, started: datetime, error: str) -> None:
    _insert_run(con, run_id, info, started, "failed", {"error": error})


def _insert_run(con: Any, run_id: str, info: RunInfo, started: datetime, status: str,
                stats: dict[str, Any]) -> None:
    con.execute("INSERT INTO run (run_id, stage, generator, teacher_model_ref, params, random_seed, "
                "prompt_template_sha256, taxonomy_commit, builder_version, started_at, ended_at, status, stats, "
                "build_id, judge_model_ref, rubric_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        run_id, info.stage, info.generator, info.teacher_model_ref, json.dumps(info.params, sort_keys=True),
        info.random_seed, info.prompt_template_sha256, info.taxonomy_commit, __version__, started, datetime.now(UTC),
        status, json.dumps(stats, sort_keys=True), info.build_id, info.judge_model_ref, info.rubric_sha256])
