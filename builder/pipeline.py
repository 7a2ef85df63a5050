"""`taxreg build`: run the stages of `builder.stages.STAGES` in order.

Each stage is keyed by a hash of what it reads: its own `key`, the fingerprints of the stages it `needs` and the
catalog's id (a new catalog reruns every stage that writes to it). A stage whose key matches its last success,
and whose outputs are still there unchanged, is skipped. Keys are saved after every stage, so a killed build
continues at the stage it was in; every stage writes its outputs atomically, so a killed stage leaves the previous
ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from builder import peak_memory
from builder.layout import BuildLayout
from builder.lineage import LineageEmitter
from builder.progress import Step
from builder.stage import BuildContext, BuildOptions, Stage, StageResult, digest_of, hash_outputs
from builder.stages import STAGES
from registry import __version__, folders, gitrepo, source_date
from registry.catalog import builds
from registry.catalog.connection import open_catalog
from registry.config import ValidationConfig
from registry.errors import RegistryError


@dataclass(slots=True)
class StageReport:
    name: str
    status: str = "pending"  # pending | running | ran | skipped | failed
    seconds: float = 0.0
    detail: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None
    peak_rss_mb: float | None = None  # this stage's own peak resident memory (None where it cannot be told apart)
    started: float = 0.0  # time.monotonic() when it began running
    progress: Step | None = None  # the latest a running stage reported


Listener = Callable[[list[StageReport]], None]


@dataclass(slots=True)
class _Run:
    """One build's progress: the saved state of the last one, and the fingerprints of the stages done so far."""

    ctx: BuildContext
    state: dict[str, Any]
    catalog_id: str
    fingerprints: dict[str, str] = field(default_factory=dict)


def run_build(options: BuildOptions, config: ValidationConfig, listener: Listener,
              stages: Sequence[Stage] = STAGES) -> list[StageReport]:
    """Run every wanted stage in order; the reports are updated in place and `listener` sees each change."""
    chosen = [s for s in stages if s.wanted(options)]
    _preflight(options, [s.name for s in chosen])  # before the catalog is opened: bad options change nothing
    check_needs(stages)
    source_date.pin(gitrepo.last_commit_time(options.taxonomy))
    ctx = BuildContext(options, config)
    _sweep(ctx.layout)
    state = _load_state(ctx.layout)
    with open_catalog(ctx.layout.catalog) as con:
        builds.close_abandoned(con)
        for stage in chosen:
            stage.check(ctx, con, state.get(stage.name, {}).get("saved", {}))
        run = _Run(ctx, state, builds.catalog_id(con))
        ctx.build_id = builds.start_build(con, _taxonomy_commit(options), digest_of(_options_json(options)),
                                          source_date.from_environment())
    reports = [StageReport(s.name) for s in chosen]
    events = LineageEmitter(ctx, chosen)
    status = "failed"
    try:
        for stage, report in zip(chosen, reports, strict=True):
            report.status, report.started = "running", time.monotonic()
            ctx.progress = _reporter(report, reports, listener)
            listener(reports)
            started, own_peak = time.perf_counter(), peak_memory.reset()
            events.started(stage)
            try:
                _run_stage(run, stage, report)
            except BaseException as exc:
                report.status = "failed"
                events.finished(stage, exc)
                raise
            finally:
                report.seconds = time.perf_counter() - started
                report.peak_rss_mb = peak_memory.peak_mb() if own_peak else None
                listener(reports)
            unsent = events.finished(stage)
            report.warning = report.warning or unsent
        status = "succeeded"
    finally:
        with open_catalog(ctx.layout.catalog) as con:
            builds.finish_build(con, ctx.build_id, status, {r.name: {
                "status": r.status, "seconds": round(r.seconds, 3), **r.stats,
                **({"peak_rss_mb": round(r.peak_rss_mb)} if r.peak_rss_mb is not None else {})}
                for r in reports})
    return reports


def _reporter(report: StageReport, reports: list[StageReport], listener: Listener) -> Callable[[Step], None]:
    def progress(step: Step) -> None:
        report.progress = step
        listener(reports)

    return progress


def check_needs(stages: Sequence[Stage]) -> None:
    """Every stage needs only stages before it: the order is the dependency order."""
    seen: set[str] = set()
    for stage in stages:
        missing = [n for n in stage.needs if n not in seen]
        if missing:
            raise RegistryError(f"stage {stage.name!r} needs {', '.join(missing)}, which do not come before it",
                                hint="order builder.stages.STAGES so that every stage follows what it reads")
        seen.add(stage.name)


