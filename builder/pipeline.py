"""`taxreg build`: validate -> index -> generate -> dataset -> base -> train -> export -> release -> site.

Each stage is keyed by a hash of its inputs. A stage whose key matches its last success, and whose outputs
are still there unchanged, is skipped. Keys are saved after every stage, so a killed build continues at the
stage it was in; every stage writes its outputs atomically, so a killed stage leaves the previous ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry import __version__, gitrepo
from registry.catalog import builds, releases
from registry.catalog.connection import open_catalog
from registry.errors import RegistryError

STATE_FILE = ".taxreg/stages.json"


@dataclass(frozen=True, slots=True)
class BuildOptions:
    taxonomy: Path = Path("taxonomy")
    build_dir: Path = Path("build")
    release: str | None = None
    seed: int = 0
    train_steps: int = 60
    train_epochs: float = 1.0
    allow: tuple[str, ...] = ()
    license: str | None = None  # the release license (SPDX); None: the union of the sources, with a warning
    sign_key: Path | None = None
    force: tuple[str, ...] = ()  # stages to run even when their inputs did not change
    model: bool = True  # base, train and export (off: a data-only build)
    site: bool = True


@dataclass(slots=True)
class StageReport:
    name: str
    status: str = "pending"  # pending | running | ran | skipped | failed
    seconds: float = 0.0
    detail: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BuildContext:
    options: BuildOptions
    config: Any  # registry.config.ValidationConfig
    build_id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)  # what earlier stages produced, for later ones

    @property
    def build_dir(self) -> Path:
        return self.options.build_dir

    @property
    def catalog(self) -> Path:
        return self.options.build_dir / "catalog.duckdb"

    @property
    def datasets(self) -> Path:
        return self.options.build_dir / "datasets"

    @property
    def model(self) -> Path:
        return self.options.build_dir / "model"


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    key: Callable[[BuildContext], str]  # a hash of everything the stage reads
    run: Callable[[BuildContext], tuple[str, dict[str, Any]]]  # (one-line detail, stats)
    outputs: Callable[[BuildContext], list[Path]] = lambda ctx: []  # files whose hashes must still match to skip
    always: bool = False  # no key: run every time (the stage is incremental by itself)
    skipped_detail: str = ""  # what a skip means, when "inputs unchanged" says too little


Listener = Callable[[list[StageReport]], None]


def run_build(options: BuildOptions, config: Any, listener: Listener) -> list[StageReport]:
    """Run every stage in order; the reports are updated in place and `listener` sees each change."""
    from builder import stages_of_build

    ctx = BuildContext(options, config)
    stages = stages_of_build.stages_for(options)
    _preflight(options, [s.name for s in stages])  # before the catalog is opened: bad options change nothing
    _pin_source_date(options.taxonomy)
    _sweep(ctx)
    reports = [StageReport(s.name) for s in stages]
    state = _load_state(options.build_dir)
    con = open_catalog(ctx.catalog)
    try:
        builds.close_abandoned(con)
        if options.release and releases.release_exists(con, options.release) \
                and not _cut_by_this_build(state, options):  # say so before hours of work
            raise RegistryError(f"release {options.release} already exists in {options.build_dir}; a version is "
                                "never overwritten, and this one was not cut by a build with these options",
                                hint="pass a new --release version, or build without one (a rerun with the "
                                     "options that cut it skips the release stage when its inputs are unchanged)")
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        ctx.build_id = builds.start_build(con, _taxonomy_commit(options.taxonomy), _digest(_options_json(options)),
                                          int(epoch) if epoch and epoch.isdigit() else None)
    finally:
        con.close()
    status = "failed"
    try:
        for stage, report in zip(stages, reports, strict=True):
            report.status = "running"
            listener(reports)
            started = time.perf_counter()
            try:
                _run_stage(ctx, stage, report, state)
            except BaseException:
                report.status = "failed"
                raise
            finally:
                report.seconds = time.perf_counter() - started
                listener(reports)
        status = "succeeded"
    finally:
        con = open_catalog(ctx.catalog)
        try:
            builds.finish_build(con, ctx.build_id, status, {r.name: {"status": r.status, "seconds": round(r.seconds, 3),
                                                                     **r.stats} for r in reports})
        finally:
            con.close()
    return reports


def release_options(options: BuildOptions) -> str:
    """The options a release stage's cut depends on (besides the files it ships)."""
    return digest_of({"release": options.release, "license": options.license, "allow": sorted(options.allow),
                      "sign_key": str(options.sign_key) if options.sign_key else None, "model": options.model,
                      "seed": options.seed, "train_steps": options.train_steps})


