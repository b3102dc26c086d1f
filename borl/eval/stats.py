"""Success-rate statistics as the study reports them: per run (over episodes) and over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def success_rate(successes: Sequence[bool]) -> tuple[float, float]:
    """Mean success and its standard error (binomial: sqrt(p (1 - p) / n)); NaN for no episodes."""
    n = len(successes)
    if n == 0:
        return math.nan, math.nan
    p = sum(bool(s) for s in successes) / n
    return p, math.sqrt(p * (1 - p) / n)


def paired_difference(first: Sequence[bool], second: Sequence[bool]) -> tuple[float, float]:
    """Mean of second - first over paired episodes (the same start states) and its paired standard
    error, std(second_i - first_i) / sqrt(n); NaN for no pairs, and the error NaN for one pair."""
    if len(first) != len(second):
        raise ValueError(f"paired outcomes need equal counts (got {len(first)} and {len(second)})")
    differences = np.asarray(second, dtype=float) - np.asarray(first, dtype=float)
    return mean_and_stderr(differences)


def pooled_over_seeds(differences: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Per-seed (difference, paired standard error) pairs -> their mean over seeds and its standard
    error from the episodes alone, sqrt(sum se^2) / k (each seed's evaluation is independent)."""
    if not differences:
        return math.nan, math.nan
    k = len(differences)
    return sum(d for d, _ in differences) / k, math.sqrt(sum(se * se for _, se in differences)) / k


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean of per-seed values and its standard error over seeds (sample std / sqrt(n)).

    The standard error needs two values: with one it is NaN (the spread between seeds is unknown).
    """
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    if array.size == 1:
        return float(array[0]), math.nan
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(array.size))


def bootstrap_ci(
    successes: Sequence[int],
    episodes: Sequence[int],
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean over seeds of each seed's success rate.

    Seed s succeeded in successes[s] of episodes[s] evaluation episodes. Each resample draws the seeds
    with replacement and then, within each drawn seed, its episodes with replacement, so the interval
    reflects both the spread between seeds and the finite number of episodes per seed. Outcomes are
    0/1, so resampling n episodes of which k succeeded is one Binomial(n, k/n) draw: exact, and cheap.
    With one seed only the episodes are resampled. `seed` makes the interval reproducible.
    Returns (low, high); NaN for no episodes.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    k = np.asarray(successes, dtype=np.int64)
    n = np.asarray(episodes, dtype=np.int64)
    if k.shape != n.shape or np.any(k < 0) or np.any(k > n):
        raise ValueError("need 0 <= successes <= episodes, one of each per seed")
    keep = n > 0
    k, n = k[keep], n[keep]
    if n.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n.size, size=(resamples, n.size))
    rates = rng.binomial(n[drawn], k[drawn] / n[drawn]) / n[drawn]
    tail = (1 - confidence) / 2
    low, high = np.quantile(rates.mean(axis=1), [tail, 1 - tail])
    return float(low), float(high)