def stage_key(stage: Stage, ctx: BuildContext, fingerprints: dict[str, str], catalog_id: str) -> str | None:
    """The stage's own key with the fingerprints of what it needs folded in (a stage of this build that was not
    wanted is left out); None for a stage without a key."""
    own = stage.key(ctx)
    if own is None:
        return None
    needs = {name: fingerprints[name] for name in stage.needs if name in fingerprints}
    return digest_of({"stage": own, "needs": needs, "catalog": catalog_id, "builder": __version__})


def _run_stage(run: _Run, stage: Stage, report: StageReport) -> None:
    ctx, saved = run.ctx, run.state.get(stage.name, {})
    key = stage_key(stage, ctx, run.fingerprints, run.catalog_id)
    outputs = stage.outputs(ctx)
    if key is not None and stage.name not in ctx.options.force and saved.get("key") == key \
            and saved.get("outputs") == hash_outputs(outputs, ctx.layout.root):
        report.status, report.detail = "skipped", stage.skipped_detail(ctx)
        run.fingerprints[stage.name] = saved.get("digest") or key
        return
    result = stage.run(ctx)
    report.status = "skipped" if result.unchanged else "ran"
    report.detail, report.warning = result.detail, result.warning
    report.stats = {**result.stats, **({"warning": result.warning} if result.warning else {})}
    run.fingerprints[stage.name] = result.digest or key or digest_of(result.detail)
    if key is not None:
        run.state[stage.name] = _saved(run, stage, key, result)
        folders.write_json(ctx.layout.state, run.state)


def _saved(run: _Run, stage: Stage, key: str, result: StageResult) -> dict[str, Any]:
    return {"key": key, "outputs": hash_outputs(stage.outputs(run.ctx), run.ctx.layout.root),
            "digest": run.fingerprints[stage.name], "saved": dict(result.saved)}


def _options_json(options: BuildOptions) -> dict[str, Any]:
    model = options.model_settings
    return {"release": options.release, "seed": options.seed, "base_model": str(model.base) if model.base else None,
            "train": model.train.given(), "variants": list(model.variants), "device": model.device,
            "allow": sorted(options.allow), "license": options.license, "evaluation": options.evaluation.key(),
            "builder": __version__,
            **_generation(options)}


def _generation(options: BuildOptions) -> dict[str, Any]:
    """The teacher and judge a build asks, when it does (the seed generator's builds record what they always did)."""
    chosen = options.generation
    return {"generation": chosen.key()} if chosen is not None and chosen.teacher is not None else {}


def _preflight(options: BuildOptions, stage_names: list[str]) -> None:
    """Options that would fail a stage after minutes of work fail now, with nothing written."""
    from builder.release.cut import declared_license
    from registry.release.versions import check_version

    unknown = sorted(set(options.force) - set(stage_names))
    if unknown:
        raise RegistryError(f"--force {', '.join(unknown)}: no such stage", hint=f"stages: {', '.join(stage_names)}")
    if options.release is not None:
        check_version(options.release, "--release")
    if options.license is not None:
        declared_license(options.license)
    source_date.from_environment()
    if not options.taxonomy.is_dir():
        raise RegistryError(f"taxonomy root {options.taxonomy} is not a directory",
                            hint="pass the taxonomy folder (default: ./taxonomy)")
    judge = options.evaluation.judge
    if "evaluate" in stage_names and judge.enabled:
        from builder.evaluation.judge import JudgeConfig

        JudgeConfig.of(judge.url, judge.model, judge.api_key_env)  # an unset key variable fails before any stage
    folders.require_writable(options.build_dir, "--build-dir")


def _sweep(layout: BuildLayout) -> None:
    """Temporary folders of killed model stages: a later build may skip those stages, so it clears them itself."""
    from builder.model.export import remove_stale_work

    model = layout.model
    remove_stale_work(model.root)
    for output in (model.base, model.adapter):
        folders.remove_stale_temps(output)


def _taxonomy_commit(options: BuildOptions) -> str | None:
    return gitrepo.head(options.taxonomy) if gitrepo.is_repository(options.taxonomy) else None


def _load_state(layout: BuildLayout) -> dict[str, Any]:
    try:
        loaded = json.loads(layout.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
