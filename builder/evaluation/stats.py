"""From per-item scores to what a contribution did: means, the change, and a seeded bootstrap interval of it.

The interval is scipy's bootstrap (percentile method) of the mean of the paired per-item differences (tuned -
base): items are resampled with replacement, so a change the size of the noise between items holds 0. Every
contribution and metric draws from its own random stream, derived from the run's seed and their names, so adding
a contribution changes no other interval. Imported lazily (numpy, scipy).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any

from rouge_score import rouge_scorer


@dataclass(frozen=True, slots=True)
class Effect:
    contribution_id: str | None  # None: the guard set
    metric: str
    items: int
    base_mean: float
    tuned_mean: float
    delta: float
    delta_low: float | None  # None with fewer than 2 items
    delta_high: float | None
    chance: float | None = None


def effect(contribution_id: str | None, metric: str, base: list[float], tuned: list[float], seed: int,
           resamples: int, confidence: float, chance: float | None = None) -> Effect:
    import numpy as np

    b, t = np.asarray(base, dtype=np.float64), np.asarray(tuned, dtype=np.float64)
    low, high = interval(t - b, _stream(seed, contribution_id, metric), resamples, confidence)
    return Effect(contribution_id, metric, len(b), float(b.mean()), float(t.mean()), float(t.mean() - b.mean()),
                  low, high, chance)


def interval(deltas: Any, seed: int, resamples: int, confidence: float) -> tuple[float | None, float | None]:
    """The percentile bootstrap interval of mean(deltas); (None, None) with fewer than 2 items."""
    import numpy as np
    from scipy.stats import bootstrap

    if len(deltas) < 2:
        return None, None
    if np.all(deltas == deltas[0]):  # every resample has the same mean (scipy warns and returns NaN)
        return float(deltas[0]), float(deltas[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning on near-constant data: the percentiles still hold
        result = bootstrap((deltas,), np.mean, n_resamples=resamples, confidence_level=confidence,
                           method="percentile", rng=np.random.default_rng(seed), vectorized=True)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _stream(seed: int, contribution_id: str | None, metric: str) -> int:
    digest = hashlib.sha256(f"{seed}:{contribution_id or '(guard)'}:{metric}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


_ROUGE = rouge_scorer.RougeScorer(["rouge1", "rougeL"])  # rouge-score's own tokenizer: lower case, [a-z0-9]


def text_scores(answer: str, reference: str) -> dict[str, float]:
    """f1: token F1 (ROUGE-1 F-measure: unigram overlap counted with multiplicity, SQuAD's formula without its
    article removal); rouge_l: ROUGE-L F-measure (longest common subsequence)."""
    scores = _ROUGE.score(reference, answer)
    return {"f1": float(scores["rouge1"].fmeasure), "rouge_l": float(scores["rougeL"].fmeasure)}
