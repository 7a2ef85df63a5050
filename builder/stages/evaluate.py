"""evaluate: the base and the fine-tuned model, as the ONNX graphs that ship, on every contribution's evaluation
set and the guard set (builder/evaluation/run.py); its results (model/evaluation.json) ship with a release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult, files_digest


class EvaluateStage(BuildStage):
    name = "evaluate"
    needs = ("export", "dataset")  # the graphs that ship, and the splits the evaluation set is drawn from

    def wanted(self, options: BuildOptions) -> bool:
        return options.model

    def key(self, ctx: BuildContext) -> Any:
        return {"settings": ctx.options.evaluation.key()}

    def outputs(self, ctx: BuildContext) -> list[Path]:
        return [ctx.layout.model.evaluation, ctx.layout.model.onnx_base]

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.evaluation.judge import JudgeConfig
        from builder.evaluation.run import EvalOptions, evaluate

        layout, settings = ctx.layout, ctx.options.evaluation
        judge = JudgeConfig.of(settings.judge.url, settings.judge.model, settings.judge.api_key_env) \
            if settings.judge.enabled else None
        outcome = evaluate(EvalOptions(layout.model.root, layout.dataset(), layout.catalog, settings, judge=judge,
                                       build_id=ctx.build_id, base=ctx.base_model))
        results = outcome.results
        regressed = sorted({r["contribution_id"] or "the guard set" for r in outcome.regressions})
        detail = (f"{results['items']} items, {len(results['empty'])} contribution(s) with none held out, "
                  + (f"regressed: {', '.join(regressed)}" if regressed else "no regression"))
        return StageResult(detail, {"run_id": outcome.run_id, "items": results["items"],
                                    "regressions": len(outcome.regressions), "base_graph": outcome.base_method},
                           digest=files_digest([layout.model.evaluation], layout.root))


STAGE = EvaluateStage()
