"""The deployable agent: normaliser, policy, optional critic and extraction, saved as one checkpoint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from borl.config import ExtractionConfig, RunConfig, merge
from borl.critics import CRITICS
from borl.data.normalization import Normalizer
from borl.data.observations import ObservationSpec, centre_crop, channels_first, network_rows
from borl.errors import BorlError
from borl.extraction.implicit import best_of_n, choose_index, selection_stats
from borl.files import atomic_path
from borl.policies import POLICIES, Policy
from borl.policies.vision import ObservationEncoder


def make_policy(
    config: RunConfig, obs_dim: int, act_dim: int, device: str = "cpu", encoder: nn.Module | None = None
) -> Policy:
    """A fresh policy of the class `config.policy_class`, with that class's settings (and, on an image
    task, the image encoder in front of its network)."""
    kind = POLICIES[config.policy_class]
    images = {} if encoder is None else {"encoder": encoder}
    return kind(obs_dim, act_dim, getattr(config, kind.settings_key), device=device, **images)


def check_observation(config: RunConfig, observation: ObservationSpec) -> None:
    """Raise a BorlError where `config` cannot build an agent for these observations (a run checks
    before it makes D0, the agent again when built)."""
    images = observation.has_images
    if images and config.uses_critic and CRITICS[config.critic.kind].samples_needed(config.critic) > 0:
        raise BorlError(f"critic.kind={config.critic.kind} with policy samples is not built for image tasks")
    if config.uses_critic and config.critic.share_encoder and not images:
        raise BorlError(f"critic.share_encoder needs an image task: {config.task} has no cameras")


class Agent:
    """What acts in the world: pi (and Q when the algorithm has one) behind the data's normalisation."""

    def __init__(
        self,
        config: RunConfig,
        obs_dim: int,
        act_dim: int,
        normalizer: Normalizer,
        device: str = "cpu",
        observation: ObservationSpec | None = None,
    ) -> None:
        """obs_dim counts the low-dim values (the normaliser's); `observation` adds an image task's
        cameras, and then the policy gets an image encoder and the critic its own, or with
        critic.share_encoder reads the policy's (docs/images.md)."""
        self.config = config
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.normalizer = normalizer
        self.device = torch.device(device)
        self.observation = observation or ObservationSpec(obs_dim)
        if self.observation.low_dim != obs_dim:
            raise BorlError(f"observation spec has {self.observation.low_dim} low-dim values, not {obs_dim}")
        check_observation(config, self.observation)
        images = self.observation.has_images
        network_dim = self.observation.network_dim(config.encoder.crop)
        critic = CRITICS[config.critic.kind]
        shares = config.uses_critic and config.critic.share_encoder
        # The policy's image encoder: what a critic that shares it reads (None on a low-dim task).
        self.encoder = self._encoder() if images else None
        self.policy = make_policy(config, network_dim, act_dim, device, self.encoder)
        self.critic = None
        if config.uses_critic:
            extra = {}
            if shares:
                extra = {"encoder": self.encoder, "train_encoder": False}
            elif images:
                extra = {"encoder": self._encoder()}
            self.critic = critic(network_dim, act_dim, config.critic, device=device, **extra)

    def keep_policy(self, other: Agent) -> None:
        """Act with `other`'s policy (steering's, frozen after D0) in place of this agent's own; a
        critic that shares the policy's encoder then reads that policy's."""
        self.policy, self.encoder = other.policy, other.encoder
        if self.critic is not None and self.config.critic.share_encoder:
            self.critic.encoder = other.encoder

    def _encoder(self) -> nn.Module:
        return ObservationEncoder(self.observation, self.config.encoder).to(self.device)

    def observation_tensor(self, obs: np.ndarray) -> torch.Tensor:
        """Packed observations (B, packed_dim), as environments return them -> the networks' rows:
        low-dim values normalised, pictures centre-cropped (borl/data/observations.py)."""
        if not self.observation.has_images:
            return torch.as_tensor(self.normalizer.normalize_obs(obs), device=self.device)
        low, images = self.observation.split(obs)
        low_t = torch.as_tensor(self.normalizer.normalize_obs(low), device=self.device)
        pictures = centre_crop(channels_first(images), self.config.encoder.crop).to(self.device)
        return network_rows(low_t, pictures)

    @property
    def extraction(self) -> ExtractionConfig:
        return self.config.extraction

    def act(self, obs: np.ndarray, generators: list[torch.Generator], extract: bool = True) -> np.ndarray:
        """Actions in the environment's units for a batch of observations, one generator per row.

        Each row's randomness comes only from its own generator, so an episode is reproducible from its
        seed whatever other episodes share the batch. Implicit extraction picks among candidates with
        the critic; AWR and no extraction act with one plain policy sample, as does extract=False (the
        policy without extraction, for comparison).
        """
        implicit = extract and self.extraction.at_rollout
        obs_t = self.observation_tensor(obs)
        candidates = self.policy.sample(obs_t, self._noise(generators, implicit))
        if implicit:
            x = self.extraction
            uniforms = torch.stack([torch.rand((), generator=g) for g in generators]).to(self.device)
            chosen = best_of_n(
                candidates, obs_t, self.critic, x.temperature, uniforms, x.safety_k, x.safety_margin
            )
        else:
            chosen = candidates[:, 0]
        return self.normalizer.denormalize_actions(chosen.cpu().numpy())

    def _noise(self, generators: list[torch.Generator], implicit: bool) -> torch.Tensor:
        """The policy's sampling noise, one row per generator: candidate 0 is drawn first and alone,
        so that with the same generator state it is the very sample the policy acts with alone."""
        shapes = [self.policy.noise_shape(1)]
        if implicit and self.extraction.candidates > 1:
            shapes.append(self.policy.noise_shape(self.extraction.candidates - 1))
        rows = [torch.cat([torch.randn(shape, generator=g) for shape in shapes]) for g in generators]
        return torch.stack(rows).to(self.device)

    @torch.no_grad()
    def propose(
        self, obs: np.ndarray, count: int, generator: torch.Generator, chunk: int = 4096
    ) -> np.ndarray:
        """`count` policy samples per observation, in the environment's units: (B, count, act_dim)."""
        out = []
        for start in range(0, len(obs), chunk):
            obs_t = self.observation_tensor(obs[start : start + chunk])
            noise = torch.randn((len(obs_t), *self.policy.noise_shape(count)), generator=generator)
            sampled = self.policy.sample(obs_t, noise.to(self.device)).cpu().numpy()
            out.append(self.normalizer.denormalize_actions(sampled))
        return np.concatenate(out)

    def selection_stats(self, obs: np.ndarray, seed: int) -> dict[str, float]:
        """How implicit extraction uses the critic on these observations (seeded): see
        borl.extraction.implicit.selection_stats."""
        generator = torch.Generator().manual_seed(seed)
        obs_t = self.observation_tensor(obs)
        candidates = self.policy.sample(obs_t, self._noise([generator] * len(obs), implicit=True))
        x = self.extraction
        uniforms = torch.rand(len(obs), generator=generator).to(self.device)
        index = choose_index(
            candidates, obs_t, self.critic, x.temperature, uniforms, x.safety_k, x.safety_margin
        )
        return selection_stats(candidates, obs_t, self.critic, index)

    def save(self, directory: Path) -> None:
        """Write the checkpoint atomically: a directory that exists is complete."""
        with atomic_path(directory) as tmp:
            tmp.mkdir()
            self._write_checkpoint(tmp)

    def _write_checkpoint(self, tmp: Path) -> None:
        state = {"policy": self.policy.state_dict()}
        if self.critic is not None:
            state["critic"] = self.critic.state_dict()
        torch.save(state, tmp / "weights.pt")
        meta = {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "task": self.config.task,
            "normalizer": self.normalizer.state_dict(),
            "observation": self.observation.to_dict(),
        }
        (tmp / "agent.json").write_text(json.dumps(meta))
        (tmp / "config.json").write_text(json.dumps(asdict(self.config)))

    @classmethod
    def load(
        cls,
        directory: Path,
        config: RunConfig | None = None,
        device: str = "cpu",
        extraction: ExtractionConfig | None = None,
    ) -> Agent:
        """The agent saved in `directory`. The checkpoint holds everything needed to rebuild it (its
        run's config, sizes, normaliser and weights); `config` replaces the saved config (a run
        evaluating under other settings) and `extraction` replaces only how it acts."""
        try:
            meta = json.loads((directory / "agent.json").read_text())
            saved = json.loads((directory / "config.json").read_text()) if config is None else None
            state = torch.load(directory / "weights.pt", map_location=device, weights_only=True)
        except (OSError, ValueError, RuntimeError) as error:
            raise BorlError(f"cannot load checkpoint {directory}: {error}") from None
        if config is None:
            config = merge(RunConfig(), saved)
        if extraction is not None:
            config = replace(config, extraction=extraction)
        agent = cls(
            config,
            meta["obs_dim"],
            meta["act_dim"],
            Normalizer.from_state_dict(meta["normalizer"]),
            device=device,
            observation=ObservationSpec.from_dict(meta.get("observation", {"low_dim": meta["obs_dim"]})),
        )
        agent.policy.load_state_dict(state["policy"])
        if agent.critic is not None:
            agent.critic.load_state_dict(state["critic"])
        return agent


def checkpoint_id(directory: Path) -> str:
    """A short content hash of a checkpoint's weights: what recordings name as the agent that acted,
    so that ingestion can tell this run's checkpoints from any other's."""
    digest = hashlib.sha256()
    with open(directory / "weights.pt", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
