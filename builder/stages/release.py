"""release: the gates, then releases/VERSION/ (only with --release). A rerun with the same version and options
skips the cut when what it ships is unchanged, and is refused when it changed: a version is never overwritten."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult, digest_of, hash_outputs
from builder.stages.export import exported
from registry.release.manifest import MANIFEST, SUMS
from registry.release.versions import taken


class ReleaseStage(BuildStage):
    name = "release"
    needs = ("dataset", "export", "evaluate")

    def wanted(self, options: BuildOptions) -> bool:
        return options.release is not None

    def check(self, ctx: BuildContext, con: Any, saved: Mapping[str, Any]) -> None:
        """Say so before hours of work: the version exists and was not cut by a build with these options."""
        from registry import gitrepo
        from registry.catalog import policy, releases

        version = _version(ctx)
        taxonomy = ctx.options.taxonomy
        dirty = sorted(gitrepo.dirty_paths(taxonomy)) if gitrepo.is_repository(taxonomy) else []
        if dirty and "taxonomy.dirty" not in ctx.options.allow:
            shown = ", ".join(dirty[:8]) + (f" and {len(dirty) - 8} more" if len(dirty) > 8 else "")
            raise policy.GateFailed(
                f"release {version}: {taxonomy} has uncommitted changes ({shown}); the release would name commit "
                f"{gitrepo.head(taxonomy)}, which does not hold them",
                hint="commit them first (so that checking out the commit reproduces the release), or pass --allow "
                     "taxonomy.dirty to cut from the tree as it is (recorded in the manifest)")
        if releases.release_exists(con, version) and saved.get("options") != release_options(ctx.options):
            raise taken(version, ctx.options.build_dir, ", and this one was not cut by a build with these options",
                        hint="pass a new --release version, or build without one (a rerun with the options that "
                             "cut it skips the release stage when its inputs are unchanged)")

    def key(self, ctx: BuildContext) -> Any:
        # What a cut ships and checks: every dataset and model file, takedowns, the policy and the cut's options.
        from registry.catalog import builds
        from registry.catalog.connection import open_catalog

        layout = ctx.layout
        shipped = [layout.dataset(), *([layout.model.adapter, *exported(ctx), layout.model.evaluation]
                                       if ctx.options.model else [])]
        with open_catalog(layout.catalog) as con:
            takedowns = builds.takedown_subjects(con)
        return {"files": sorted(hash_outputs(shipped, layout.root).values()), "takedowns": takedowns,
                "allowed": sorted(ctx.config.policy.allowed), "options": release_options(ctx.options)}

    def outputs(self, ctx: BuildContext) -> list[Path]:
        folder = ctx.layout.release(_version(ctx))
        return [folder / MANIFEST, folder / SUMS]

    def skipped_detail(self, ctx: BuildContext) -> str:
        return f"release {_version(ctx)} exists, cut from the same inputs: kept"

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.release.cut import CutOptions, cut_release, dirty_note
        from registry.catalog import releases
        from registry.catalog.connection import open_catalog
        from registry.catalog.policy import disclosure_warning, undeclared_warning

        version, options = _version(ctx), ctx.options
        with open_catalog(ctx.layout.catalog) as con:
            exists = releases.release_exists(con, version)
        if exists:  # `check` let it through: cut by an earlier build, whose inputs have changed since
            raise taken(version, options.build_dir, " and what it would ship has changed since it was cut (dataset, "
                        "model, takedowns or policy)", hint="pass a new --release version: the stages before it are "
                                                            "kept, so only the cut and the site run")
        outcome = cut_release(CutOptions(version, options.build_dir, license=options.license, allow=options.allow,
                                         sign_key=options.sign_key, with_model=options.model, build_id=ctx.build_id,
                                         policy=ctx.config.policy, disclosure=options.disclosure,
                                         config=_build_config(ctx),
                                         eval_thresholds=options.evaluation.thresholds.as_dict()))
        undeclared = undeclared_warning(outcome.manifest.policy)
        notes = [n for n in (undeclared, disclosure_warning(outcome.manifest.policy), dirty_note(outcome.manifest))
                 if n]
        detail = f"{outcome.folder} (manifest {outcome.manifest_sha256[:12]}), license {outcome.manifest.license}"
        return StageResult(detail + (" (undeclared)" if undeclared else ""),
                           {"manifest_sha256": outcome.manifest_sha256}, warning=". ".join(notes) or None,
                           saved={"options": release_options(options), "manifest_sha256": outcome.manifest_sha256})


def release_options(options: BuildOptions) -> str:
    """The options a release stage's cut depends on (besides the files it ships)."""
    return digest_of({"release": options.release, "license": options.license, "allow": sorted(options.allow),
                      "sign_key": str(options.sign_key.resolve()) if options.sign_key else None,
                      "model": options.model, "seed": options.seed,
                      "base_model": str(options.model_settings.base) if options.model_settings.base else None,
                      "train": options.model_settings.train.given(), "variants": list(options.model_settings.variants),
                      "disclosure": asdict(options.disclosure), "eval": options.evaluation.thresholds.as_dict()})


def _build_config(ctx: BuildContext) -> dict[str, Any]:
    """The manifest's build settings: the seed and, with the model, how it was trained and what was exported (the
    base model is named, with its digest and license, in the manifest's inputs)."""
    from builder.stages.export import built_variants
    from builder.stages.train import settings_of

    if not ctx.options.model:
        return {"seed": ctx.options.seed}
    return {"seed": ctx.options.seed, "train": settings_of(ctx), "export_variants": list(built_variants(ctx))}


def _version(ctx: BuildContext) -> str:
    assert ctx.options.release is not None  # wanted() only with --release
    return ctx.options.release


STAGE = ReleaseStage()
