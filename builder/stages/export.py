"""export: the merged model as ONNX ([export] variants: fp32, int8, int4), gated on parity with PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.progress import Step
from builder.settings import INT8_FP32_SHARE
from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult, files_digest

INT4_SKIPPED = ("int4 skipped: onnxruntime-genai is not installed (pip install onnxruntime-genai in this CPU "
                "environment, then build again: the export reruns)")


class ExportStage(BuildStage):
    name = "export"
    needs = ("base model", "train", "dataset")  # the dataset's splits give the parity and calibration prompts

    def wanted(self, options: BuildOptions) -> bool:
        return options.model

    def key(self, ctx: BuildContext) -> Any:
        # int4 asked for without its builder, then installed: a new key, so the export runs again and makes it
        chosen = ctx.options.model_settings  # the default share adds nothing: keys of earlier builds still match
        share = {"int8_fp32_share": chosen.int8_fp32_share} if chosen.int8_fp32_share != INT8_FP32_SHARE else {}
        return {"variants": list(built_variants(ctx)), "device": chosen.device, **share}

    def outputs(self, ctx: BuildContext) -> list[Path]:
        return exported(ctx)

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.model.export import ExportOptions, export

        model, variants = ctx.layout.model, built_variants(ctx)
        outcome = export(ExportOptions(ctx.base_model, model.adapter, model.root, ctx.layout.catalog,
                                       dataset=ctx.layout.dataset(), int4="int4" in variants,
                                       int8="int8" in variants, device=ctx.options.model_settings.device,
                                       int8_fp32_share=ctx.options.model_settings.int8_fp32_share),
                         progress=lambda message: ctx.progress(Step(note=message)))
        figures = outcome.report["variants"]
        parts = [f"{name} top-1 {float(figures[name]['top1_agreement']):.1%}" for name in variants]
        skipped = "int4" in ctx.options.model_settings.variants and "int4" not in variants
        return StageResult("parity " + ", ".join(parts), {"run_id": outcome.run_id, "variants": list(variants),
                                                          "peak_rss_mb": round(outcome.peak_rss_mb)},
                           digest=files_digest(exported(ctx), ctx.layout.root),
                           warning=INT4_SKIPPED if skipped else None)


def built_variants(ctx: BuildContext) -> tuple[str, ...]:
    """The variants asked for that this environment can build: int4 needs onnxruntime-genai."""
    from builder.model.onnx_graph import genai_available

    asked = ctx.options.model_settings.variants
    return tuple(v for v in asked if v != "int4" or genai_available())


def exported(ctx: BuildContext) -> list[Path]:
    model = ctx.layout.model
    return [*(model.variant(v) for v in built_variants(ctx)), model.parity]


STAGE = ExportStage()
