"""Policies: the diffusion policy and the networks they are built from."""

from borl.policies.diffusion import DiffusionConfig, DiffusionPolicy, vp_beta_schedule

__all__ = ["DiffusionConfig", "DiffusionPolicy", "vp_beta_schedule"]
