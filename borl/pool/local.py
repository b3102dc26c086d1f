"""The pool's workers on this machine: spawned processes, or one thread of this process."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

from borl.errors import BorlError
from borl.pool.base import Message, Pool, Work, serve_phases, wait_for


def _get_while_parent_lives(source: mp.Queue) -> Any:
    """The next item; exits the process at once when the parent is gone (no orphaned workers).

    os._exit skips flushing queued results into a pipe that nobody reads any more, which would
    otherwise block the exit forever.
    """
    parent = mp.parent_process()
    while True:
        if parent is not None and not parent.is_alive():
            os._exit(0)
        try:
            return source.get(timeout=1.0)
        except queue.Empty:
            continue


def _process_main(factory: Callable[[], Work], inbox: mp.Queue, jobs: mp.Queue, results: mp.Queue) -> None:
    """A worker process: one torch thread (the workers share the cores), Ctrl-C left to the parent."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    serve_phases(
        factory,
        lambda: _get_while_parent_lives(inbox),
        lambda: _get_while_parent_lives(jobs),
        results.put,
    )


class ProcessPool(Pool):
    """`size` spawned processes of this machine."""

    def __init__(self, factory: Callable[[], Work], size: int, kind: str) -> None:
        super().__init__(kind, size)
        context = mp.get_context("spawn")
        self.jobs: mp.Queue = context.Queue()
        self.results: mp.Queue = context.Queue()
        self.workers: list[tuple[mp.Process, mp.Queue]] = []
        for _ in range(size):
            inbox = context.Queue()
            process = context.Process(
                target=_process_main, args=(factory, inbox, self.jobs, self.results), daemon=True
            )
            process.start()
            self.workers.append((process, inbox))

    def _begin(self, context: Any) -> None:
        for _, inbox in self.workers:
            inbox.put(context)

    def _put_job(self, item: tuple[int, Any] | None) -> None:
        self.jobs.put(item)

    def _get(self) -> Message:
        return wait_for(lambda seconds: self.results.get(timeout=seconds), queue.Empty, 5.0, self._alive)

    def _alive(self) -> None:
        dead = [p for p, _ in self.workers if not p.is_alive()]
        if dead:
            raise BorlError(f"a {self.kind} worker died (exit code {dead[0].exitcode})")

    def close(self, graceful: bool = True) -> None:
        for process, inbox in self.workers:
            if graceful and process.is_alive():
                inbox.put(None)
        for process, _ in self.workers:
            process.join(timeout=10 if graceful else 0)
            if process.is_alive():
                process.terminate()
                process.join()
        self.workers = []


class ThreadPool(Pool):
    """One worker on a thread of this process (no copies of the environments' memory, no start-up)."""

    def __init__(self, factory: Callable[[], Work], kind: str) -> None:
        super().__init__(kind, 1)
        self.inbox: queue.Queue = queue.Queue()
        self.jobs: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.thread = threading.Thread(
            target=serve_phases, args=(factory, self.inbox.get, self.jobs.get, self.results.put), daemon=True
        )
        self.thread.start()

    def _begin(self, context: Any) -> None:
        self.inbox.put(context)

    def _put_job(self, item: tuple[int, Any] | None) -> None:
        self.jobs.put(item)

    def _get(self) -> Message:
        return wait_for(lambda seconds: self.results.get(timeout=seconds), queue.Empty, 1.0, self._alive)

    def _alive(self) -> None:
        if not self.thread.is_alive():
            raise BorlError(f"the {self.kind} worker thread ended")

    def close(self, graceful: bool = True) -> None:
        if not graceful:  # a thread cannot be stopped: take its jobs, end its phase
            while True:
                try:
                    self.jobs.get_nowait()
                except queue.Empty:
                    break
            self.jobs.put(None)
        self.inbox.put(None)
        self.thread.join(timeout=60 if graceful else 0)
