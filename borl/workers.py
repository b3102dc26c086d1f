"""What every borl worker process needs: a blocking read that gives up when the parent is gone."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue


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
