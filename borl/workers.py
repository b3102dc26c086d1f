"""Reading between borl's parent and worker processes: each side notices when the other is gone."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Sequence

from borl.errors import BorlError


def get_while_parent_lives(source: mp.Queue) -> object:
    """The next message; exits the process at once when the parent is gone (no orphaned workers).

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


def get_from_workers(source: mp.Queue, processes: Sequence[mp.Process], kind: str) -> object:
    """The next message from `processes`; a BorlError naming the `kind` of worker if one has died."""
    while True:
        try:
            return source.get(timeout=5.0)
        except queue.Empty:
            dead = [p for p in processes if not p.is_alive()]
            if dead:
                raise BorlError(f"a {kind} worker died (exit code {dead[0].exitcode})") from None
