"""Where borl writes: checks made before any work that could be lost, and the one atomic write that
every file and checkpoint of a run goes through."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from borl.errors import BorlError

# Temporary names begin with a dot and end in TEMPORARY_SUFFIX, so no listing of a run's files sees them.
TEMPORARY_SUFFIX = ".tmp"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write a file or a directory at; when the block ends without an
    error, its contents are fsynced, it is renamed to `path` (replacing what was there) and the
    folder is fsynced, so after a crash `path` is the old version or the whole new one. On an error
    the temporary is removed.

    A directory replaces an existing one in two steps (remove, rename): a crash between them leaves
    no directory, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")
    try:
        yield tmp
        if tmp.is_dir():
            for child in tmp.iterdir():
                _fsync(child)
            if path.exists():
                shutil.rmtree(path)
        else:
            _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` (text or bytes) to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)


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
