"""What `taxreg train` is given and gives back: options (validated on construction), progress events, the outcome,
and the hashed inputs. No heavy imports: the CLI builds these before anything loads torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder.layout import ModelLayout
from builder.model.chat_data import SplitFile
from registry.catalog.models import Artifact, ExternalModel
from registry.errors import RegistryError
from registry.model_folder import ModelFolder

# what shapes the adapter's bytes: the checkpoint folder is keyed by these (and the inputs' hashes)
RESULT_KEYS = ("rank", "alpha", "dropout", "targets", "epochs", "max_steps", "lr", "warmup_steps", "weight_decay",
               "batch_size", "grad_accum", "max_length", "seed", "threads")


DEFAULT_LR = 2e-4
DEMO_LR = 1e-2  # the demo model's weights are random: LoRA needs a large step to move its loss visibly


def default_lr(base_model: Path) -> float:
    return DEMO_LR if ModelFolder.lenient(base_model).is_demo else DEFAULT_LR


@dataclass(frozen=True, slots=True)
class TrainOptions:
    base_model: Path
    dataset: Path
    out: Path
    catalog: Path | None
    checkpoints: Path | None = None  # default: <out>/../checkpoints
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = ("all-linear",)
    epochs: float = 3.0
    max_steps: int = -1  # >= 1 overrides epochs; -1: off
    lr: float = 2e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 1024
    seed: int = 0
    threads: int | None = None  # default: CPU cores / processes on this node
    resume: bool = True
    eval_steps: int = 50
    save_steps: int = 50
    logging_steps: int = 5

    def __post_init__(self) -> None:
        checks = [(self.rank >= 1, "--rank must be >= 1"), (self.alpha > 0, "--alpha must be > 0"),
                  (0 <= self.dropout < 1, "--dropout must be in [0, 1)"), (bool(self.targets), "--targets is empty"),
                  (self.epochs > 0, "--epochs must be > 0"),
                  (self.max_steps == -1 or self.max_steps >= 1, "--max-steps must be >= 1, or -1 (off)"),
                  (0 < self.lr < 1, "--lr must be in (0, 1)"), (self.batch_size >= 1, "--batch-size must be >= 1"),
                  (self.grad_accum >= 1, "--grad-accum must be >= 1"),
                  (self.max_length >= 8, "--max-length must be >= 8"), (self.seed >= 0, "--seed must be >= 0"),
                  (self.threads is None or self.threads >= 1, "--threads must be >= 1"),
                  (min(self.eval_steps, self.save_steps, self.logging_steps) >= 1, "step intervals must be >= 1"),
                  (self.warmup_steps >= 0 and self.weight_decay >= 0, "warmup and weight decay must be >= 0")]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise RegistryError("invalid training options: " + "; ".join(problems),
                                hint="see `taxreg train --help`")

    @property
    def checkpoint_root(self) -> Path:
        return self.checkpoints or ModelLayout(self.out.parent).checkpoints

    def params(self, threads: int) -> dict[str, Any]:
        values = {k: v for k, v in asdict(self).items() if k in RESULT_KEYS or k.endswith("_steps")}
        return {**values, "targets": list(self.targets), "threads": threads}


@dataclass(frozen=True, slots=True)
class TrainEvent:
    kind: str  # start | step | log | save | end
    step: int
    total: int
    logs: dict[str, Any] = field(default_factory=dict)
    resumed_from: int = 0


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    rank: int  # the process's rank; only rank 0 wrote anything
    run_id: str
    out: Path
    global_step: int
    resumed_from: int
    results: dict[str, Any]
    seconds: float
    peak_rss_mb: float


Progress = Callable[[TrainEvent], None]


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the run reads, hashed: the base model folder and the dataset files."""

    base: Artifact
    base_model: ExternalModel
    files: dict[str, SplitFile]

