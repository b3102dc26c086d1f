"""Policies, the study's policy-expressivity axis: diffusion (DDPM) and Gaussian, one interface."""

from borl.policies.base import Policy
from borl.policies.diffusion import DiffusionConfig, DiffusionPolicy, vp_beta_schedule
from borl.policies.gaussian import GaussianConfig, GaussianPolicy

# `--policy-class NAME`: a new policy class is one file and one line here.
POLICIES: dict[str, type[Policy]] = {"diffusion": DiffusionPolicy, "gaussian": GaussianPolicy}

__all__ = [
    "POLICIES",
    "DiffusionConfig",
    "DiffusionPolicy",
    "GaussianConfig",
    "GaussianPolicy",
    "Policy",
    "vp_beta_schedule",
]
