"""export: the merged model as ONNX (fp32, int8), gated on parity with PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.progress import Step
from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult, files_digest


class ExportStage(BuildStage):
    name = "export"
    needs = ("base model", "train", "dataset")  # the dataset's splits give the parity and calibration prompts

    def wanted(self, options: BuildOptions) -> bool:
        return options.model

    def key(self, ctx: BuildContext) -> Any:
        return {}

    def outputs(self, ctx: BuildContext) -> list[Path]:
        return exported(ctx)

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.model.export import ExportOptions, export

        model = ctx.layout.model
        outcome = export(ExportOptions(model.base, model.adapter, model.root, ctx.layout.catalog,
                                       dataset=ctx.layout.dataset()),
                         progress=lambda message: ctx.progress(Step(note=message)))
        variants = outcome.report["variants"]
        parts = [f"{name} top-1 {float(variants[name]['top1_agreement']):.1%}" for name in ("fp32", "int8")
                 if name in variants]
        return StageResult("parity " + ", ".join(parts), {"run_id": outcome.run_id,
                                                          "peak_rss_mb": round(outcome.peak_rss_mb)},
                           digest=files_digest(exported(ctx), ctx.layout.root))


def exported(ctx: BuildContext) -> list[Path]:
    model = ctx.layout.model
    return [model.onnx, model.onnx_int8, model.parity]


STAGE = ExportStage()
