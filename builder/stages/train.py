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
        return {"steps": ctx.options.train_steps, "seed": ctx.options.seed}

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


def _options(ctx: BuildContext) -> Any:
    from builder.model.train import TrainOptions, default_lr

    model, steps = ctx.layout.model, ctx.options.train_steps
    return TrainOptions(model.base, ctx.layout.dataset(), model.adapter, ctx.layout.catalog,
                        max_steps=steps, max_length=512, seed=ctx.options.seed, lr=default_lr(model.base),
                        eval_steps=max(10, steps // 3), save_steps=max(10, steps // 3))


STAGE = TrainStage()