def _cut_by_this_build(state: dict[str, Any], options: BuildOptions) -> bool:
    """The existing release was cut by an earlier build's release stage with the same options: a rerun may go
    on (the stage is skipped if what it ships is unchanged, and refused there otherwise)."""
    saved = state.get("release", {}).get("result", {})
    return isinstance(saved, dict) and saved.get("options") == release_options(options)


def _run_stage(ctx: BuildContext, stage: Stage, report: StageReport, state: dict[str, Any]) -> None:
    saved = state.get(stage.name, {})
    key = "" if stage.always else stage.key(ctx)
    if not stage.always and stage.name not in ctx.options.force and saved.get("key") == key \
            and saved.get("outputs") == hash_outputs(stage.outputs(ctx)):
        report.status, report.detail = "skipped", saved.get("skipped_detail", "inputs unchanged")
        ctx.outputs[stage.name] = saved.get("result", {})
        return
    report.detail, report.stats = stage.run(ctx)
    report.status = "skipped" if report.stats.pop("unchanged", False) else "ran"  # incremental by itself
    if not stage.always:
        state[stage.name] = {"key": key, "outputs": hash_outputs(stage.outputs(ctx)),
                             "result": ctx.outputs.get(stage.name, {}),
                             **({"skipped_detail": stage.skipped_detail} if stage.skipped_detail else {})}
        _save_state(ctx.build_dir, state)


def digest_of(value: Any) -> str:
    """sha256 of canonical JSON: the key of a stage's inputs."""
    return _digest(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _options_json(options: BuildOptions) -> str:
    return json.dumps({"release": options.release, "seed": options.seed, "train_steps": options.train_steps,
                       "train_epochs": options.train_epochs, "allow": sorted(options.allow),
                       "license": options.license, "builder": __version__}, sort_keys=True)


def hash_outputs(paths: list[Path]) -> dict[str, str]:
    """sha256 of every file under the given paths (missing paths hash to '')."""
    hashes: dict[str, str] = {}
    for base in paths:
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in files:
            try:
                with path.open("rb") as f:
                    hashes[path.as_posix()] = hashlib.file_digest(f, "sha256").hexdigest()
            except OSError:
                hashes[path.as_posix()] = ""
    return hashes


def _preflight(options: BuildOptions, stage_names: list[str]) -> None:
    """Options that would fail a stage after minutes of work fail now, with nothing written."""
    from builder import folders
    from builder.release.cut import check_version, declared_license

    unknown = sorted(set(options.force) - set(stage_names))
    if unknown:
        raise RegistryError(f"--force {', '.join(unknown)}: no such stage", hint=f"stages: {', '.join(stage_names)}")
    if options.release is not None:
        check_version(options.release, "--release")
    if options.license is not None:
        declared_license(options.license)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and not epoch.isdigit():
        raise RegistryError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds since 1970",
                            hint="unset it (the taxonomy's last commit time is used), or set e.g. "
                                 "SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)")
    if not options.taxonomy.is_dir():
        raise RegistryError(f"taxonomy root {options.taxonomy} is not a directory",
                            hint="pass the taxonomy folder (default: ./taxonomy)")
    folders.require_writable(options.build_dir, "--build-dir")


def _sweep(ctx: BuildContext) -> None:
    """Temporary folders of killed model stages: a later build may skip those stages, so it clears them itself."""
    from builder import folders
    from builder.model.export import remove_stale_work

    remove_stale_work(ctx.model)
    for output in ("base", "adapter"):
        folders.remove_stale_temps(ctx.model / output)


def _pin_source_date(root: Path) -> None:
    """Every timestamp a build writes comes from SOURCE_DATE_EPOCH; unset, the taxonomy's last commit time."""
    if "SOURCE_DATE_EPOCH" not in os.environ and (when := gitrepo.last_commit_time(root)) is not None:
        os.environ["SOURCE_DATE_EPOCH"] = str(when)


def _taxonomy_commit(root: Path) -> str | None:
    return gitrepo.head(root) if gitrepo.is_repository(root) else None


def _load_state(build_dir: Path) -> dict[str, Any]:
    try:
        loaded = json.loads((build_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _save_state(build_dir: Path, state: dict[str, Any]) -> None:
    path = build_dir / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True, indent=1), encoding="utf-8")
    os.replace(tmp, path)
