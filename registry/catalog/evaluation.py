"""Evaluation runs in the catalog: what an evaluation set is drawn from (contributions, their seeds, the lineage of
test samples), and the record of a run (run, run_input, eval_run, eval_item, eval_score, eval_effect) written in
one transaction. The rule that calls a change a regression is SQL, in v_eval_regressions (catalog v008)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry.catalog.columns import insert
from registry.catalog.connection import transaction
from registry.catalog.generation import RunInfo, _insert_run


def withheld_sql(prefix: str = "") -> str:
    """The contributions whose evaluation is neither shown nor published: taken down, or built on a document that
    was. `prefix` qualifies the tables (e.g. `"catalog".main.`)."""
    return (f"SELECT subject FROM {prefix}takedown UNION "
            f"SELECT contribution_id FROM {prefix}contribution WHERE status = 'taken_down' UNION "
            f"SELECT cs.contribution_id FROM {prefix}contribution_source cs "
            f"JOIN {prefix}takedown t ON t.subject = cs.doc_sha256")


@dataclass(frozen=True, slots=True)
class ContributionRow:
    contribution_id: str
    kind: str
    domain: str | None
    version_id: str


@dataclass(frozen=True, slots=True)
class SeedQuestion:
    contribution_id: str
    seed_id: str
    ordinal: int
    context: str | None
    question: str
    answer: str


def active_contributions(con: Any) -> list[ContributionRow]:
    rows = con.execute("""
        SELECT contribution_id, kind, domain, current_version_id FROM contribution
        WHERE status = 'active' AND current_version_id IS NOT NULL ORDER BY contribution_id""").fetchall()
    return [ContributionRow(*r) for r in rows]


def current_seeds(con: Any) -> list[SeedQuestion]:
    """Every seed example of the current version of an active contribution, in file order."""
    rows = con.execute("""
        SELECT s.contribution_id, s.seed_id, s.ordinal, s.context, s.question, s.answer
        FROM seed_example s JOIN contribution c ON c.contribution_id = s.contribution_id
                                               AND c.current_version_id = s.version_id
        WHERE c.status = 'active' ORDER BY s.contribution_id, s.ordinal""").fetchall()
    return [SeedQuestion(*r) for r in rows]


def sample_origins(con: Any, sample_ids: Iterable[str]) -> dict[str, list[tuple[str, str | None]]]:
    """sample id -> [(contribution id, the seed it replays when it is one seed's sample)] for these samples."""
    wanted = sorted(set(sample_ids))
    if not wanted:
        return {}
    rows = con.execute("""
        SELECT sample_id, contribution_id,
               CASE WHEN count(DISTINCT parent_id) FILTER (parent_kind = 'seed' AND role = 'seed_example') = 1
                    THEN any_value(parent_id) FILTER (parent_kind = 'seed' AND role = 'seed_example') END
        FROM sample_lineage WHERE contribution_id IS NOT NULL AND sample_id IN (SELECT unnest(?::VARCHAR[]))
        GROUP BY ALL ORDER BY 1, 2""", [wanted]).fetchall()
    found: dict[str, list[tuple[str, str | None]]] = {}
    for sample_id, contribution_id, seed_id in rows:
        found.setdefault(sample_id, []).append((contribution_id, seed_id))
    return found


def recorded_dataset(con: Any, sha256: str) -> str | None:
    rows = con.execute("SELECT dataset_id FROM dataset WHERE dataset_id = ?", [sha256]).fetchall()
    return rows[0][0] if rows else None


def artifact_of(con: Any, artifact_id: str) -> str | None:
    """The kind of a recorded model artifact, or None when the catalog does not know it."""
    rows = con.execute("SELECT kind FROM model_artifact WHERE artifact_id = ?", [artifact_id]).fetchall()
    return rows[0][0] if rows else None


@dataclass(slots=True)
class EvalRecord:
    """What `record_eval_run` writes: the run row, eval_run's columns, and the rows of the three detail tables."""

    run_id: str
    info: RunInfo
    started: datetime
    stats: dict[str, Any]
    run: dict[str, Any]  # eval_run's columns but run_id
    inputs: list[tuple[str, str, str]]  # run_input rows: (kind, id, role)
    items: dict[str, list[Any]] = field(default_factory=dict)  # eval_item's columns but run_id
    scores: dict[str, list[Any]] = field(default_factory=dict)
    effects: dict[str, list[Any]] = field(default_factory=dict)


def record_eval_run(con: Any, record: EvalRecord, before_commit: Callable[[list[dict[str, Any]]], str]
                    ) -> list[dict[str, Any]]:
    """The run and its rows in one transaction. `before_commit` is given the run's regressions (v_eval_regressions)
    and runs inside it: it writes the results file into place and returns its sha256 (eval_run.results_sha256), so
    the catalog never names results that are not there. -> the regressions."""
    with transaction(con):
        _insert_run(con, record.run_id, record.info, record.started, "succeeded", record.stats)
        insert(con, "run_input", {"run_id": [record.run_id] * len(record.inputs),
                                  "input_kind": [k for k, _, _ in record.inputs],
                                  "input_id": [i for _, i, _ in record.inputs],
                                  "role": [r for _, _, r in record.inputs]})
        insert(con, "eval_run", {"run_id": [record.run_id], **{k: [v] for k, v in record.run.items()}})
        for table, columns in (("eval_item", record.items), ("eval_score", record.scores),
                               ("eval_effect", record.effects)):
            if columns:
                size = len(next(iter(columns.values())))
                insert(con, table, {"run_id": [record.run_id] * size, **columns}, keyed=False)
        found = regressions(con, record.run_id)
        con.execute("UPDATE eval_run SET results_sha256 = ? WHERE run_id = ?", [before_commit(found), record.run_id])
    return found


def regressions(con: Any, run_id: str) -> list[dict[str, Any]]:
    """The run's rows of v_eval_regressions (one per contribution or guard and metric), worst first."""
    cursor = con.execute("""
        SELECT DISTINCT contribution_id, scope, metric, items, base_mean, tuned_mean, delta, delta_low, delta_high,
               improvement, threshold
        FROM v_eval_regressions WHERE run_id = ? ORDER BY improvement, scope, contribution_id, metric""", [run_id])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

