"""`taxreg train`: LoRA (peft) on a dataset built by `taxreg dataset build`, with the Hugging Face Trainer.

Loss on assistant tokens only; eval loss on the test split; checkpoints keyed by everything that shapes the result,
so a killed run resumes where its last checkpoint left off; seeded and deterministic on CPU (same seed, same
threads -> the same adapter bytes). Runs unchanged under `torchrun` / `accelerate launch`: every process trains,
rank 0 alone writes the adapter and the catalog. The adapter is written beside its target and renamed into place
inside the catalog transaction, so a failed run leaves the previous adapter intact.

Imported lazily by the CLI (torch, transformers, peft).
"""

from __future__ import annotations

import os
import resource
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from builder.model import base_model, chat_data, chat_template, checkpoints, train_outputs
from builder.model.train_options import (
    Inputs,
    Progress,
    TrainEvent,
    TrainOptions,
    TrainOutcome,
    default_lr,
)
from registry.catalog.models import describe_base_model, hash_directory
from registry.errors import RegistryError
from registry.folders import remove_stale_temps

__all__ = ["TrainOptions", "default_lr", "train"]


def train(options: TrainOptions, progress: Progress | None = None) -> TrainOutcome:
    started, clock = datetime.now(UTC), time.perf_counter()
    base_model.check(options.base_model)
    files = chat_data.dataset_files(options.dataset)
    conversations = {split: chat_data.read_conversations(f) for split, f in files.items()}
    chat_data.check_trainable(files["train"], conversations["train"])
    train_outputs.check_outputs(options)
    if options.catalog is not None and _rank() == 0:
        train_outputs.check_catalog(options.catalog)
    if _rank() == 0:
        remove_stale_temps(options.out)
    base = hash_directory(options.base_model)
    inputs = Inputs(base, describe_base_model(options.base_model, base), files)
    threads = options.threads or max(1, (os.cpu_count() or 1) // _local_world_size())
    run_id = uuid.uuid4().hex
    try:
        with _deterministic(threads), _quiet():
            return _train(options, inputs, conversations, threads, progress or (lambda event: None),
                          (run_id, started, clock))
    except RegistryError:
        raise
    except BaseException as exc:
        if options.catalog is not None and _rank() == 0 and not isinstance(exc, KeyboardInterrupt):
            train_outputs.record_failure(options, inputs, run_id, started, threads, exc)
        raise


def _train(options: TrainOptions, inputs: Inputs, conversations: dict[str, list[chat_data.Messages]],
           threads: int, progress: Progress, run: tuple[str, datetime, float]) -> TrainOutcome:
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, set_seed

    set_seed(options.seed)  # before peft creates the LoRA weights
    model, tokenizer, template_source = _load(options)
    encoded = {split: chat_data.encode(rows, tokenizer, options.max_length) for split, rows in conversations.items()}
    if not encoded["train"].examples:
        raise RegistryError(f"no training example of {inputs.files['train'].path} keeps any answer token within "
                            f"--max-length {options.max_length}: the prompts fill it", hint="raise --max-length")
    model = _with_lora(model, options)
    fingerprint = checkpoints.fingerprint(options, inputs, threads, _world_size())
    args = _arguments(options, fingerprint, has_eval=bool(encoded.get("test") and encoded["test"].examples))
    resume_from = checkpoints.resume_point(args, options.resume)
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=chat_data.IGNORE)
    eval_examples = encoded["test"].examples if "test" in encoded and encoded["test"].examples else None
    report = _callback(progress)
    trainer = Trainer(model=model, args=args, train_dataset=encoded["train"].examples,
                      eval_dataset=eval_examples, data_collator=collator, processing_class=tokenizer,
                      callbacks=[report])
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; `progress` reports instead
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final_eval = _final_eval(trainer) if eval_examples else {}
    run_id, started, clock = run
    metrics = {**output.metrics, "train_tokens_per_second": round(report.tokens_per_second, 1)}
    results = _results(trainer.state.log_history, metrics, final_eval, trainer.state.global_step)
    resumed = int(resume_from.name.rsplit("-", 1)[1]) if resume_from else 0
    outcome = TrainOutcome(args.process_index, run_id, options.out, trainer.state.global_step, resumed, results,
                           time.perf_counter() - clock, _peak_rss_mb())
    if trainer.is_world_process_zero():
        config = train_outputs.config_file(options, inputs, threads, fingerprint, template_source, encoded, tokenizer,
                                           results, args.world_size)
        config["deterministic"] = not _cuda()  # CUDA kernels only warn where no deterministic version exists
        train_outputs.write_adapter(trainer.model, tokenizer, options, inputs, config, (run_id, started), outcome)
    _finish_distributed()
    return outcome


def _final_eval(trainer: Any) -> dict[str, Any]:
    """The eval loss of the final weights: the last step's evaluation when there was one, else a new one."""
    last = trainer.state.log_history[-2:] if trainer.state.log_history else []
    for entry in last:
        if "eval_loss" in entry and entry.get("step") == trainer.state.global_step:
            return dict(entry)
    return dict(trainer.evaluate())


