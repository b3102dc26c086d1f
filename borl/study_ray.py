"""A study's grid points as Ray tasks (`borl study --backend ray [--ray-address ADDR]`): each point's
`python -m borl run|resume` process runs inside a task that holds the point's CPUs (its collection
workers), on whichever node of the cluster has them free. The study directory must be on a file
system every node sees at the same path (as a cluster's shared home or scratch is): the runs write
there, and resume from there, exactly as local ones.
"""

from __future__ import annotations

import subprocess
import sys
from typing import IO, Any

from borl.pool.ray_actors import start_ray


def _run_point(args: list[str], log_path: str) -> int:
    """Inside a Ray task: the point's process, its output appended to its log; returns its exit code."""
    with open(log_path, "a") as log:
        command = [sys.executable, "-m", "borl", *args]
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        ).returncode


class RayProcess:
    """A grid point's Ray task, seen as the Popen the study's scheduler polls."""

    def __init__(self, ray: Any, ref: Any) -> None:
        self.ray, self.ref = ray, ref
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _ = self.ray.wait([self.ref], timeout=0)
            if ready:
                try:
                    self.returncode = int(self.ray.get(self.ref))
                except self.ray.exceptions.RayError:
                    self.returncode = 1
        return self.returncode

    def terminate(self) -> None:
        if self.returncode is None:
            self.ray.cancel(self.ref, force=True)

    def wait(self) -> int | None:
        self.ray.wait([self.ref])
        return self.poll()


class RayLauncher:
    """Starts grid points as Ray tasks of `cpus` CPUs each, on a local Ray or the cluster at `address`."""

    def __init__(self, cpus: int, address: str | None, local_cpus: int) -> None:
        self.ray, self.started = start_ray(local_cpus, address)
        self.task = self.ray.remote(num_cpus=cpus, max_retries=0)(_run_point)

    def __call__(self, args: list[str], log: IO[str], lock: int) -> RayProcess:
        return RayProcess(self.ray, self.task.remote(args, log.name))

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
