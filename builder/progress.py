"""Progress of long work (training steps, export phases, teacher requests): what the work reports as it goes, for a
display to render (the stage board, a command's progress line). `StageResult` says how a stage ended; a `Step`
says where it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    done: int | None = None  # steps, requests... finished so far (None: a phase without a count)
    total: int | None = None
    note: str = ""  # what it is doing or the latest figure: "loss 2.31", "exporting the fp32 graph"
    unit: str = ""  # what `done` counts: "step", "request"

    def eta(self, elapsed: float) -> float | None:
        """Seconds left at the pace so far; None until something is done."""
        if not self.done or not self.total or self.done >= self.total or elapsed <= 0:
            return None
        return elapsed / self.done * (self.total - self.done)

    def describe(self, elapsed: float) -> str:
        """'step 12/60, loss 2.31, ETA 3m10s'."""
        count = f"{self.unit} {self.done}/{self.total}".strip() if self.done is not None and self.total else ""
        parts = [count, self.note]
        eta = self.eta(elapsed)
        if eta is not None:
            parts.append(f"ETA {duration(eta)}")
        return ", ".join(p for p in parts if p)


Report = Callable[[Step], None]


def ignore(step: Step) -> None:
    """The report of work nobody watches."""


def duration(seconds: float) -> str:
    """42s, 3m10s, 1h05m."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
