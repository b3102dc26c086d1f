"""The agent as a robot meets it, with or without a network in between: which checkpoint acts, and
one episode's acting state (its random generator and its OU noise)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from borl.agent import Agent, checkpoint_id
from borl.envs.registry import get_task
from borl.errors import BorlError
from borl.robot.base import RobotSpec
from borl.robot.sim import SIM_CONTROL_HZ
from borl.rollout.noise import OUNoise
from borl.run_directory import RunDirectory


@dataclass(frozen=True)
class Served:
    """A loaded checkpoint: the agent, its run, iteration and content id, and whether it acts with
    implicit extraction as its run deployed it (not before extraction.from_iteration, nor where its
    gate failed)."""

    agent: Agent
    run: str
    iteration: int | None
    checkpoint: str
    checkpoint_id: str
    extract: bool = True

    def spec(self) -> RobotSpec:
        task = get_task(self.agent.config.task).spec
        return RobotSpec.of_task(task, task.name, self.agent.act_dim, SIM_CONTROL_HZ, task.horizon)

    def describe(self) -> dict:
        """What a client is told about the agent acting for it."""
        spec = self.spec()
        return {
            "task": spec.name,
            "obs_keys": [[key, size] for key, size in spec.obs_keys],
            "obs_dim": spec.obs_dim,
            "cameras": list(spec.cameras),
            "image_size": spec.image_size,
            "action_dim": spec.act_dim,
            "control_hz": spec.control_hz,
            "horizon": spec.horizon,
            "run": self.run,
            "iteration": self.iteration,
            "checkpoint": self.checkpoint,
            "checkpoint_id": self.checkpoint_id,
            "extraction": self.agent.extraction.kind if self.extract else "none",
            "candidates": self.agent.extraction.candidates if self.extract else 1,
        }


def _iteration_of(path: Path) -> int | None:
    name = path.name
    if name.startswith("iter_") and name[5:].isdigit():
        return int(name[5:])
    return None


class AgentSource:
    """The checkpoint to serve from a run directory (its latest, or a fixed iteration) or from a
    checkpoint directory itself. `refresh` loads a newer checkpoint of the run, if any."""

    def __init__(self, directory: Path, iteration: int | None = None, device: str = "cpu") -> None:
        self.directory = Path(directory)
        self.fixed = iteration
        self.device = device
        self._lock = threading.Lock()
        if (self.directory / "agent.json").exists():
            if iteration is not None:
                raise BorlError(f"{directory} is a checkpoint directory: --iteration applies to runs")
            self.fixed = _iteration_of(self.directory)
            self._served = self._load(self.directory)
            return
        if not (self.directory / "checkpoints").is_dir():
            raise BorlError(f"{directory} is neither a run directory nor a checkpoint (no checkpoints/)")
        target = self._checkpoint_dir(iteration) if iteration is not None else self._latest()
        if target is None:
            raise BorlError(
                f"{directory} has no checkpoint to serve yet: `borl train {directory}` first "
                "(or, in a run with a gate, let the gate finish)"
            )
        self._served = self._load(target)

    def _checkpoint_dir(self, iteration: int) -> Path:
        path = self.directory / "checkpoints" / f"iter_{iteration:03d}"
        if not (path / "agent.json").exists():
            raise BorlError(f"{self.directory} has no checkpoint for iteration {iteration}")
        return path

    def _latest(self) -> Path | None:
        """The newest deployed checkpoint: trained, and past its gate where the run has one."""
        done = [p for p in (self.directory / "checkpoints").glob("iter_*") if (p / "agent.json").exists()]
        done = sorted((p for p in done if _iteration_of(p) is not None), key=_iteration_of, reverse=True)
        if not done or not (self.directory / "config.yaml").exists():
            return done[0] if done else None
        # Newest first, reading a gate's episodes only until one has deployed (--follow asks every reset).
        run = RunDirectory.open(self.directory)
        return next((p for p in done if not run.gate_pending(_iteration_of(p))), None)

    def _load(self, path: Path) -> Served:
        run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        agent = Agent.load(path, device=self.device)
        iteration = _iteration_of(path)
        if iteration is None:
            extract = agent.extraction.at_rollout
        elif (run / "config.yaml").exists():  # as the run deployed it (from_iteration, its gate)
            extract = RunDirectory.open(run).extracts(iteration)
        else:  # a checkpoint outside its run: no gate to read
            extract = agent.extraction.extracts_at(iteration)
        return Served(agent, str(run.resolve()), iteration, path.name, checkpoint_id(path), extract)

    @property
    def current(self) -> Served:
        with self._lock:
            return self._served

    def refresh(self) -> bool:
        """Load the run's newest checkpoint if it is newer than the one served; True if it changed."""
        if self.fixed is not None:
            return False
        latest = self._latest()
        if latest is None or _iteration_of(latest) == self.current.iteration:
            return False
        served = self._load(latest)
        with self._lock:
            self._served = served
        return True


