"""The stages of `taxreg build`, in order, each with the hash of what it reads.

Keys include the catalog's own id, so a fresh catalog reruns everything that lives in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.pipeline import BuildContext, BuildOptions, Stage, digest_of
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
    return digest_of({"generate": _generate_key(ctx), "takedowns": _catalog_state(ctx)["takedowns"],
                      "name": DATASET, "builder": __version__})


def _dataset(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    from builder.stages.dataset import DatasetOptions, build_dataset

    outcome = build_dataset(ctx.catalog, ctx.datasets, DatasetOptions(DATASET))
    ctx.outputs["dataset"] = {"folder": str(outcome.folder), "files": {f.path: f.sha256 for f in outcome.files}}
    rows = {f"{f.split}_rows": f.rows for f in outcome.files if f.format == "parquet"}
    return f"{Path(outcome.folder)}: " + ", ".join(f"{k.removesuffix('_rows')} {v}" for k, v in rows.items()), rows
