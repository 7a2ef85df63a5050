"""train: LoRA on the dataset's train split, the test split for the eval loss."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.progress import Report, Step
from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult, files_digest


class TrainStage(BuildStage):
    name = "train"
    needs = ("dataset", "base model")

    def wanted(self, options: BuildOptions) -> bool:
        return options.model

    def key(self, ctx: BuildContext) -> Any:
        return settings_of(ctx)

    def outputs(self, ctx: BuildContext) -> list[Path]:
        return [ctx.layout.model.adapter]

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.model.train import train

        outcome = train(_options(ctx), progress=steps(ctx.progress))
        losses = outcome.results
        first, last = losses.get("train_loss_first"), losses.get("train_loss_last")
        detail = f"{outcome.global_step} steps" + (f" (resumed at {outcome.resumed_from})" if outcome.resumed_from
                                                   else "")
        if isinstance(first, float) and isinstance(last, float):
            detail += f", loss {first:.2f} -> {last:.2f}"
        if isinstance(losses.get("eval_loss"), float):
            detail += f", eval loss {losses['eval_loss']:.2f}"
        return StageResult(detail, {"run_id": outcome.run_id, "steps": outcome.global_step,
                                    "resumed_from": outcome.resumed_from, "peak_rss_mb": round(outcome.peak_rss_mb)},
                           digest=files_digest([ctx.layout.model.adapter], ctx.layout.root))


def steps(report: Report) -> Callable[[Any], None]:
    """The Trainer's events as progress: the step, the total and the last logged loss."""
    loss = ""

    def on_event(event: Any) -> None:
        nonlocal loss
        if "loss" in event.logs:
            loss = f"loss {event.logs['loss']:.3f}"
        if "eval_loss" in event.logs:
            loss = f"eval loss {event.logs['eval_loss']:.3f}"
        report(Step(event.step, event.total, loss, unit="step"))

    return on_event


DEMO_STEPS = 60  # neither steps nor epochs given: the embedded default build's minute of training
DEFAULTS = {"rank": 16, "alpha": 32, "targets": ("all-linear",), "batch_size": 8, "max_length": 512}


def settings_of(ctx: BuildContext) -> dict[str, Any]:
    """[train] and the build's options over the build's defaults, as the train stage runs them: its key, and what
    the release's manifest says it was trained with."""
    from builder.model.train_options import default_lr

    given = ctx.options.model_settings.train.given()
    if "steps" not in given and "epochs" not in given:
        given["steps"] = DEMO_STEPS
    resolved = {**DEFAULTS, "steps": None, "epochs": None, "lr": default_lr(ctx.base_model), **given,
                "seed": ctx.options.seed}
    return {**resolved, "targets": list(resolved["targets"])}


def _options(ctx: BuildContext) -> Any:
    from builder.model.train import TrainOptions

    model, values = ctx.layout.model, settings_of(ctx)
    max_steps = values["steps"]
    every = max(10, max_steps // 3) if max_steps else 50
    return TrainOptions(ctx.base_model, ctx.layout.dataset(), model.adapter, ctx.layout.catalog,
                        rank=values["rank"], alpha=values["alpha"], targets=tuple(values["targets"]),
                        epochs=values["epochs"] or 1.0, max_steps=max_steps or -1, lr=values["lr"],
                        batch_size=values["batch_size"], max_length=values["max_length"], seed=values["seed"],
                        eval_steps=every, save_steps=every)


STAGE = TrainStage()
