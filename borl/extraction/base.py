"""The extraction axis as objects: how an agent turns its policy (and critic) into actions."""

from __future__ import annotations

from dataclasses import dataclass

from borl.extraction.awr import AdvantageCritic, Update, weighted_update


@dataclass(frozen=True)
class Extraction:
    """One point on the extraction axis, and what training and acting ask of it.

    - implicit: acting draws candidates from the policy and the critic chooses among them;
    - awr: the policy's loss weights each dataset action by exp(beta * (Q - V)); acts with one sample;
    - none: plain imitation, one policy sample.
    """

    name: str
    acts_with_critic: bool = False
    weights_policy_loss: bool = False

    @property
    def needs_critic(self) -> bool:
        return self.acts_with_critic or self.weights_policy_loss

    def policy_update(self, update: Update, critic: AdvantageCritic | None, settings) -> Update:
        """The policy's training step under this extraction (AWR wraps it in the critic's weights);
        `settings` is the run's ExtractionConfig."""
        if not self.weights_policy_loss:
            return update
        return weighted_update(update, critic, settings.beta, settings.max_weight)


EXTRACTIONS: dict[str, Extraction] = {
    "implicit": Extraction("implicit", acts_with_critic=True),
    "awr": Extraction("awr", weights_policy_loss=True),
    "none": Extraction("none"),
}
