"""The algorithm-class axis of the study: which data the policy imitates, when it trains, and whether
a critic learns. Each class is one `AlgorithmClass` object in ALGORITHMS; the loop, training and
validation ask it rather than compare names.

- "il": behaviour cloning on all data;
- "filtered_il": behaviour cloning on successful episodes only (demonstrations count as successful);
- "value": behaviour cloning on all data plus a critic (Q and V) trained on all data;
- "filtered_value": behaviour cloning on successful episodes only plus the critic trained on all data,
  for tasks whose failed rollouts outnumber the successes so far that cloning them degrades the policy
  (docs/recipe.md);
- "steering": the policy is trained on D0 once and frozen; only the critic is retrained on all data
  each iteration, and it steers the frozen policy's samples (implicit extraction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from borl.data.episode import Episode
from borl.errors import BorlError
from borl.extraction import Extraction


@dataclass(frozen=True)
class AlgorithmClass:
    """One point on the algorithm-class axis: what it trains, on which data, and how it may act."""

    name: str
    trains_critic: bool
    imitates_successes_only: bool = False
    # The policy trains at iteration 0 only and is deployed by every later iteration (steering).
    freezes_policy: bool = False

    def policy_iteration(self, iteration: int) -> int:
        """The iteration whose training produced the policy that iteration `iteration` deploys; when
        it is not `iteration` itself, that iteration trains only the critic."""
        return 0 if self.freezes_policy else iteration

    def policy_episode_mask(self, episodes: Sequence[Episode], keep_fastest: float = 1.0) -> np.ndarray:
        """Which episodes the policy imitates. A filtered class with keep_fastest below 1 keeps the
        demonstrations and that share of the successful rollouts, the shortest first (percentile BC
        by discounted return: among successes the return is discount ** length), so that rollouts
        which reached the goal only after fumbling for it are not imitated."""
        if not self.imitates_successes_only:
            return np.ones(len(episodes), dtype=bool)
        mask = np.array([e.counts_as_success for e in episodes])
        if keep_fastest < 1:
            rollouts = [i for i, e in enumerate(episodes) if e.success and e.lineage.source != "demo"]
            by_length = sorted(rollouts, key=lambda i: (len(episodes[i].actions), i))
            dropped = by_length[math.ceil(keep_fastest * len(by_length)) :]
            mask[dropped] = False
        return mask

    def check_extraction(self, extraction: Extraction) -> None:
        """Refuse an extraction this algorithm class cannot run, saying what would."""
        if extraction.needs_critic and not self.trains_critic:
            raise BorlError(
                f"{extraction.name} extraction needs a critic, and algorithm '{self.name}' trains none: "
                "use --algorithm value, or --extraction none"
            )
        if self.freezes_policy and not extraction.acts_with_critic:
            raise BorlError(
                f"{self.name} acts by the critic's choice among the frozen policy's samples: "
                f"it needs --extraction implicit (got '{extraction.name}')"
            )


ALGORITHMS: dict[str, AlgorithmClass] = {
    "value": AlgorithmClass("value", trains_critic=True),
    "filtered_value": AlgorithmClass("filtered_value", trains_critic=True, imitates_successes_only=True),
    "il": AlgorithmClass("il", trains_critic=False),
    "filtered_il": AlgorithmClass("filtered_il", trains_critic=False, imitates_successes_only=True),
    "steering": AlgorithmClass("steering", trains_critic=True, freezes_policy=True),
}
