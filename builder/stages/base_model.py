"""base model: the demo Granite, with a tokenizer trained on the taxonomy's text."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult, files_digest


class BaseModelStage(BuildStage):
    name = "base model"
    needs = ("validate+index",)  # the demo tokenizer is trained on the taxonomy's text

    def wanted(self, options: BuildOptions) -> bool:
        return options.model

    def key(self, ctx: BuildContext) -> Any:
        from builder.model.demo import DemoSpec
        from registry.catalog import builds
        from registry.catalog.connection import open_catalog

        with open_catalog(ctx.layout.catalog) as con:  # a takedown is a new base model: its text leaves the tokenizer
            takedowns = builds.takedown_subjects(con)
        return {"takedowns": takedowns, "spec": asdict(DemoSpec(seed=ctx.options.seed))}

    def outputs(self, ctx: BuildContext) -> list[Path]:
        return [ctx.layout.model.base]

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.model.demo import DemoSpec, init_demo_model

        base = ctx.layout.model.base
        outcome = init_demo_model(ctx.options.taxonomy, base, DemoSpec(seed=ctx.options.seed), ctx.config,
                                  force=True, catalog=ctx.layout.catalog, build_id=ctx.build_id)
        return StageResult(f"demo Granite, {outcome.parameters / 1e6:.1f}M parameters, vocabulary {outcome.vocab_size}",
                           {"parameters": outcome.parameters, "vocab_size": outcome.vocab_size},
                           digest=files_digest([base], ctx.layout.root))


STAGE = BaseModelStage()