def _load(options: TrainOptions) -> tuple[Any, Any, str]:
    model, tokenizer = base_model.load(options.base_model)
    source = "base model"
    if not tokenizer.chat_template:
        tokenizer.chat_template = chat_template.CHAT_TEMPLATE  # base (non-chat) models: the demo's format
        source = "taxreg demo template (the base model has none)"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # training batches; generation-time padding is the server's business
    model.config.use_cache = False
    return model, tokenizer, source


def _with_lora(model: Any, options: TrainOptions) -> Any:
    from peft import LoraConfig, get_peft_model

    targets: str | list[str] = "all-linear" if options.targets == ("all-linear",) else list(options.targets)
    config = LoraConfig(r=options.rank, lora_alpha=options.alpha, lora_dropout=options.dropout,
                        target_modules=targets, task_type="CAUSAL_LM", bias="none")
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise RegistryError(f"LoRA cannot target {options.targets}: {exc}",
                            hint="--targets all-linear, or module names such as q_proj,v_proj") from None


def _arguments(options: TrainOptions, fingerprint: str, has_eval: bool) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(options.checkpoint_root / fingerprint[:16]), seed=options.seed, data_seed=options.seed,
        per_device_train_batch_size=options.batch_size, per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum, num_train_epochs=options.epochs, max_steps=options.max_steps,
        learning_rate=options.lr, warmup_steps=options.warmup_steps, weight_decay=options.weight_decay,
        lr_scheduler_type="linear", logging_steps=options.logging_steps, logging_first_step=True,
        eval_strategy="steps" if has_eval else "no", eval_steps=options.eval_steps, eval_on_start=has_eval,
        save_strategy="steps", save_steps=options.save_steps, save_total_limit=2,
        report_to="none", disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False,
        # without a GPU, say so: accelerate then runs torchrun's processes as multi-CPU DDP over gloo (otherwise
        # each process would train alone)
        use_cpu=not _cuda(), ddp_backend="gloo" if not _cuda() and _world_size() > 1 else None,
        dataloader_pin_memory=_cuda(), bf16=_bf16(),  # mixed precision where the GPU has bf16; fp32 elsewhere
        label_names=["labels"], include_num_input_tokens_seen="non_padding", ddp_find_unused_parameters=False,
        log_level="error", log_level_replica="error")


def _callback(progress: Progress) -> Any:
    from transformers import TrainerCallback

    class Report(TrainerCallback):
        """Tells `progress` what the Trainer does (rank 0 only); the CLI renders it."""

        def __init__(self) -> None:
            self.tokens_at_start, self.clock, self.tokens_per_second = 0, time.perf_counter(), 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.tokens_at_start, self.clock = state.num_input_tokens_seen, time.perf_counter()
            if state.is_world_process_zero:
                progress(TrainEvent("start", state.global_step, state.max_steps, resumed_from=state.global_step))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                progress(TrainEvent("step", state.global_step, state.max_steps))

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if state.is_world_process_zero and logs:
                progress(TrainEvent("log", state.global_step, state.max_steps, dict(logs)))

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                progress(TrainEvent("save", state.global_step, state.max_steps))

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            seconds = time.perf_counter() - self.clock
            self.tokens_per_second = (state.num_input_tokens_seen - self.tokens_at_start) / max(seconds, 1e-9)
            if state.is_world_process_zero:
                progress(TrainEvent("end", state.global_step, state.max_steps,
                                    {"train_tokens_per_second": self.tokens_per_second}))

    return Report()


TIMING_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_tokens_per_second",
               "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "total_flos")


def _results(history: list[dict[str, Any]], train_metrics: dict[str, Any], final_eval: dict[str, Any],
             global_step: int) -> dict[str, Any]:
    """Losses as the run saw them (timings left out, so same-seed runs write the same file)."""
    log = [{k: v for k, v in entry.items() if k not in TIMING_KEYS} for entry in history]
    train_losses = [e["loss"] for e in log if "loss" in e]
    eval_losses = [e["eval_loss"] for e in log if "eval_loss" in e]
    return {"global_step": global_step, "train_loss_first": train_losses[0] if train_losses else None,
            "train_loss_last": train_losses[-1] if train_losses else None,
            "train_loss_mean": train_metrics.get("train_loss"),
            "eval_loss_first": eval_losses[0] if eval_losses else None,
            "eval_loss": final_eval.get("eval_loss"), "log_history": log,
            "timing": {k: train_metrics[k] for k in TIMING_KEYS if k in train_metrics}}

@contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count while training; the previous settings come back after."""
    import torch

    before = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.set_num_threads(before[1])


@contextmanager
def _quiet() -> Iterator[None]:
    """Loaders and the Trainer talk a lot (progress bars, hints on the root logger): the CLI reports instead."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():  # deprecation notices between peft, transformers and torch versions
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _bf16() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def writes_outputs() -> bool:
    """Whether this process writes the adapter and the catalog: the only one, or rank 0 under a launcher."""
    return _rank() == 0


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def _finish_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # rank 0 has written the adapter and the catalog before anyone leaves
        dist.destroy_process_group()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
