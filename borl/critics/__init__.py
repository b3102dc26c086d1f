"""Value functions: the IQL critic (Q ensemble, V, target network)."""

from borl.critics.iql import IQLConfig, IQLCritic

__all__ = ["IQLConfig", "IQLCritic"]
