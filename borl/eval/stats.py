"""Success-rate statistics as the study reports them."""

from __future__ import annotations

import math
from collections.abc import Sequence


def success_rate(successes: Sequence[bool]) -> tuple[float, float]:
    """Mean success and its standard error (binomial: sqrt(p (1 - p) / n)); NaN for no episodes."""
    n = len(successes)
    if n == 0:
        return math.nan, math.nan
    p = sum(bool(s) for s in successes) / n
    return p, math.sqrt(p * (1 - p) / n)