class ActingEpisode:
    """One episode's acting state: the agent it started with (a newer checkpoint never takes over
    mid-episode), its generator and its OU noise."""

    def __init__(self, served: Served, seed: int, ou_sigma: float, ou_theta: float) -> None:
        self.served = served
        self.spec = served.spec()
        self.generator = torch.Generator().manual_seed(seed)
        self.noise = OUNoise(served.agent.act_dim, ou_sigma, ou_theta, np.random.default_rng(seed))
        self.seed = seed
        self.steps = 0

    @classmethod
    def start(
        cls, served: Served, requested: object, fallback: int, ou_sigma: float, ou_theta: float
    ) -> ActingEpisode:
        """An episode seeded as the client asked (`requested`; None: `fallback`)."""
        return cls(served, episode_seed_from(requested, fallback), ou_sigma, ou_theta)

    def ready(self) -> dict:
        """The "ready" message: what acts for this episode, its seed and its OU sigma."""
        return {"type": "ready", "seed": self.seed, "ou_sigma": self.noise.sigma, **self.served.describe()}

    def observation(self, obs: object) -> np.ndarray:
        """A flat float32 observation from a flat array or a map key -> array; bad input is a BorlError."""
        if isinstance(obs, dict):
            flat = self.spec.flatten(obs)
        elif isinstance(obs, np.ndarray):
            if obs.dtype.kind not in "iuf":
                raise BorlError(f"obs must be numeric, got dtype {obs.dtype}")
            flat = obs.astype(np.float32).reshape(-1)
            if flat.shape != (self.spec.obs_dim,):
                raise BorlError(
                    f"obs has {flat.size} values, expected {self.spec.obs_dim} ({self.spec.key_names()})"
                )
        else:
            raise BorlError("obs must be an array or a map of arrays")
        if not np.all(np.isfinite(flat)):
            raise BorlError("obs has NaN or infinite values")
        return flat

    def act(self, flat: np.ndarray) -> np.ndarray:
        """The deployed agent's action (its extraction, plus this episode's OU noise), in [-1, 1]."""
        return act_together([self], [flat])[0]


def act_together(episodes: list[ActingEpisode], observations: list[np.ndarray]) -> list[np.ndarray]:
    """One action per episode, episodes of the same agent acting in one batch. Each row's randomness
    comes from its own episode's generator, so batching changes only floating-point rounding."""
    actions: list[np.ndarray | None] = [None] * len(episodes)
    groups: dict[int, list[int]] = {}
    for row, episode in enumerate(episodes):
        groups.setdefault(id(episode.served.agent), []).append(row)
    for rows in groups.values():
        served = episodes[rows[0]].served
        obs = np.stack([observations[row] for row in rows])
        chosen = served.agent.act(obs, [episodes[row].generator for row in rows], extract=served.extract)
        for row, action in zip(rows, chosen, strict=True):
            episode = episodes[row]
            episode.steps += 1
            actions[row] = np.clip(action + episode.noise(), -1.0, 1.0).astype(np.float32)
    return actions


def episode_seed_from(value: object, fallback: int) -> int:
    """A client's seed as an int in [0, 2**63), or the fallback; a bad value is a BorlError."""
    if value is None:
        return fallback
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise BorlError("seed must be a non-negative integer below 2**63")
    return value
