"""What a control loop acts through: the policy server over a websocket, or the agent in-process.

Both answer the same three calls, so a control loop (borl/robot/drive.py, or a user's own) does not
care which: `describe` (the spec), `start_episode(seed)` and `act(obs)`.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Protocol

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.sync.client import connect

from borl.errors import BorlError
from borl.robot.policy import ActingEpisode, AgentSource
from borl.robot.protocol import pack, unpack


class ActingPolicy(Protocol):
    def describe(self) -> dict: ...

    def start_episode(self, seed: int | None = None) -> dict: ...

    def act(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray: ...

    def close(self) -> None: ...


class PolicyClient:
    """A connection to `borl serve`; every failure is a BorlError with one line."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.timeout = timeout
        self._closing = ExitStack()
        try:
            self.connection = self._closing.enter_context(
                connect(
                    url, additional_headers=headers, open_timeout=timeout, max_size=None, compression=None
                )
            )
        except InvalidStatus as error:
            body = error.response.body.decode(errors="replace").strip()
            raise BorlError(f"the server at {url} refused: {error.response.status_code} {body}") from None
        except InvalidURI:
            raise BorlError(f"not a websocket address: {url} (e.g. ws://127.0.0.1:8765)") from None
        except (OSError, TimeoutError) as error:
            raise BorlError(f"cannot connect to {url}: {error}") from None
        self.url = url
        self.spec = self._receive("spec")

    def _receive(self, expected: str) -> dict:
        try:
            message = unpack(self.connection.recv(timeout=self.timeout))
        except ConnectionClosed as error:
            raise BorlError(f"the server at {self.url} closed the connection ({error})") from None
        except TimeoutError:
            raise BorlError(f"no answer from {self.url} within {self.timeout:.0f} s") from None
        if message["type"] == "error":
            raise BorlError(f"the server says: {message.get('message')}")
        if message["type"] != expected:
            raise BorlError(f'expected "{expected}" from the server, got "{message["type"]}"')
        return message

    def _send(self, message: dict) -> None:
        try:
            self.connection.send(pack(message))
        except ConnectionClosed as error:
            raise BorlError(f"the server at {self.url} closed the connection ({error})") from None

    def describe(self) -> dict:
        return self.spec

    def start_episode(self, seed: int | None = None) -> dict:
        self._send({"type": "reset", **({} if seed is None else {"seed": seed})})
        return self._receive("ready")

    def act(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        self._send({"type": "act", "obs": obs})
        return np.asarray(self._receive("action")["action"], dtype=np.float32)

    def close(self) -> None:
        self._closing.close()


class LocalPolicy:
    """The agent of a run (or checkpoint) directory acting in this process, as the server would."""

    def __init__(self, directory: Path, iteration: int | None = None, ou_sigma: float | None = None) -> None:
        self.source = AgentSource(directory, iteration)
        config = self.source.current.agent.config
        self.ou_sigma = config.ou_sigma if ou_sigma is None else ou_sigma
        self.ou_theta = config.ou_theta
        self.episode: ActingEpisode | None = None
        self.episodes = 0

    def describe(self) -> dict:
        return self.source.current.describe()

    def start_episode(self, seed: int | None = None) -> dict:
        self.episode = ActingEpisode.start(
            self.source.current, seed, self.episodes, self.ou_sigma, self.ou_theta
        )
        self.episodes += 1
        return self.episode.ready()

    def act(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        if self.episode is None:
            raise BorlError("start_episode before act")
        return self.episode.act(self.episode.observation(obs))

    def close(self) -> None:
        self.episode = None
