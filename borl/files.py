"""Checks on where a command will write, made before any work that could be lost."""

from __future__ import annotations

import os
from pathlib import Path

from borl.errors import BorlError


def ensure_writable_directory(directory: Path, what: str) -> None:
    """Create `directory` (and its parents) and prove it writable with a small fsynced file, or raise
    one BorlError naming `what` and the reason (a file in the way, permission, read-only, no space)."""
    if directory.exists() and not directory.is_dir():
        raise BorlError(f"cannot use {directory} as {what}: it is a file")
    probe = directory / ".borl-write-test"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok\n")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as error:
        raise BorlError(f"cannot write {what} {directory}: {error.strerror or error}") from None


def ensure_writable_file(path: Path, what: str) -> None:
    """The folder of `path` can be written and `path` is not a directory; raises one BorlError if not."""
    if path.is_dir():
        raise BorlError(f"cannot write {what} {path}: it is a directory")
    ensure_writable_directory(path.parent, f"the folder of {what}")
