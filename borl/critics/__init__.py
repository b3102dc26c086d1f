"""Value functions: the IQL critic (Q ensemble, V, target network) and its variants, by name."""

from borl.critics.base import Critic
from borl.critics.calql import CalQLCritic
from borl.critics.hlgauss import HLGaussCritic
from borl.critics.iql import IQLConfig, IQLCritic

# `--set critic.kind=NAME`: a new objective is one file and one line here.
CRITICS: dict[str, type[IQLCritic]] = {"iql": IQLCritic, "calql": CalQLCritic, "hlgauss": HLGaussCritic}

__all__ = ["CRITICS", "CalQLCritic", "Critic", "HLGaussCritic", "IQLConfig", "IQLCritic"]
