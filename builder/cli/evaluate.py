"""`taxreg eval`: what each contribution did to the model, base against fine-tuned, on the exported ONNX graphs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from builder import console, layout, settings
from builder.cli.common import CatalogOpt, WaitOpt, app, state, writing
from builder.console import TableFormat

MODEL = layout.DEFAULT.model
DATASET = layout.DEFAULT.dataset()


@app.command("eval")
def eval_command(
    model: Annotated[Path, typer.Option("--model", help="Model folder: onnx/ is the fine-tuned graph, base/ (or "
                                                        "onnx-base/) the model it was tuned from.")] = MODEL.root,
    dataset: Annotated[Path, typer.Option("--dataset", help="Dataset folder the evaluation set is drawn from "
                                                            "(its test split; its train split is kept out).")]
    = DATASET,
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    base_model: Annotated[Path | None, typer.Option(
        "--base-model", help="The base model folder the adapter was trained on [default: taxreg.toml \\[model] base, "
                             "else MODEL/base].", show_default=False)] = None,
    base_onnx: Annotated[Path | None, typer.Option(
        "--base-onnx", help="The base as an exported folder (`taxreg export --no-adapter --out X`: X/onnx), when "
                            "the model folder has no base/.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the choice order and the bootstrap [taxreg.toml "
                                                  "\\[eval] seed, 0].")] = None,
    threads: Annotated[int, typer.Option(min=1, help="onnxruntime threads (1 gives the same bytes every run).")] = 1,
    judge_url: Annotated[str | None, typer.Option("--judge-url", help="An OpenAI-compatible endpoint that grades "
                                                                      "the answers [\\[eval] judge_url].")] = None,
    judge_model: Annotated[str | None, typer.Option("--judge-model", help="The judge's model name.")] = None,
    fmt: Annotated[TableFormat, typer.Option("--format", help="table, csv or json.")] = TableFormat.TABLE,
    wait: WaitOpt = 0.0,
) -> None:
    """Score the base and the fine-tuned model on every contribution's held-out questions and the guard set;
    record the effects with their intervals in the catalog and model/evaluation.json."""
    from builder.evaluation.judge import JudgeConfig
    from builder.evaluation.run import EvalOptions, evaluate

    with console.user_errors(state["debug"]):
        everything = settings.load()
        loaded = everything.evaluation
        chosen = replace(loaded, seed=loaded.seed if seed is None else seed)
        url, name = judge_url or chosen.judge.url, judge_model or chosen.judge.model
        judge = JudgeConfig.of(url, name, chosen.judge.api_key_env) if url or name else None
        base = base_model or everything.model.base
        with writing(catalog, model, wait=wait):
            outcome = evaluate(EvalOptions(model, dataset, catalog, chosen, base_onnx, threads, judge, base=base),
                               progress=lambda message: console.print_summary(f"eval: {message}", False))
    columns = ["subject", "metric", "items", "base", "tuned", "change", "interval"]
    console.print_rows(columns, [_row(e) for e in outcome.results["effects"]], fmt)
    for empty in outcome.results["empty"]:
        console.print_warning(f"{empty}: no question held out of training, nothing measured")
    for r in outcome.regressions:
        console.print_warning(f"regressed: {r['contribution_id'] or 'the guard set'} {r['metric']} "
                              f"{r['delta']:+.4g} [{r['delta_low']:+.4g}, {r['delta_high']:+.4g}], allowed "
                              f"{r['threshold']:g}")
    console.print_summary(f"evaluated {outcome.results['items']} items in {outcome.seconds:.1f} s (run "
                          f"{outcome.run_id[:12]}, base graph {outcome.base_method}): "
                          f"{len(outcome.regressions)} regression(s) -> {layout.ModelLayout(model).evaluation}",
                          False)


def _row(effect: dict[str, Any]) -> tuple[Any, ...]:
    interval = effect["interval"]
    return (effect["contribution_id"] or "(guard set)", effect["metric"], effect["items"], effect["base"],
            effect["tuned"], effect["delta"], f"[{interval[0]}, {interval[1]}]" if interval else "none (1 item)")
