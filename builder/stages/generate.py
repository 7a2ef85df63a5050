"""generate: training samples from the catalog's seeds and document chunks (the seed generator, or the teacher
and its judge as [generate] configures them)."""

from __future__ import annotations

from typing import Any

from builder.stage import BuildContext, BuildStage, Lineage, StageResult


class GenerateStage(BuildStage):
    name = "generate"
    needs = ("validate+index",)

    def lineage(self, ctx: BuildContext) -> Lineage:
        return Lineage(tables=("run", "source_chunk", "sample", "run_sample", "sample_lineage"))

    def key(self, ctx: BuildContext) -> Any:
        generation = ctx.options.generation
        if generation is None or generation.teacher is None:
            return {"generator": "seed", "seed": ctx.options.seed}
        return generation.key() | {"seed": ctx.options.seed}  # endpoints, models, parameters, template hashes

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.generators.configure import SEED
        from builder.generators.run import GenerateOptions, generate

        chosen = ctx.options.generation or SEED
        options = GenerateOptions(chosen.generator, random_seed=ctx.options.seed,
                                  documents_dir=ctx.config.documents_dir, teacher=chosen.teacher, judge=chosen.judge,
                                  progress=ctx.progress)
        outcome = generate(ctx.options.taxonomy, ctx.layout.catalog, options)
        stats = outcome.stats
        dropped = ", ".join(f"{reason} {n}" for reason, n in stats["dropped"].items())
        return StageResult(f"run {outcome.run_id[:12]}: {outcome.leaves} leaves, {stats['produced']} samples, "
                           f"{stats['kept']} kept" + (f" (dropped: {dropped})" if dropped else ""),
                           {"run_id": outcome.run_id, "produced": stats["produced"], "kept": stats["kept"],
                            "dropped": stats["dropped"]})


STAGE = GenerateStage()
