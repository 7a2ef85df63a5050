"""LoRA training throughput: the Hugging Face Trainer (what `taxreg train` uses) vs a plain PyTorch loop.

    python bench/train.py                       # demo model, batch 8 x 256 tokens, 1 thread, 5 interleaved rounds
    python bench/train.py --base-model PATH --batch 4 --length 512 --steps 12 --rounds 3

Same model (a fresh LoRA copy with the same seed per measurement), same batches (fixed-length random token ids,
labels = inputs), same optimizer (AdamW, linear decay, grad-norm clipping at 1.0 as the Trainer does by default),
threads pinned. Rounds alternate which side runs first; the first `--warmup` steps of every measurement are not
timed. Prints tokens/s and CPU seconds per step (median, min, max), the Trainer/plain ratio (target: within 10%),
and the peak RSS of a real `taxreg train` run on the embedded taxonomy in a child process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
TAXREG = str(Path(sys.executable).with_name("taxreg"))


def lora_model(base: Path, rank: int, seed: int) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, use_safetensors=True)
    model.config.use_cache = False
    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05,
                                            target_modules="all-linear", task_type="CAUSAL_LM"))


def batches(vocab: int, n: int, length: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        ids = torch.randint(4, vocab, (length,), generator=g)
        rows.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()})
    return rows


class Clock:
    """Wall and CPU time from the start of step `warmup` to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.cpu_start, self.wall, self.cpu = warmup, 0.0, 0.0, 0.0, 0.0

    def step_begin(self, step: int) -> None:
        if step == self.warmup:
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def done(self) -> None:
        self.wall, self.cpu = time.perf_counter() - self.start, time.process_time() - self.cpu_start


def run_trainer(base: Path, data: list[dict[str, torch.Tensor]], args: argparse.Namespace) -> Clock:
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    clock = Clock(args.warmup)

    class Timing(TrainerCallback):
        def on_step_begin(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            clock.step_begin(state.global_step)

        def on_train_end(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            clock.done()

    with tempfile.TemporaryDirectory() as out:
        training = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch, max_steps=args.steps, learning_rate=1e-3,
            lr_scheduler_type="linear", save_strategy="no", logging_steps=10_000, report_to="none",
            disable_tqdm=True, use_cpu=True, seed=args.seed, dataloader_num_workers=0,
            dataloader_pin_memory=False, remove_unused_columns=False)
        trainer = Trainer(model=lora_model(base, args.rank, args.seed), args=training, train_dataset=data,
                          callbacks=[Timing()])
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return clock


def run_plain(base: Path, data: list[dict[str, torch.Tensor]], args: argparse.Namespace) -> Clock:
    from torch.utils.data import DataLoader, RandomSampler
    from transformers import default_data_collator, get_linear_schedule_with_warmup

    clock = Clock(args.warmup)
    model = lora_model(base, args.rank, args.seed).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, 0, args.steps)
    loader = DataLoader(data, batch_size=args.batch, sampler=RandomSampler(data, generator=torch.Generator()
                                                                           .manual_seed(args.seed)),
                        collate_fn=default_data_collator)
    step = 0
    while step < args.steps:
        for batch in loader:
            clock.step_begin(step)
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step == args.steps:
                break
    clock.done()
    return clock


def taxreg_train_peak_rss(base: Path, work: Path, threads: int) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of a real `taxreg train` (8 steps) on the embedded taxonomy."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    catalog, datasets = work / "catalog.duckdb", work / "datasets"
    for command in (["index", str(REPO / "taxonomy"), "--catalog", str(catalog)],
                    ["generate", str(REPO / "taxonomy"), "--catalog", str(catalog)],
                    ["dataset", "build", "--catalog", str(catalog), "--out", str(datasets)]):
        subprocess.run([TAXREG, *command], cwd=work, env=env, check=True, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.Popen([TAXREG, "train", "--base-model", str(base), "--dataset", str(datasets / "default"),
                             "--out", str(work / "adapter"), "--catalog", str(catalog), "--max-steps", "8",
                             "--threads", str(threads), "--no-resume"], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit("taxreg train failed")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):8.1f}  (min {min(values):.1f}, max {max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", type=Path, help="model folder [default: a fresh demo model]")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        base = args.base_model
        if base is None:
            base = work / "base"
            subprocess.run([TAXREG, "model", "init", "--out", str(base), "--taxonomy", str(REPO / "taxonomy")],
                           check=True, capture_output=True)
        from transformers import AutoConfig
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers API deprecated for v6
        vocab = AutoConfig.from_pretrained(base).vocab_size
        data = batches(vocab, args.batch * args.steps, args.length, args.seed)
        tokens = args.batch * args.length * (args.steps - args.warmup)
        print(f"model {base}; batch {args.batch} x {args.length} tokens; {args.steps} steps ({args.warmup} warm-up, "
              f"untimed); {args.threads} thread(s); {args.rounds} interleaved rounds; torch {torch.__version__}")
        speed: dict[str, list[float]] = {"trainer": [], "plain": []}
        cpu: dict[str, list[float]] = {"trainer": [], "plain": []}
        runners = {"trainer": run_trainer, "plain": run_plain}
        for r in range(args.rounds):
            for name in (("trainer", "plain") if r % 2 == 0 else ("plain", "trainer")):
                clock = runners[name](base, data, args)
                speed[name].append(tokens / clock.wall)
                cpu[name].append(1000 * clock.cpu / (args.steps - args.warmup))
                print(f"  round {r + 1} {name:8s} {tokens / clock.wall:8.1f} tokens/s  "
                      f"{1000 * clock.cpu / (args.steps - args.warmup):7.1f} ms CPU/step", flush=True)
        for name in ("trainer", "plain"):
            print(f"{name:8s} tokens/s {summary(speed[name])};  CPU ms/step {summary(cpu[name])}")
        ratio = statistics.median(speed["trainer"]) / statistics.median(speed["plain"])
        cpu_ratio = statistics.median(cpu["plain"]) / statistics.median(cpu["trainer"])
        print(f"Trainer / plain loop: {ratio:.3f} by wall-clock tokens/s, {cpu_ratio:.3f} by CPU time per step "
              f"(target >= 0.90)")
        print(f"peak RSS of this benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        rss, wall = taxreg_train_peak_rss(base, work, args.threads)
        print(f"peak RSS of `taxreg train` (embedded taxonomy, 8 steps, batch 8, max length 1024): {rss:.0f} MB "
              f"({wall:.1f} s wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
