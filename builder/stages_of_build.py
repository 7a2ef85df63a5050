"""The stages of `taxreg build`, in order, each with the hash of what it reads.

Keys include the catalog's own id, so a fresh catalog reruns everything that lives in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.pipeline import BuildContext, BuildOptions, Stage, digest_of, hash_outputs, release_options
from registry import __version__
from registry.catalog import builds
from registry.catalog.connection import open_catalog

DATASET = "default"


def stages_for(options: BuildOptions) -> list[Stage]:
    stages = [
        Stage("validate+index", key=lambda ctx: "", run=_index, always=True),
        Stage("generate", key=_generate_key, run=_generate),
        Stage("dataset", key=_dataset_key, run=_dataset, outputs=lambda ctx: [ctx.datasets / DATASET]),
    ]
    if options.model:
        stages += [
            Stage("base model", key=_base_key, run=_base, outputs=lambda ctx: [ctx.model / "base"]),
            Stage("train", key=_train_key, run=_train, outputs=lambda ctx: [ctx.model / "adapter"]),
            Stage("export", key=_export_key, run=_export, outputs=_export_outputs),
        ]
    if options.release:
        stages.append(Stage("release", key=_release_key, run=_release, outputs=_release_outputs,
                            skipped_detail=f"release {options.release} exists, cut from the same inputs: kept"))
    if options.site:
        stages.append(Stage("site", key=lambda ctx: "", run=_site, always=True))
    return stages


def _catalog_state(ctx: BuildContext) -> dict[str, Any]:
    con = open_catalog(ctx.catalog)
    try:
        return {"catalog": builds.catalog_id(con), "leaves": builds.active_leaves_digest(con),
                "takedowns": builds.takedown_subjects(con)}
    finally:
        con.close()


def _index(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    from registry.catalog.indexer import index

    outcome = index(ctx.options.taxonomy, ctx.catalog, ctx.config)
    detail = (f"{outcome.leaves_total} leaves: {outcome.status}, {outcome.leaves_indexed} indexed, "
              f"{outcome.leaves_retired} retired, {outcome.warnings} warning(s)")
    return detail, {"leaves": outcome.leaves_total, "indexed": outcome.leaves_indexed,
                    "warnings": outcome.warnings, "unchanged": outcome.status == "unchanged"}


def _generate_params(ctx: BuildContext) -> dict[str, Any]:
    return {"generator": "seed", "seed": ctx.options.seed, "builder": __version__}


def _generate_key(ctx: BuildContext) -> str:
    state = _catalog_state(ctx)
    return digest_of({"catalog": state["catalog"], "leaves": state["leaves"], "params": _generate_params(ctx)})


def _generate(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    from builder.stages.generate import GenerateOptions, generate

    outcome = generate(ctx.options.taxonomy, ctx.catalog,
                       GenerateOptions("seed", random_seed=ctx.options.seed, documents_dir=ctx.config.documents_dir))
    ctx.outputs["generate"] = {"run_id": outcome.run_id}
    stats = outcome.stats
    return (f"run {outcome.run_id[:12]}: {outcome.leaves} leaves, {stats['produced']} samples, {stats['kept']} kept",
            {"run_id": outcome.run_id, "produced": stats["produced"], "kept": stats["kept"]})


def _dataset_key(ctx: BuildContext) -> str:
    # Licenses too: a changed attribution license keeps the samples but changes the dataset's license
    from registry.catalog.datasets import license_inputs

    con = open_catalog(ctx.catalog)
    try:
        licenses = license_inputs(con)
    finally:
        con.close()
    return digest_of({"generate": _generate_key(ctx), "takedowns": _catalog_state(ctx)["takedowns"],
                      "licenses": licenses, "name": DATASET, "builder": __version__})


def _dataset(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    from builder.stages.dataset import DatasetOptions, build_dataset

    outcome = build_dataset(ctx.catalog, ctx.datasets, DatasetOptions(DATASET))
    ctx.outputs["dataset"] = {"folder": str(outcome.folder), "files": {f.path: f.sha256 for f in outcome.files}}
    rows = {f"{f.split}_rows": f.rows for f in outcome.files if f.format == "parquet"}
    return f"{Path(outcome.folder)}: " + ", ".join(f"{k.removesuffix('_rows')} {v}" for k, v in rows.items()), rows


def _base_key(ctx: BuildContext) -> str:
    # The demo tokenizer is trained on the taxonomy's text: a new leaf, or a takedown, is a new base model.
    state = _catalog_state(ctx)
    return digest_of({"leaves": state["leaves"], "takedowns": state["takedowns"], "seed": ctx.options.seed,
                      "builder": __version__})


def _base(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    from builder.model.demo import DemoSpec, init_demo_model

    outcome = init_demo_model(ctx.options.taxonomy, ctx.model / "base", DemoSpec(seed=ctx.options.seed), ctx.config,
                              force=True, catalog=ctx.catalog, build_id=ctx.build_id)
    return (f"demo Granite, {outcome.parameters / 1e6:.1f}M parameters, vocabulary {outcome.vocab_size}",
            {"parameters": outcome.parameters, "vocab_size": outcome.vocab_size})


def _train_options(ctx: BuildContext) -> Any:
    from builder.model.train import TrainOptions, default_lr

    return TrainOptions(ctx.model / "base", ctx.datasets / DATASET, ctx.model / "adapter", ctx.catalog,
                        max_steps=ctx.options.train_steps, max_length=512, seed=ctx.options.seed,
                        lr=default_lr(ctx.model / "base"),
                        eval_steps=max(10, ctx.options.train_steps // 3),
                        save_steps=max(10, ctx.options.train_steps // 3))


def _train_key(ctx: BuildContext) -> str:
    # the splits, not the dataset's card or croissant.json: their dates change nothing the model learns
    splits = sorted(p for p in (ctx.datasets / DATASET).glob("*.jsonl"))
    inputs = hash_outputs([ctx.model / "base", *splits])
    return digest_of({"inputs": sorted(inputs.values()), "steps": ctx.options.train_steps, "seed": ctx.options.seed,
                      "builder": __version__})


def _train(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    from builder.model.train import train

    outcome = train(_train_options(ctx))
    losses = outcome.results
    first, last = losses.get("train_loss_first"), losses.get("train_loss_last")
    detail = f"{outcome.global_step} steps" + (f" (resumed at {outcome.resumed_from})" if outcome.resumed_from else "")
    if isinstance(first, float) and isinstance(last, float):
        detail += f", loss {first:.2f} -> {last:.2f}"
    if isinstance(losses.get("eval_loss"), float):
        detail += f", eval loss {losses['eval_loss']:.2f}"
    return detail, {"run_id": outcome.run_id, "steps": outcome.global_step, "resumed_from": outcome.resumed_from,
                    "peak_rss_mb": round(outcome.peak_rss_mb)}


def _export_key(ctx: BuildContext) -> str:
    inputs = hash_outputs([ctx.model / "base", ctx.model / "adapter"])
    return digest_of({"inputs": sorted(inputs.values()), "builder": __version__})


def _export_outputs(ctx: BuildContext) -> list[Path]:
    return [ctx.model / "onnx", ctx.model / "onnx-int8", ctx.model / "parity.json"]


def _export(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    from builder.model.export import ExportOptions, export

    outcome = export(ExportOptions(ctx.model / "base", ctx.model / "adapter", ctx.model, ctx.catalog,
                                   dataset=ctx.datasets / DATASET))
    variants = outcome.report.get("variants", outcome.report)
    parts = []
    for name in ("fp32", "int8"):
        v = variants.get(name) if isinstance(variants, dict) else None
        if isinstance(v, dict) and "top1_agreement" in v:
            parts.append(f"{name} top-1 {float(v['top1_agreement']):.1%}")
    return "parity " + ", ".join(parts), {"run_id": outcome.run_id, "peak_rss_mb": round(outcome.peak_rss_mb)}


def _release_key(ctx: BuildContext) -> str:
    # What a cut ships and checks: the dataset and model files, takedowns, the policy and the cut's options.
    shipped = [ctx.datasets / DATASET, *([ctx.model / "adapter", *_export_outputs(ctx)] if ctx.options.model else [])]
    state = _catalog_state(ctx)
    return digest_of({"files": sorted(hash_outputs(shipped).values()), "catalog": state["catalog"],
                      "takedowns": state["takedowns"], "allowed": sorted(ctx.config.policy.allowed),
                      "options": release_options(ctx.options), "builder": __version__})


def _release_outputs(ctx: BuildContext) -> list[Path]:
    assert ctx.options.release is not None
    folder = ctx.build_dir / "releases" / ctx.options.release
    return [folder / "manifest.json", folder / "SHA256SUMS"]


def _release(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    from builder.release.cut import cut_release, undeclared_warning
    from registry.catalog import releases
    from registry.errors import RegistryError

    assert ctx.options.release is not None
    con = open_catalog(ctx.catalog)
    try:
        exists = releases.release_exists(con, ctx.options.release)
    finally:
        con.close()
    if exists:  # the pipeline let it through: cut by an earlier build, whose inputs have changed since
        raise RegistryError(f"release {ctx.options.release} already exists in {ctx.build_dir} and what it would "
                            "ship has changed since it was cut (dataset, model, takedowns or policy); a version "
                            "is never overwritten",
                            hint="pass a new --release version: the stages before it are kept, so only the cut "
                                 "and the site run")
    outcome = cut_release(cut_options(ctx))
    ctx.outputs["release"] = {"version": ctx.options.release, "options": release_options(ctx.options),
                              "manifest_sha256": outcome.manifest_sha256}
    warning = undeclared_warning(outcome.manifest)
    detail = f"{outcome.folder} (manifest {outcome.manifest_sha256[:12]}), license {outcome.manifest.license}"
    return detail + (" (undeclared)" if warning else ""), {
        "manifest_sha256": outcome.manifest_sha256, **({"warning": warning} if warning else {})}


def cut_options(ctx: BuildContext) -> Any:
    from builder.release.cut import CutOptions

    assert ctx.options.release is not None
    return CutOptions(ctx.options.release, ctx.build_dir, DATASET, license=ctx.options.license,
                      allow=ctx.options.allow, sign_key=ctx.options.sign_key, with_model=ctx.options.model,
                      build_id=ctx.build_id, policy=ctx.config.policy,
                      config={"seed": ctx.options.seed, "train_steps": ctx.options.train_steps})


def _site(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    from builder.site.build import SiteOptions, build_site

    outcome = build_site(SiteOptions(ctx.catalog, ctx.build_dir / "site", ctx.options.taxonomy,
                                     vendor=ctx.build_dir / "vendor"))
    return (f"{outcome.pages_rendered} page(s) rendered, {outcome.pages_reused} reused",
            {"pages_rendered": outcome.pages_rendered, "pages_reused": outcome.pages_reused})
