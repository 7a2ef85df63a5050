"""`taxreg build`: the whole pipeline, from taxonomy to site (and a release with --release)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from builder import console, settings
from builder.cli.common import TaxonomyArg, app, state


@app.command()
def build(
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    build_dir: Annotated[Path, typer.Option("--build-dir", help="Where every output goes.")] = settings.DEFAULT_BUILD,
    release: Annotated[str | None, typer.Option(help="Cut this release version at the end.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of generation and training.")] = 0,
    base_model: Annotated[Path | None, typer.Option(
        "--base-model", help="Local Hugging Face causal-LM folder to fine-tune [default: taxreg.toml \\[model] base, "
                             "else the demo model].", show_default=False)] = None,
    train_steps: Annotated[int | None, typer.Option(
        min=1, help="LoRA training steps [default: \\[train] steps or epochs, else 60].", show_default=False)] = None,
    train_epochs: Annotated[float | None, typer.Option(
        help="Passes over the train split (> 0) instead of steps.", show_default=False)] = None,
    lr: Annotated[float | None, typer.Option(
        "--lr",
        help="Peak learning rate, in (0, 1) [default: \\[train] lr, else 1e-2 for the demo model, 2e-4 otherwise].",
        show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Examples per step [\\[train] batch_size, else 8].",
                                                   show_default=False)] = None,
    max_length: Annotated[int | None, typer.Option(min=8, help="Tokens per example [\\[train] max_length, else "
                                                               "512].", show_default=False)] = None,
    variant: Annotated[list[str] | None, typer.Option(
        "--variant", help="Export variant (repeat): fp32 (always), int8, int4 [default: \\[export] variants, else "
                          "fp32 and int8].", show_default=False)] = None,
    allow: Annotated[list[str] | None, typer.Option(
        "--allow", help="Override a failed release gate (repeat); recorded in the manifest.")] = None,
    license: Annotated[str | None, typer.Option(
        "--license", help="SPDX license the release is declared under; the license gates check every source "
                          "against it [default: taxreg.toml \\[release] license, else the sources' union, "
                          "with a warning].")] = None,
    sign: Annotated[Path | None, typer.Option(help="Sign the release with this local private key.")] = None,
    force: Annotated[list[str] | None, typer.Option(help="Run this stage even if its inputs did not change.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another build holding the lock.")] = 0.0,
    log_every: Annotated[float, typer.Option(
        help="Off a terminal (a log, CI): seconds between the progress lines of a running stage (step, loss, "
             "ETA).")] = console.LOG_EVERY,
    generator: Annotated[str | None, typer.Option(
        help="seed or teacher [default: taxreg.toml \\[generate] generator, else seed].")] = None,
    teacher_url: Annotated[str | None, typer.Option(help="The teacher's API base URL [\\[generate] url].")] = None,
    teacher_model: Annotated[str | None, typer.Option(help="The teacher model [\\[generate] model].")] = None,
    judge_url: Annotated[str | None, typer.Option(
        help="The judge's API base URL [\\[generate.judge] url, else the teacher's].")] = None,
    judge_model: Annotated[str | None, typer.Option(
        help="The judge model [\\[generate.judge] model, else the teacher model].")] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Keep the teacher's samples unjudged.")] = False,
) -> None:
    """Validate, index, generate, build the dataset, train, export, (release) and publish the site."""
    from builder.buildlock import build_lock
    from builder.generators.configure import Overrides, resolve
    from builder.pipeline import run_build
    from builder.stage import BuildOptions

    with console.user_errors(state["debug"], root=taxonomy):
        loaded = settings.load()
        config = loaded.validation()
        model = loaded.model.over(base_model, settings.TrainSettings(
            steps=train_steps, epochs=train_epochs, lr=lr, batch_size=batch_size, max_length=max_length), variant)
        generation = resolve(loaded.generate, Overrides(generator, {"url": teacher_url, "model": teacher_model},
                                                        {"url": judge_url, "model": judge_model}, no_judge))
        options = BuildOptions(taxonomy, build_dir, release, seed, model, allow=tuple(allow or ()),
                               license=license or loaded.release_license, sign_key=sign, force=tuple(force or ()),
                               disclosure=loaded.disclosure, lineage=loaded.lineage, generation=generation,
                               evaluation=loaded.evaluation)
        with build_lock(build_dir, wait), console.StageBoard(log_every) as board:
            reports = run_build(options, config, board.update)
    ran = sum(r.status == "ran" for r in reports)
    for note in (r.warning for r in reports):
        if note:
            console.print_warning(note)
    console.print_summary(f"build finished in {sum(r.seconds for r in reports):.1f}s: {ran} stage(s) ran, "
                          f"{len(reports) - ran} skipped -> {build_dir}", False)
