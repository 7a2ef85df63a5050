"""`taxreg model init` (the demo base model) and `taxreg train` (LoRA on a built dataset)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated

import typer

from builder import console, layout, settings
from builder.cli.common import DocumentsOpt, WaitOpt, app, state, writing

MODEL = layout.DEFAULT.model
DATASET = layout.DEFAULT.dataset()

model_app = typer.Typer(no_args_is_help=True, help="Base models: the embedded demo model.")
app.add_typer(model_app, name="model")


@model_app.command("init")
def init(
    out: Annotated[Path, typer.Option("--out", help="Folder that receives the model.")] = MODEL.base,
    taxonomy: Annotated[Path, typer.Option("--taxonomy", help="Taxonomy whose text trains the tokenizer.")]
    = settings.DEFAULT_TAXONOMY,
    documents: DocumentsOpt = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Weights follow from it (same seed, same bytes).")] = 0,
    hidden: Annotated[int, typer.Option("--hidden", min=8, help="Hidden size.")] = 256,
    layers: Annotated[int, typer.Option("--layers", min=1, help="Decoder layers.")] = 4,
    heads: Annotated[int, typer.Option("--heads", min=1, help="Attention heads.")] = 4,
    kv_heads: Annotated[int, typer.Option("--kv-heads", min=1, help="Key/value heads (grouped-query).")] = 2,
    intermediate: Annotated[int, typer.Option("--intermediate", min=1, help="MLP width.")] = 768,
    vocab: Annotated[int, typer.Option("--vocab", help="Tokenizer vocabulary size (at most).")] = 4096,
    context: Annotated[int, typer.Option("--context", min=16, help="Longest sequence in tokens.")] = 2048,
    force: Annotated[bool, typer.Option("--force", help="Replace --out even if it is not a demo model.")] = False,
    catalog: Annotated[Path, typer.Option("--catalog", help="The DuckDB catalog: its takedowns are left out of the "
                                          "tokenizer's text, and the run is recorded (when the file exists).")]
    = settings.DEFAULT_CATALOG,
    no_catalog: Annotated[bool, typer.Option("--no-catalog", help="Read no catalog and record nothing.")] = False,
    wait: WaitOpt = 0.0,
) -> None:
    """Build the demo base model: a small random-weight Granite with a tokenizer trained on the taxonomy."""
    from builder.model.demo import DemoSpec, init_demo_model

    with _interrupted(f"{out} is left as it was"), console.user_errors(state["debug"]):
        spec = DemoSpec(hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, intermediate=intermediate,
                        vocab=vocab, context=context, seed=seed)
        config = settings.load().validation(documents)
        recorded = catalog if catalog.is_file() and not no_catalog else None
        with writing(recorded, out, wait=wait):
            outcome = init_demo_model(taxonomy, out, spec, config, force=force, catalog=recorded)
    skipped = f", {outcome.skipped_leaves} invalid leaves left out" if outcome.skipped_leaves else ""
    console.print_summary(
        f"demo model -> {outcome.out}: {outcome.parameters:,} parameters, {outcome.vocab_size:,} tokens "
        f"(tokenizer trained on {outcome.corpus_texts} texts{skipped}); weights sha256 "
        f"{outcome.safetensors_sha256[:16]}. A DEMO model: random weights, answers carry no meaning.", False)


@app.command("train")
def train_command(
    base_model: Annotated[Path, typer.Option("--base-model", help="Local Hugging Face causal-LM folder "
                                                                  "(safetensors only; no remote code).")]
    = MODEL.base,
    dataset: Annotated[Path, typer.Option("--dataset", help="Folder from `taxreg dataset build` (train/test "
                                                            "JSONL or Parquet).")]
    = DATASET,
    out: Annotated[Path, typer.Option("--out", help="Folder that receives the LoRA adapter.")] = MODEL.adapter,
    catalog: Annotated[Path, typer.Option("--catalog", help="The DuckDB catalog file.")] = settings.DEFAULT_CATALOG,
    no_catalog: Annotated[bool, typer.Option("--no-catalog", help="Do not record the run.")] = False,
    checkpoints: Annotated[Path | None, typer.Option("--checkpoints", help="Checkpoint folder "
                                                                           "(default: OUT/../checkpoints).")] = None,
    rank: Annotated[int, typer.Option("--rank", min=1, help="LoRA rank.")] = 16,
    alpha: Annotated[int, typer.Option("--alpha", min=1, help="LoRA alpha (scale = alpha / rank).")] = 32,
    dropout: Annotated[float, typer.Option("--dropout", min=0.0, max=0.99, help="LoRA dropout.")] = 0.05,
    targets: Annotated[str, typer.Option("--targets", help="Modules to adapt: all-linear, or names such as "
                                                           "q_proj,k_proj,v_proj,o_proj.")] = "all-linear",
    epochs: Annotated[float, typer.Option("--epochs", help="Passes over the train split (> 0; fractions "
                                                           "allowed).")] = 3.0,
    max_steps: Annotated[int, typer.Option("--max-steps", min=-1, help="Stop after this many optimizer steps "
                                                                       "(>= 1; overrides --epochs; -1: off).")] = -1,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate (linear decay) "
                                                          "(default: 2e-4; 1e-2 for the demo model).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Examples per step per process.")] = 8,
    grad_accum: Annotated[int, typer.Option("--grad-accum", min=1, help="Steps accumulated per update.")] = 1,
    max_length: Annotated[int, typer.Option("--max-length", min=8, help="Tokens per example (longer ones are "
                                                                        "cut).")] = 1024,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Same seed, threads and inputs: same adapter.")] = 0,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads per process "
                                                                         "(default: cores / processes).")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from the last checkpoint of the "
                                                                      "same settings and inputs.")] = True,
    eval_steps: Annotated[int, typer.Option("--eval-steps", min=1, help="Eval loss every N steps.")] = 50,
    save_steps: Annotated[int, typer.Option("--save-steps", min=1, help="Checkpoint every N steps.")] = 50,
    logging_steps: Annotated[int, typer.Option("--logging-steps", min=1, help="Log the loss every N steps.")] = 5,
    wait: WaitOpt = 0.0,
) -> None:
    """Fine-tune the base model with LoRA on a built dataset (assistant-only loss); record the run."""
    from builder.model.train import TrainOptions, default_lr, train, writes_outputs

    kept = f"{out} and the checkpoints are left as they were; run the same command again to resume from the last " \
           "checkpoint"
    with _interrupted(kept), console.user_errors(state["debug"]):
        options = TrainOptions(
            base_model=base_model, dataset=dataset, out=out, catalog=None if no_catalog else catalog,
            checkpoints=checkpoints, rank=rank, alpha=alpha, dropout=dropout,
            targets=tuple(t.strip() for t in targets.split(",") if t.strip()), epochs=epochs, max_steps=max_steps,
            lr=lr if lr is not None else default_lr(base_model), batch_size=batch_size, grad_accum=grad_accum,
            max_length=max_length, seed=seed, threads=threads, resume=resume, eval_steps=eval_steps,
            save_steps=save_steps, logging_steps=logging_steps)
        # under torchrun/accelerate every process trains, and rank 0 alone writes: it alone holds the lock
        lock = writing(options.catalog, out, *([checkpoints] if checkpoints else []), wait=wait) \
            if writes_outputs() else nullcontext()
        with lock, console.TrainingDisplay() as display:
            outcome = train(options, progress=display.update)
    if outcome.rank != 0:
        return
    r = outcome.results
    resumed = f", resumed from step {outcome.resumed_from}" if outcome.resumed_from else ""
    console.print_summary(
        f"adapter -> {outcome.out}: {r['global_step']} steps{resumed}; train loss {_num(r['train_loss_first'])} -> "
        f"{_num(r['train_loss_last'])}, eval loss {_num(r['eval_loss_first'])} -> {_num(r['eval_loss'])}; "
        f"{outcome.seconds:.1f} s, {r['timing'].get('train_tokens_per_second', 0):,.0f} tokens/s, "
        f"peak RSS {outcome.peak_rss_mb:.0f} MB", False)


@contextmanager
def _interrupted(intact: str) -> Iterator[None]:
    """Ctrl-C: one line saying what was kept, exit 130 (Typer would otherwise exit 130 silently)."""
    try:
        yield
    except KeyboardInterrupt:
        console.print_summary(f"interrupted: {intact}", True)
        raise typer.Exit(130) from None


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
