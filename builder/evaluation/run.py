"""`taxreg eval` (and the build's evaluate stage): the base model and the fine-tuned model, both as the ONNX graphs
that ship, scored on every contribution's evaluation set and on the guard set; the effects and their intervals
recorded in the catalog and written to model/evaluation.json, which a release ships.

One run: check the inputs (nothing is written before the scores are in) -> the base graph (model/onnx-base,
builder/model/base_onnx.py) -> the evaluation set (evalset.py) -> scores of both models (scoring.py) -> the judge
(judge.py, optional) -> effects with bootstrap intervals (stats.py) -> one catalog transaction, in which
evaluation.json is written into place once v_eval_regressions has said what regressed.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from builder.evaluation import evalset, judge, stats
from builder.evaluation_settings import METRICS, EvalSettings
from builder.layout import ModelLayout
from registry import __version__, folders
from registry.catalog import evaluation
from registry.catalog.connection import open_catalog
from registry.catalog.generation import RunInfo, record_failed_run
from registry.catalog.models import file_sha256, hash_directory
from registry.errors import RegistryError
from registry.model_folder import ModelFolder

SCHEMA_VERSION = 1
KIND = "taxonomy-registry/evaluation"
GENERATOR = "taxreg.eval.onnxruntime"
Progress = Callable[[str], None]


class NoBase(RegistryError):
    """There is no base model to compare the fine-tuned one with."""


@dataclass(frozen=True, slots=True)
class EvalOptions:
    model: Path  # a model folder (build/model): onnx/ is the fine-tuned graph, base/ (or onnx-base/) the base
    dataset: Path
    catalog: Path
    settings: EvalSettings = field(default_factory=EvalSettings)
    base_onnx: Path | None = None  # an exported base folder (holds model.onnx) instead of the model folder's
    threads: int | None = 1  # onnxruntime intra-op threads (1: the same bytes on every run)
    judge: judge.JudgeConfig | None = None
    build_id: str | None = None
    base: Path | None = None  # the base model folder (Hugging Face); None: the model folder's base/

    def base_folder(self) -> Path:
        return self.base if self.base is not None else ModelLayout(self.model).base


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    run_id: str
    results: dict[str, Any]  # evaluation.json's content
    regressions: list[dict[str, Any]]
    seconds: float
    base_method: str  # how the base graph was had: reweighted | exported | reused | given


@dataclass(slots=True)
class _Scores:
    """item index -> metric -> (base, tuned); and the greedy answers."""

    values: dict[int, dict[str, tuple[float, float]]] = field(default_factory=lambda: defaultdict(dict))
    answers: dict[int, tuple[str, str]] = field(default_factory=dict)
    truncated: int = 0  # items cut to fit the context window


def evaluate(options: EvalOptions, progress: Progress | None = None) -> EvalOutcome:
    say = progress or (lambda message: None)
    started, clock = datetime.now(UTC), time.perf_counter()
    model = ModelLayout(options.model)
    _check(options, model)
    base_folder, method = _base(options, model, say)
    _same_tokenizer(base_folder, model.onnx)
    with open_catalog(options.catalog) as con:
        say("drawing the evaluation set")
        chosen = evalset.build_eval_set(con, options.dataset, options.settings.seed)
        dataset_id = evaluation.recorded_dataset(con, chosen.dataset_sha256) if chosen.dataset_sha256 else None
    scores = _score(options, chosen, base_folder, model.onnx, say)
    run_id = uuid.uuid4().hex
    judged: dict[str, Any] = {}
    if options.judge is not None:
        say(f"asking the judge {options.judge.model}")
        judged = _judge(options, chosen, scores, run_id, started)
    effects = _effects(chosen, scores, options.settings)
    record = _record(options, chosen, scores, effects, run_id, started, dataset_id,
                     {"base": hash_directory(base_folder).artifact_id, "tuned": hash_directory(model.onnx).artifact_id},
                     {"items": len(chosen.items), "empty": len(chosen.empty()), "left_out": chosen.left_out,
                      "truncated": scores.truncated,
                      "base_graph": method, **judged, "seconds": round(time.perf_counter() - clock, 2)})
    results = _results(options, chosen, effects, record.run)
    say("recording the run")
    with open_catalog(options.catalog) as con:
        found = evaluation.record_eval_run(con, record, lambda regressed: _write(model, results, regressed))
    return EvalOutcome(run_id, {**results, "regressions": _rounded(found)}, found, time.perf_counter() - clock,
                       method)


def _check(options: EvalOptions, model: ModelLayout) -> None:
    """Every input problem, before minutes of work."""
    if not (model.onnx / "model.onnx").is_file():
        raise RegistryError(f"no fine-tuned ONNX graph at {model.onnx}",
                            hint="run `taxreg export` first, or pass --model with a model folder that holds onnx/")
    tuned = ModelFolder.read(model.onnx, hint="export the model again with `taxreg export`")
    if "num_key_value_heads" not in tuned.config:
        raise RegistryError(f"{model.onnx / 'config.json'} is not an exported config (no num_key_value_heads)",
                            hint="export the model again with `taxreg export`")
    if options.base_onnx is not None and not (options.base_onnx / "model.onnx").is_file():
        raise NoBase(f"--base-onnx {options.base_onnx} holds no model.onnx",
                     hint="pass the folder `taxreg export --no-adapter --out DIR` wrote as DIR/onnx")
    if options.base_onnx is None and not options.base_folder().is_dir() and not (model.onnx_base /
                                                                               "model.onnx").is_file():
        raise NoBase(f"{options.model} has no base model to compare the fine-tuned one with: neither "
                     f"{options.base_folder()} "
                     f"nor {model.onnx_base} is there",
                     hint="pass --base-onnx DIR (the base exported with `taxreg export --no-adapter --out X`: X/onnx), "
                          "or a model folder that holds base/ (what `taxreg model init` or a copied base wrote)")
    if model.parity.is_file() and _parity_adapter(model) is None and options.base_onnx is None:
        raise NoBase(f"{model.onnx} was exported without an adapter ({model.parity} says so): it is the base model "
                     "itself, and an evaluation would compare it with itself",
                     hint="train an adapter and export it (`taxreg train`, `taxreg export`), then evaluate")
    if not options.catalog.is_file():
        raise RegistryError(f"no catalog at {options.catalog}",
                            hint="the evaluation set is drawn from the catalog: run `taxreg index` and `taxreg "
                                 "generate` first, or pass --catalog PATH")


def _parity_adapter(model: ModelLayout) -> str | None:
    import json

    try:
        report = json.loads(model.parity.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown"
    return report.get("adapter", "unknown") if isinstance(report, dict) else "unknown"


def _base(options: EvalOptions, model: ModelLayout, say: Progress) -> tuple[Path, str]:
    if options.base_onnx is not None:
        return options.base_onnx, "given"
    if not options.base_folder().is_dir():
        return model.onnx_base, "reused"
    from builder.model.base_onnx import base_graph

    say("the base model as ONNX")
    made = base_graph(model, options.catalog, options.dataset, options.base_folder())
    return made.folder, made.method


def _same_tokenizer(base: Path, tuned: Path) -> None:
    """Per-token figures compare only over one tokenizer."""
    files = [folder / "tokenizer.json" for folder in (base, tuned)]
    if all(f.is_file() for f in files) and file_sha256(files[0]) != file_sha256(files[1]):
        raise RegistryError(f"{files[0]} and {files[1]} differ: the base and the fine-tuned model do not share a "
                            "tokenizer, so their likelihoods cannot be compared",
                            hint="evaluate a fine-tune of this base (the adapter keeps the base's tokenizer)")


def _score(options: EvalOptions, chosen: evalset.EvalSet, base: Path, tuned: Path, say: Progress) -> _Scores:
    from builder.evaluation.scoring import Scorer, Tokenizer
    from builder.model.export import quiet_libraries

    settings = options.settings
    with quiet_libraries():  # the tokenizer warns of conversations longer than the context (the prompt is cut)
        tokens = Tokenizer(tuned)
        encoded = [tokens.encode(i.messages, list(i.choices) or [i.reference], i.correct or 0,
                                 settings.max_new_tokens) for i in chosen.items]
    scored = {}
    for side, folder in (("base", base), ("tuned", tuned)):
        say(f"scoring {len(encoded)} items on the {side} model")
        scored[side] = Scorer(folder, options.threads).score(encoded, settings.max_new_tokens, tokens.eos, tokens.pad)
    out = _Scores(truncated=sum(e.truncated for e in encoded))
    for k, item in enumerate(chosen.items):
        b, t = scored["base"][k], scored["tuned"][k]
        answers = tokens.decode(b.answer), tokens.decode(t.answer)
        out.answers[k] = answers
        ref = encoded[k].reference
        out.values[k]["nll"] = (-b.logprobs[ref] / b.tokens[ref], -t.logprobs[ref] / t.tokens[ref])
        if item.choices:
            out.values[k]["mc_acc"] = (_picked(b.logprobs, ref), _picked(t.logprobs, ref))
            sizes = [max(1, len(c.encode())) for c in item.choices]  # lm-evaluation-harness's acc_norm: per byte
            out.values[k]["mc_acc_norm"] = (_picked([p / n for p, n in zip(b.logprobs, sizes, strict=True)], ref),
                                            _picked([p / n for p, n in zip(t.logprobs, sizes, strict=True)], ref))
        text = [stats.text_scores(answer, item.reference) for answer in answers]
        for metric in ("f1", "rouge_l"):
            out.values[k][metric] = (text[0][metric], text[1][metric])
    return out


def _picked(logprobs: list[float], correct: int) -> float:
    best = max(range(len(logprobs)), key=lambda k: (logprobs[k], -k))  # ties go to the first, as argmax does
    return 1.0 if best == correct else 0.0


def _judge(options: EvalOptions, chosen: evalset.EvalSet, scores: _Scores, run_id: str,
           started: datetime) -> dict[str, Any]:
    config = options.judge
    assert config is not None
    plans = {(k, side): judge.plan(config, item, scores.answers[k][s], options.settings.seed)
             for k, item in enumerate(chosen.items) for s, side in enumerate(("base", "tuned"))}
    with open_catalog(options.catalog) as con:
        try:
            texts, report = judge.judge_all(con, config, run_id, list(plans.values()))
        except judge.JudgeUnavailable as exc:
            record_failed_run(con, run_id, _info(options), started, str(exc))
            raise
    unreadable = 0
    for k, item in enumerate(chosen.items):
        verdicts = [judge.verdict(item, texts[plans[(k, side)].request_sha256]) for side in ("base", "tuned")]
        if verdicts[0].score is None or verdicts[1].score is None:
            unreadable += 1
            continue
        scores.values[k]["judge"] = (verdicts[0].score, verdicts[1].score)
    return {"judge": {**report.as_dict(), "unreadable_verdicts": unreadable}}


def _effects(chosen: evalset.EvalSet, scores: _Scores, settings: EvalSettings) -> list[stats.Effect]:
    groups: dict[str | None, list[int]] = defaultdict(list)
    for k, item in enumerate(chosen.items):
        groups[item.contribution_id].append(k)
    found = []
    for contribution_id in sorted(groups, key=lambda c: (c is None, c or "")):
        found += _group(contribution_id, groups[contribution_id], chosen, scores, settings)
    return found


def _group(name: str | None, members: list[int], chosen: evalset.EvalSet, scores: _Scores,
           settings: EvalSettings) -> list[stats.Effect]:
    found = []
    for metric in METRICS:
        have = [k for k in members if metric in scores.values[k]]
        if not have:
            continue
        chance = sum(1 / len(chosen.items[k].choices) for k in have) / len(have) if metric.startswith("mc_") else None
        found.append(stats.effect(name, metric, [scores.values[k][metric][0] for k in have],
                                  [scores.values[k][metric][1] for k in have], settings.seed, settings.bootstrap,
                                  settings.confidence, chance))
    return found


def _info(options: EvalOptions) -> RunInfo:
    s = options.settings
    params = {**s.key(), "judge": {"url": s.judge.url, "model": s.judge.model} if options.judge else None,
              "threads": options.threads, "dataset": str(options.dataset), "model": str(options.model)}
    return RunInfo(generator=GENERATOR, params=params, random_seed=s.seed,
                   prompt_template_sha256=judge.TEMPLATES_SHA256 if options.judge else None,
                   teacher_model_ref=None, stage="evaluate", build_id=options.build_id)


def _record(options: EvalOptions, chosen: evalset.EvalSet, scores: _Scores, effects: list[stats.Effect],
            run_id: str, started: datetime, dataset_id: str | None, artifacts: dict[str, str],
            stats_: dict[str, Any]) -> evaluation.EvalRecord:
    s = options.settings
    items = chosen.items
    run = {"tuned_artifact_id": artifacts["tuned"], "base_artifact_id": artifacts["base"], "dataset_id": dataset_id,
           "eval_set_sha256": chosen.sha256, "items": len(items), "contributions": len(chosen.contributions),
           "empty_contributions": len(chosen.empty()),
           "metrics": [m for m in METRICS if any(m in v for v in scores.values.values())],
           "judge_model_ref": options.judge.model if options.judge else None,
           "judge_template_sha256": judge.TEMPLATES_SHA256 if options.judge else None, "random_seed": s.seed,
           "bootstrap_resamples": s.bootstrap, "confidence_level": s.confidence, "results_sha256": ""}
    inputs = [("model_artifact", artifacts["base"], "base"), ("model_artifact", artifacts["tuned"], "tuned"),
              *([("dataset", dataset_id, "eval")] if dataset_id else [])]
    record = evaluation.EvalRecord(run_id, _info(options), started, stats_, run, inputs)
    record.items = {
        "item_id": [i.item_id for i in items], "contribution_id": [i.contribution_id for i in items],
        "source": [i.source for i in items], "sample_id": [i.sample_id for i in items],
        "seed_id": [i.seed_id for i in items], "prompt": [i.question for i in items],
        "reference": [i.reference for i in items], "choices": [list(i.choices) or None for i in items],
        "correct_choice": [i.correct if i.choices else None for i in items],
        "base_answer": [scores.answers[k][0] for k in range(len(items))],
        "tuned_answer": [scores.answers[k][1] for k in range(len(items))]}
    rows = [(k, metric, pair) for k in range(len(items)) for metric, pair in sorted(scores.values[k].items())]
    record.scores = {"item_id": [items[k].item_id for k, _, _ in rows],
                     "contribution_id": [items[k].contribution_id for k, _, _ in rows],
                     "metric": [m for _, m, _ in rows], "base_value": [p[0] for _, _, p in rows],
                     "tuned_value": [p[1] for _, _, p in rows]}
    record.effects = {
        "contribution_id": [e.contribution_id for e in effects],
        "scope": ["guard" if e.contribution_id is None else "contribution" for e in effects],
        "metric": [e.metric for e in effects], "items": [e.items for e in effects],
        "base_mean": [e.base_mean for e in effects], "tuned_mean": [e.tuned_mean for e in effects],
        "delta": [e.delta for e in effects], "delta_low": [e.delta_low for e in effects],
        "delta_high": [e.delta_high for e in effects],
        "higher_is_better": [METRICS[e.metric].higher_is_better for e in effects],
        "threshold": [s.thresholds.of(e.metric) for e in effects], "chance": [e.chance for e in effects]}
    return record


def _results(options: EvalOptions, chosen: evalset.EvalSet, effects: list[stats.Effect],
             run: dict[str, Any]) -> dict[str, Any]:
    """evaluation.json without its regressions: no run id, time or path, so equal inputs write equal bytes."""
    s = options.settings
    kinds = {c.contribution_id: (c.kind, c.domain) for c in chosen.contributions}
    return {
        "schema_version": SCHEMA_VERSION, "kind": KIND, "builder_version": __version__,
        "eval_set_sha256": chosen.sha256, "items": len(chosen.items), "guard_set": evalset.GUARD_VERSION,
        "models": {"base": run["base_artifact_id"], "tuned": run["tuned_artifact_id"]},
        "metrics": {m: {"label": METRICS[m].label, "higher_is_better": METRICS[m].higher_is_better}
                    for m in run["metrics"]},
        "seed": s.seed, "bootstrap": {"resamples": s.bootstrap, "confidence": s.confidence, "method": "percentile"},
        "thresholds": s.thresholds.as_dict(), "max_new_tokens": s.max_new_tokens,
        "judge": {"model": run["judge_model_ref"], "templates_sha256": run["judge_template_sha256"]}
        if run["judge_model_ref"] else None,
        "left_out": dict(sorted(chosen.left_out.items())), "empty": chosen.empty(),
        "effects": [{"contribution_id": e.contribution_id, "scope": "guard" if e.contribution_id is None
                     else "contribution", "kind": kinds.get(e.contribution_id or "", ("guard", None))[0],
                     "domain": kinds.get(e.contribution_id or "", ("guard", None))[1], **_effect_json(e)}
                    for e in effects],
        "summary": _summary(chosen, effects, kinds),
    }


def _summary(chosen: evalset.EvalSet, effects: list[stats.Effect], kinds: dict[str, tuple[str, str | None]]
             ) -> list[dict[str, Any]]:
    """Per kind and domain (and the guard), item-weighted means of the contributions' means, per metric."""
    groups: dict[tuple[str, str | None], dict[str, list[stats.Effect]]] = defaultdict(lambda: defaultdict(list))
    for e in effects:
        kind, domain = kinds.get(e.contribution_id or "", ("guard", None))
        groups[(kind, domain)][e.metric].append(e)
    rows = []
    for (kind, domain), metrics in sorted(groups.items(), key=lambda g: (g[0][0] == "guard", g[0][0], g[0][1] or "")):
        for metric, found in metrics.items():
            n = sum(e.items for e in found)
            rows.append({"kind": kind, "domain": domain, "metric": metric, "items": n,
                         "contributions": sum(e.contribution_id is not None for e in found),
                         "base": round(sum(e.base_mean * e.items for e in found) / n, 6),
                         "tuned": round(sum(e.tuned_mean * e.items for e in found) / n, 6),
                         "chance": None if found[0].chance is None else
                         round(sum((e.chance or 0) * e.items for e in found) / n, 6)})
    return rows


def _effect_json(e: stats.Effect) -> dict[str, Any]:
    return {"metric": e.metric, "items": e.items, "base": _r(e.base_mean), "tuned": _r(e.tuned_mean),
            "delta": _r(e.delta), "interval": None if e.delta_low is None else [_r(e.delta_low), _r(e.delta_high)],
            "chance": _r(e.chance)}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _rounded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _r(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows]


def _write(model: ModelLayout, results: dict[str, Any], regressed: list[dict[str, Any]]) -> str:
    folders.write_json(model.evaluation, {**results, "regressions": _rounded(regressed)})
    return file_sha256(model.evaluation)
