"""`taxreg export`: the merged model as one ONNX graph with a KV cache (fp32, int8), gated on parity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from builder import console, layout, settings
from builder.cli.common import CatalogOpt, WaitOpt, app, state, writing
from builder.settings import INT8_FP32_SHARE

MODEL = layout.DEFAULT.model
DATASET = layout.DEFAULT.dataset()


@app.command("export")
def export_command(
    base_model: Annotated[Path, typer.Option("--base-model", help="Local Hugging Face causal-LM folder.")]
    = MODEL.base,
    adapter: Annotated[Path, typer.Option("--adapter", help="LoRA adapter folder to merge.")] = MODEL.adapter,
    no_adapter: Annotated[bool, typer.Option("--no-adapter", help="Export the base model as it is.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Writes onnx/, onnx-int8/ and parity.json here.")] = MODEL.root,
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    no_catalog: Annotated[bool, typer.Option("--no-catalog", help="Do not record the run.")] = False,
    dataset: Annotated[Path | None, typer.Option(
        "--dataset", help=f"Dataset folder whose test split gives the parity prompts [default: {DATASET}; fixed "
                          "prompts when it has none].", show_default=False)] = None,
    int4: Annotated[bool, typer.Option("--int4", help="Also build int4 with onnxruntime-genai (when installed).")]
    = False,
    max_diff: Annotated[float, typer.Option("--max-diff", min=0.0, help="fp32 gate: largest |logit difference|.")]
    = 1e-4,
    prompts: Annotated[int, typer.Option("--prompts", min=1, max=64, help="Evaluation prompts in the batch.")] = 8,
    greedy_tokens: Annotated[int, typer.Option("--greedy-tokens", min=2, max=256,
                                               help="Greedy tokens compared per prompt.")] = 32,
    device: Annotated[str, typer.Option(
        "--device", help="Where the parity gate runs the graphs: cpu, or cuda (onnxruntime-gpu's CUDA provider, the "
                         "gpu extra).")] = "cpu",
    int8_fp32_share: Annotated[float, typer.Option(
        "--int8-fp32-share", min=0.0, max=1.0,
        help="When all-int8 misses 95% top-1 agreement, the matmuls that cost the most (at most 8) may stay fp32, "
             "up to this share of the graph's matmul weights (0: all int8).")] = INT8_FP32_SHARE,
    wait: WaitOpt = 0.0,
) -> None:
    """Merge the adapter, export ONNX with a KV cache (fp32 + int8), and refuse it unless fp32 matches PyTorch."""
    from builder.model.export import ExportOptions, ParityFailed, export
    from builder.model.parity import Thresholds

    failure: ParityFailed | None = None
    with console.user_errors(state["debug"]):
        options = ExportOptions(base_model, None if no_adapter else adapter, out, None if no_catalog else catalog,
                                dataset or DATASET, int4,
                                Thresholds(max_abs_diff=max_diff, greedy_tokens=greedy_tokens), prompts,
                                int8_fp32_share, require_dataset=dataset is not None,
                                device=settings.export_device(device))
        try:
            with writing(options.catalog, out, wait=wait):
                outcome = export(options, progress=lambda message: console.print_summary(f"export: {message}", False))
        except ParityFailed as exc:
            failure = exc
    if failure is not None:
        console.print_summary(f"error: {failure}", True)
        console.print_summary(f"hint: {failure.hint}", True)
        raise typer.Exit(console.EXIT_FINDINGS)
    for variant, figures in outcome.report["variants"].items():
        verdict = "passed" if figures["passed"] else ("FAILED" if figures["gate"] else "below target (recorded)")
        console.print_line(
            f"{variant}: max |logit diff| {figures['max_abs_diff']:.3g}, top-1 agreement "
            f"{figures['top1_agreement']:.1%}, greedy identical {figures['greedy_identical_prompts']}/"
            f"{figures['n_prompts']} prompts x {figures['n_tokens']} tokens: {verdict}"
            + (f"; kept in fp32: {', '.join(figures['fp32_matmuls'])}" if figures.get("fp32_matmuls") else ""))
    paths = ", ".join(str(p) for p in outcome.written.values())
    console.print_summary(f"exported in {outcome.seconds:.1f} s (peak RSS {outcome.peak_rss_mb:.0f} MB): {paths}",
                          False)
