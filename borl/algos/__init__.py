"""The algorithm-class axis of the study: which data the policy imitates, when it trains, and whether
a critic learns.

- "il": behaviour cloning on all data;
- "filtered_il": behaviour cloning on successful episodes only (demonstrations count as successful);
- "value": behaviour cloning on all data plus an IQL critic (Q and V) trained on all data;
- "filtered_value": behaviour cloning on successful episodes only plus the critic trained on all data,
  for tasks whose failed rollouts outnumber the successes so far that cloning them degrades the policy
  (docs/recipe.md);
- "steering": the policy is trained on D0 once and frozen; only the IQL critic is retrained on all
  data each iteration, and it steers the frozen policy's samples (implicit extraction).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from borl.data.episode import Episode

ALGORITHMS = ("value", "filtered_value", "il", "filtered_il", "steering")


def trains_critic(algorithm: str) -> bool:
    return algorithm in ("value", "filtered_value", "steering")


def policy_iteration(algorithm: str, iteration: int) -> int:
    """The iteration whose training produced the policy that iteration `iteration` deploys.

    Every algorithm retrains the policy each iteration except steering, which keeps iteration 0's
    (trained on D0). When this is not `iteration` itself, that iteration trains only the critic.
    """
    return 0 if algorithm == "steering" else iteration


def policy_episode_mask(algorithm: str, episodes: Sequence[Episode]) -> np.ndarray:
    """Which episodes the policy imitates under an algorithm class."""
    if algorithm in ("filtered_il", "filtered_value"):
        return np.array([e.counts_as_success for e in episodes])
    return np.ones(len(episodes), dtype=bool)
