"""The algorithm-class axis of the study: which data the policy imitates and whether a critic learns.

- "il": behaviour cloning on all data;
- "filtered_il": behaviour cloning on successful episodes only (demonstrations count as successful);
- "value": behaviour cloning on all data plus an IQL critic (Q and V) trained on all data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from borl.data.episode import Episode

ALGORITHMS = ("value", "il", "filtered_il")


def trains_critic(algorithm: str) -> bool:
    return algorithm == "value"


def policy_episode_mask(algorithm: str, episodes: Sequence[Episode]) -> np.ndarray:
    """Which episodes the policy imitates under an algorithm class."""
    if algorithm == "filtered_il":
        return np.array([e.success or e.lineage.source == "demo" for e in episodes])
    return np.ones(len(episodes), dtype=bool)
