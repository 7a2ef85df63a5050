"""generate: training samples from the catalog's seeds and document chunks (the seed generator)."""

from __future__ import annotations

from typing import Any

from builder.stage import BuildContext, BuildStage, Lineage, StageResult


class GenerateStage(BuildStage):
    name = "generate"
    needs = ("validate+index",)

    def lineage(self, ctx: BuildContext) -> Lineage:
        return Lineage(tables=("run", "source_chunk", "sample", "run_sample", "sample_lineage"))

    def key(self, ctx: BuildContext) -> Any:
        return {"generator": "seed", "seed": ctx.options.seed}

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.generators.run import GenerateOptions, generate

        options = GenerateOptions("seed", random_seed=ctx.options.seed, documents_dir=ctx.config.documents_dir,
                                  progress=ctx.progress)
        outcome = generate(ctx.options.taxonomy, ctx.layout.catalog, options)
        stats = outcome.stats
        return StageResult(f"run {outcome.run_id[:12]}: {outcome.leaves} leaves, {stats['produced']} samples, "
                           f"{stats['kept']} kept",
                           {"run_id": outcome.run_id, "produced": stats["produced"], "kept": stats["kept"]})


STAGE = GenerateStage()
