"""What an evaluation measures and how: the metrics, and the settings of taxreg.toml's [eval] section.

Light on purpose (no numpy, no onnxruntime): `builder.settings` reads [eval] through it at every command, so it
sits outside builder/evaluation/ (whose modules use the generators, which read the settings).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    label: str  # as pages and cards say it
    higher_is_better: bool
    threshold: str  # the [eval] key of how much worse it may get


METRICS = {m.name: m for m in (
    Metric("nll", "per-token NLL of the reference (nats)", False, "max_nll_increase"),
    Metric("mc_acc", "multiple-choice accuracy", True, "max_accuracy_drop"),
    Metric("mc_acc_norm", "multiple-choice accuracy (per-byte log-likelihood)", True, "max_accuracy_drop"),
    Metric("f1", "token F1 of the greedy answer", True, "max_f1_drop"),
    Metric("rouge_l", "ROUGE-L of the greedy answer", True, "max_rouge_l_drop"),
    Metric("judge", "LLM judge score (0-1)", True, "max_judge_drop"),
)}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How much worse a metric may get (beyond its interval) before `eval.no_regression` fails."""

    max_nll_increase: float = 0.1  # nats per token
    max_accuracy_drop: float = 0.1  # 0-1
    max_f1_drop: float = 0.1
    max_rouge_l_drop: float = 0.1
    max_judge_drop: float = 0.1

    def of(self, metric: str) -> float:
        return float(getattr(self, METRICS[metric].threshold))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EvalJudge:
    url: str = ""
    model: str = ""
    api_key_env: str | None = None  # the NAME of the environment variable that holds the key, never the key

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.model)


@dataclass(frozen=True, slots=True)
class EvalSettings:
    """taxreg.toml [eval] (and the `taxreg eval` options that override it)."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    seed: int = 0
    bootstrap: int = 1000  # resamples per interval
    confidence: float = 0.95
    max_new_tokens: int = 48  # greedy answer length
    judge: EvalJudge = field(default_factory=EvalJudge)

    def key(self) -> dict[str, Any]:
        """What an evaluation's results depend on (the evaluate stage's key)."""
        return asdict(self)


KEYS = {
    "max_nll_increase": "a number of nats per token, 0 or more",
    "max_accuracy_drop": "a share between 0 and 1",
    "max_f1_drop": "a share between 0 and 1",
    "max_rouge_l_drop": "a share between 0 and 1",
    "max_judge_drop": "a share between 0 and 1",
    "seed": "a whole number",
    "bootstrap": "a whole number of resamples, at least 100",
    "confidence": "a level between 0.5 and 1, e.g. 0.95",
    "max_new_tokens": "a whole number of tokens, 1 to 1024",
    "judge_url": "the base URL of an OpenAI-compatible API, e.g. \"http://127.0.0.1:8000/v1\"",
    "judge_model": "the judge model's name at that endpoint",
    "judge_api_key_env": "the NAME of the environment variable that holds the judge's API key, e.g. "
                         "\"OPENAI_API_KEY\"",
}
