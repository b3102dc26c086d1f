"""Recording a robot's episodes into robomimic's HDF5 layout, each episode durable as it ends.

`EpisodeRecorder` is the library call for a user's own control loop: `begin` at the start of an
episode with what acted (the server's "ready" message), `step` after each action, `end` with the
success label. Only `end` writes, and it writes crash-safely (borl.formats.robomimic.append_robomimic),
so a recording killed at any moment loses at most the episode in progress.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from borl.data.episode import Episode, Lineage
from borl.envs.base import TaskSpec
from borl.envs.registry import get_task
from borl.errors import BorlError
from borl.files import ensure_writable_file
from borl.formats.robomimic import append_robomimic, demo_attributes


class EpisodeRecorder:
    """Appends episodes to one robomimic file (creating it, or adding to an existing recording)."""

    def __init__(self, path: str | Path, task: str, robot: str) -> None:
        self.path = Path(path)
        ensure_writable_file(self.path, "the recording")
        self.spec: TaskSpec = get_task(task).spec
        self.robot = robot
        self.env_args = {"env_name": self.spec.env_name, "type": None, "env_kwargs": {}, "robot": robot}
        self._episode: dict | None = None
        self.written = len(demo_attributes(self.path)) if self.path.exists() else 0

    def begin(self, first_obs: np.ndarray, acting: dict) -> None:
        """Start an episode at observation `first_obs`; `acting` says what acts (run, iteration,
        checkpoint, checkpoint_id, seed, ou_sigma: the server's "ready" message)."""
        self._episode = {
            "acting": acting,
            "obs": [np.asarray(first_obs, dtype=np.float32)],
            "actions": [],
            "timestamps": [time.time()],
        }

    def step(self, action: np.ndarray, next_obs: np.ndarray) -> None:
        """Record one action and the observation that followed it."""
        if self._episode is None:
            raise BorlError("EpisodeRecorder.step before begin")
        self._episode["actions"].append(np.asarray(action, dtype=np.float32))
        self._episode["obs"].append(np.asarray(next_obs, dtype=np.float32))
        self._episode["timestamps"].append(time.time())

    def end(self, success: bool) -> int:
        """Write the episode with its success label; returns its demo index in the file. An episode
        of no steps is dropped (returns -1)."""
        if self._episode is None:
            raise BorlError("EpisodeRecorder.end before begin")
        recorded, self._episode = self._episode, None
        steps = len(recorded["actions"])
        if steps == 0:
            return -1
        acting = recorded["acting"]
        rewards = np.zeros(steps, dtype=np.float32)
        rewards[-1] = float(success)
        iteration = acting.get("iteration")
        observations, images = self.spec.observation.split(np.stack(recorded["obs"]))
        episode = Episode(
            observations=observations,
            images=images,
            actions=np.stack(recorded["actions"]),
            rewards=rewards,
            terminated=bool(success),
            success=bool(success),
            lineage=Lineage(
                "robot",
                (iteration or 0) + 1,
                self.written,
                checkpoint=acting.get("checkpoint"),
                seed=acting.get("seed"),
                noise=float(acting.get("ou_sigma") or 0.0),
            ),
        )
        recording = {
            key: acting.get(key) for key in ("run", "iteration", "checkpoint", "checkpoint_id", "task")
        }
        index = append_robomimic(
            self.path,
            episode,
            self.spec,
            self.env_args,
            extra={"recording": {**recording, "robot": self.robot}},
            datasets={"timestamps": np.asarray(recorded["timestamps"], dtype=np.float64)},
        )
        self.written += 1
        return index
