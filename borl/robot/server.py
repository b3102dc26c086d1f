"""`borl serve`: the deployed agent behind a websocket, for robots (and their control loops) elsewhere.

One connection is one robot. On connect the server sends the spec; then "reset" starts an episode
(fresh generator and OU noise, the newest checkpoint if a reload was asked for) and each "act" gets
the deployed action. Bad input gets an "error" message and the connection stays open; a message over
the size limit closes that connection (code 1009); nothing a client sends stops the others. Acting
runs on one worker thread, so the event loop keeps answering health checks and other clients.
`GET /healthz` on the same port answers plain HTTP. Binds to localhost unless told otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import numpy as np
import torch
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from borl.errors import BorlError
from borl.robot.policy import ActingEpisode, AgentSource, act_together
from borl.robot.protocol import ProtocolError, error_message, pack, unpack

log = logging.getLogger("borl.serve")


@dataclass(frozen=True)
class ServerSettings:
    """How the server listens and what it allows.

    max_message_bytes bounds one incoming message (an 84x84 RGB image is 21 KB; 1 MiB leaves room for
    several cameras); ping_interval and ping_timeout close a connection whose client stops answering.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    max_clients: int = 8
    max_message_bytes: int = 1 << 20
    ou_sigma: float | None = None
    threads: int = 1
    ping_interval: float = 5.0
    ping_timeout: float = 10.0
    follow: bool = False
    max_batch: int = 8


class ActionBatcher:
    """Acts for the connections waiting: while one batch runs on the worker thread, requests queue,
    and the next batch takes up to max_batch of them at once (max_batch 1: one at a time)."""

    def __init__(self, pool: ThreadPoolExecutor, max_batch: int) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.pending: list[tuple[ActingEpisode, np.ndarray, asyncio.Future]] = []
        self.running = False

    async def act(self, episode: ActingEpisode, flat: np.ndarray) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((episode, flat, future))
        if not self.running:
            self.running = True
            asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                episodes, observations, futures = zip(*batch, strict=True)
                try:
                    actions = await loop.run_in_executor(
                        self.pool, act_together, list(episodes), list(observations)
                    )
                except Exception as error:  # reaches each waiting client's handler
                    for future in futures:
                        future.set_exception(error)
                    continue
                for future, action in zip(futures, actions, strict=True):
                    future.set_result(action)
        finally:
            self.running = False


class PolicyServer:
    """Serves one AgentSource to many clients; see the module docstring for the protocol."""

    def __init__(self, source: AgentSource, settings: ServerSettings) -> None:
        self.source = source
        self.settings = settings
        config = source.current.agent.config
        self.ou_sigma = config.ou_sigma if settings.ou_sigma is None else settings.ou_sigma
        self.ou_theta = config.ou_theta
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="borl-act", initializer=self._init)
        self.batcher = ActionBatcher(self.pool, settings.max_batch)
        self.clients = 0
        self.actions = 0
        self.episodes = 0
        self.reload_requested = False
        self.started = time.monotonic()

    def _init(self) -> None:
        torch.set_num_threads(self.settings.threads)

    def _authorised(self, request: Request) -> bool:
        token = self.settings.token
        if token is None:
            return True
        if request.headers.get("Authorization") == f"Bearer {token}":
            return True
        return parse_qs(urlsplit(request.path).query).get("token") == [token]

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Health checks, the token and the connection limit, before any websocket handshake."""
        path = urlsplit(request.path).path
        if path == "/healthz":
            served = self.source.current
            body = {
                "status": "ok",
                "run": served.run,
                "iteration": served.iteration,
                "checkpoint_id": served.checkpoint_id,
                "clients": self.clients,
                "episodes": self.episodes,
                "actions": self.actions,
                "uptime_s": round(time.monotonic() - self.started, 1),
            }
            response = connection.respond(HTTPStatus.OK, json.dumps(body) + "\n")
            response.headers["Content-Type"] = "application/json"
            return response
        if not self._authorised(request):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "a valid token is required\n")
        if self.clients >= self.settings.max_clients:
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, f"too many clients (at most {self.settings.max_clients})\n"
            )
        return None

    async def handler(self, connection: ServerConnection) -> None:
        self.clients += 1
        peer = connection.remote_address
        log.info("client %s connected (%d now)", peer, self.clients)
        try:
            await connection.send(pack({"type": "spec", **self.source.current.describe()}))
            episode: ActingEpisode | None = None
            async for raw in connection:
                try:
                    reply, episode = await self._answer(raw, episode)
                except BorlError as error:  # ProtocolError included: tell this client, keep serving
                    reply = error_message(str(error))
                await connection.send(reply)
        except ConnectionClosed:
            pass
        finally:
            self.clients -= 1
            log.info("client %s left (%d now)", peer, self.clients)

    async def _answer(
        self, raw: bytes | str, episode: ActingEpisode | None
    ) -> tuple[bytes, ActingEpisode | None]:
        message = unpack(raw)
        kind = message["type"]
        loop = asyncio.get_running_loop()
        if kind == "reset":
            if self.settings.follow or self.reload_requested:
                self.reload_requested = False
                if await loop.run_in_executor(self.pool, self.source.refresh):
                    log.info("now serving %s", self.source.current.checkpoint)
            episode = ActingEpisode.start(
                self.source.current, message.get("seed"), self.episodes, self.ou_sigma, self.ou_theta
            )
            self.episodes += 1
            return pack(episode.ready()), episode
        if kind == "act":
            if episode is None:
                raise ProtocolError('send "reset" to start an episode before "act"')
            if "obs" not in message:
                raise ProtocolError('"act" needs "obs"')
            flat = episode.observation(message["obs"])
            start = time.perf_counter()
            action = await self.batcher.act(episode, flat)
            self.actions += 1
            compute_ms = (time.perf_counter() - start) * 1000
            return pack(
                {
                    "type": "action",
                    "action": action,
                    "step": episode.steps,
                    "iteration": episode.served.iteration,
                    "compute_ms": compute_ms,
                }
            ), episode
        raise ProtocolError(f'unknown message type "{kind}" (known: reset, act)')

    async def serve(self) -> None:
        """Serve until SIGINT or SIGTERM; SIGHUP asks for the newest checkpoint at the next episode."""
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        s = self.settings
        async with serve(
            self.handler,
            s.host,
            s.port,
            process_request=self.process_request,
            max_size=s.max_message_bytes,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
            compression=None,
        ) as server:
            port = server.sockets[0].getsockname()[1]
            served = self.source.current
            print(
                f"serving {served.checkpoint} of {served.run} on ws://{s.host}:{port} "
                f"(health: http://{s.host}:{port}/healthz)",
                flush=True,
            )
            await stop
        self.pool.shutdown(wait=False)

    def _request_reload(self) -> None:
        self.reload_requested = True
        log.info("reload asked for: the newest checkpoint serves from the next episode")
