"""What each contribution did to the model, as the site shows it: read once from the catalog's evaluation tables
(v_contribution_impact, eval_item, v_eval_regressions), grouped per contribution and per release.

A contribution taken down (or built on a document that was) shows none of its scores: they leave the site and the
public copy with it. A contribution a release includes but with no question held out says so, never a zero.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from builder.evaluation_settings import METRICS
from registry.catalog.evaluation import withheld_sql

Row = dict[str, Any]
QUESTIONS = 3  # of a contribution's questions, shown answered by both models
HEADLINE = "nll"  # what a release ranks its contributions by, and the charts draw


@dataclass(slots=True)
class Impact:
    """One entry per shown evaluation (each release's model, and the latest build's when it is not released)."""

    shown: list[Row] = field(default_factory=list)  # {run_id, release_id, label, tuned_artifact_id}, oldest first
    effects: dict[tuple[str, str | None], list[Row]] = field(default_factory=dict)  # (run, contribution) -> rows
    questions: dict[tuple[str, str], list[Row]] = field(default_factory=dict)  # (run, contribution) -> items
    regressions: dict[str, list[Row]] = field(default_factory=dict)  # run_id -> v_eval_regressions rows
    items: dict[str, int] = field(default_factory=dict)  # run_id -> items scored
    withheld: set[str] = field(default_factory=set)  # contributions whose scores were taken down with them


def load(con: Any, rows: Any) -> Impact:
    """`rows(con, sql)` reads dict rows (builder.site's reader)."""
    impact = Impact(withheld={r["contribution_id"] for r in rows(con, f"SELECT subject AS contribution_id FROM "
                                                                      f"({withheld_sql()})")})
    impact.shown = _shown(con, rows)
    runs = sorted({s["run_id"] for s in impact.shown})
    if not runs:
        return impact
    hidden = f"(contribution_id IS NULL OR contribution_id NOT IN ({withheld_sql()}))"
    wanted = "run_id IN (SELECT unnest(?::VARCHAR[]))"
    for r in rows(con, f"""
            SELECT DISTINCT run_id, contribution_id, scope, kind, domain, metric, items, base_mean, tuned_mean,
                   delta, delta_low, delta_high, improvement, improvement_low, improvement_high, verdict, threshold,
                   chance
            FROM v_contribution_impact WHERE {wanted} AND {hidden} ORDER BY run_id, contribution_id, metric""",
                  [runs]):
        impact.effects.setdefault((r["run_id"], r["contribution_id"]), []).append(_effect(r))
    order = list(METRICS)
    for effects in impact.effects.values():
        effects.sort(key=lambda e: order.index(e["metric"]) if e["metric"] in order else len(order))
    for r in rows(con, f"""
            SELECT run_id, contribution_id, source, prompt, reference, base_answer, tuned_answer FROM eval_item
            WHERE {wanted} AND contribution_id IS NOT NULL AND {hidden}
            QUALIFY row_number() OVER (PARTITION BY run_id, contribution_id
                                       ORDER BY source = 'test' DESC, item_id) <= {QUESTIONS}
            ORDER BY run_id, contribution_id, source = 'test' DESC, item_id""", [runs]):
        impact.questions.setdefault((r.pop("run_id"), r.pop("contribution_id")), []).append(r)
    for r in rows(con, f"""
            SELECT DISTINCT run_id, contribution_id, metric, base_mean, tuned_mean, delta, delta_low, delta_high,
                   threshold
            FROM v_eval_regressions WHERE {wanted} AND {hidden} ORDER BY run_id, contribution_id, metric""", [runs]):
        impact.regressions.setdefault(r.pop("run_id"), []).append(r)
    impact.items = {r["run_id"]: r["items"] for r in rows(con, f"SELECT run_id, items FROM eval_run WHERE {wanted}",
                                                            [runs])}
    return impact


def _shown(con: Any, rows: Any) -> list[Row]:
    """Each release's model's newest evaluation, then the newest evaluation of all when its model is unreleased."""
    runs = rows(con, """
        SELECT e.run_id, e.tuned_artifact_id, r.started_at::VARCHAR AS started_at FROM eval_run e JOIN run r
        USING (run_id) WHERE r.status = 'succeeded' ORDER BY r.started_at, e.run_id""")
    released = rows(con, """
        SELECT DISTINCT ra.release_id, ra.ref_id, rl.released_at FROM release_artifact ra JOIN release rl
        USING (release_id) WHERE ra.kind = 'model_artifact' ORDER BY rl.released_at, ra.release_id""")
    newest = {r["tuned_artifact_id"]: r["run_id"] for r in runs}  # later rows win: the newest run of each model
    shown = [{"run_id": newest[r["ref_id"]], "release_id": r["release_id"], "label": f"release {r['release_id']}",
              "tuned_artifact_id": r["ref_id"]} for r in released if r["ref_id"] in newest]
    if runs and runs[-1]["tuned_artifact_id"] not in {r["ref_id"] for r in released}:
        shown.append({"run_id": runs[-1]["run_id"], "release_id": None, "label": "latest build (not released)",
                      "tuned_artifact_id": runs[-1]["tuned_artifact_id"]})
    return shown


def _effect(row: Row) -> Row:
    metric = METRICS.get(row["metric"])
    return {**row, "label": metric.label if metric else row["metric"],
            "perplexity": [math.exp(row["base_mean"]), math.exp(row["tuned_mean"])] if row["metric"] == "nll" else None}


def contribution_context(impact: Impact, contribution_id: str, releases: list[str]) -> dict[str, Any]:
    """The "What this contribution did" section: per shown evaluation that includes it, its effects (or why there
    are none) and three questions answered by both models; and the chart across them."""
    if contribution_id in impact.withheld:
        return {"withheld": True, "entries": [], "chart": ""}
    entries = []
    for shown in impact.shown:
        if shown["release_id"] is not None and shown["release_id"] not in releases:
            continue
        effects = impact.effects.get((shown["run_id"], contribution_id), [])
        if shown["release_id"] is None and not effects:
            continue  # an unreleased build that did not train on it says nothing about it
        entries.append({**shown, "effects": effects, "empty": not effects,
                        "questions": impact.questions.get((shown["run_id"], contribution_id), [])})
    points = [(e["label"], h["improvement"], h["improvement_low"], h["improvement_high"]) for e in entries
              for h in e["effects"] if h["metric"] == HEADLINE]
    from builder.site import charts

    chart = charts.intervals("Change of per-token NLL across releases, signed so that right is better (nats)", points) \
        if points else ""
    return {"withheld": False, "entries": entries, "chart": chart}


def release_context(impact: Impact, release_id: str) -> dict[str, Any]:
    """Every contribution of the release's model's evaluation ranked by its effect, the guard set, the regressions."""
    shown = next((s for s in impact.shown if s["release_id"] == release_id), None)
    if shown is None:
        return {"evaluated": False}
    run = shown["run_id"]
    per: dict[str | None, dict[str, Row]] = defaultdict(dict)
    for (run_id, contribution_id), effects in impact.effects.items():
        if run_id == run:
            per[contribution_id] = {e["metric"]: e for e in effects}
    ranked = sorted(((cid, metrics) for cid, metrics in per.items() if cid is not None),
                    key=lambda p: (-(p[1].get(HEADLINE, {}).get("improvement") or 0.0), p[0]))
    return {"evaluated": True, "items": impact.items.get(run, 0),
            "ranked": [{"contribution_id": cid, "kind": next(iter(m.values()))["kind"], "metrics": m}
                       for cid, m in ranked],
            "guard": list(per.get(None, {}).values()), "regressions": impact.regressions.get(run, []),
            "metrics": [m for m in METRICS if any(m in metrics for _, metrics in ranked)]}


def home_chart(impact: Impact) -> str:
    """How many contributions the newest shown evaluation improved, left unchanged within noise, made worse."""
    from builder.site import charts

    if not impact.shown:
        return charts.bars("What the latest model did to each contribution", [])
    latest = impact.shown[-1]
    verdicts: dict[str, int] = defaultdict(int)
    for (run_id, contribution_id), effects in impact.effects.items():
        if run_id == latest["run_id"] and contribution_id is not None:
            verdict = next((e["verdict"] for e in effects if e["metric"] == HEADLINE), "no interval")
            verdicts[verdict] += 1
    order = ("improved", "noise", "worse", "no interval")
    return charts.bars(f"Contributions by what the {latest['label']} model did to their per-token NLL",
                       [(v, verdicts[v]) for v in order if verdicts.get(v)])
