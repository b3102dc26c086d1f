"""One worker pool for borl's parallel work (episodes collected, demonstrations attempted): workers
built once, each serving phases of jobs, on a thread of this process, on processes of this machine,
or on Ray actors (borl/pool/ray_actors.py); the same jobs give the same results on every one.

A worker holds a `Work` (its environments, and what a phase's context loads into them) and, in each
phase, pulls jobs from one queue shared by all workers until it receives the end of the phase, so a
worker with free environments takes the next job at once. Results come back tagged with their job's
place, and are delivered in job order when the caller asks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from borl.errors import BorlError

# A worker's message to the pool: ("result", job's place, result), ("done", None, None) at the end of
# a phase, or ("error", None, text) when its work raised.
Message = tuple[str, int | None, Any]
_END = object()


class Work(Protocol):
    """What one worker does: built once in the worker, then serving one phase per context."""

    def serve(
        self, context: Any, next_job: Callable[[], Any | None], emit: Callable[[Any, Any], None]
    ) -> None:
        """Run jobs from next_job() until it returns None, calling emit(job, result) as each finishes."""

    def close(self) -> None:
        """Release what the worker holds (environments)."""


def serve_phase(work: Work, context: Any, get_job: Callable[[], Any], put: Callable[[Message], None]) -> None:
    """One phase of `work` on jobs (place, job) from get_job() until None; each result put tagged."""
    taken: list[tuple[Any, int]] = []
    ended = False

    def next_job() -> Any | None:
        nonlocal ended
        if ended:  # the end of the phase is one None per worker: never take another's
            return None
        item = get_job()
        if item is None:
            ended = True
            return None
        place, job = item
        taken.append((job, place))
        return job

    def emit(job: Any, result: Any) -> None:
        index = next(i for i, (held, _) in enumerate(taken) if held is job)
        put(("result", taken.pop(index)[1], result))

    work.serve(context, next_job, emit)
    put(("done", None, None))


def serve_phases(
    factory: Callable[[], Work],
    get_context: Callable[[], Any],
    get_job: Callable[[], Any],
    put: Callable[[Message], None],
) -> None:
    """A worker's life: build the work, serve each phase until the context None, report any error."""
    work = None
    try:
        work = factory()
        while (context := get_context()) is not None:
            serve_phase(work, context, get_job, put)
    except Exception as error:  # reported to the pool, which raises it in the caller
        put(("error", None, f"{type(error).__name__}: {error}"))
    finally:
        if work is not None:
            work.close()


def wait_for(
    get: Callable[[float], Message], empty: type[Exception], seconds: float, check: Callable[[], None]
) -> Message:
    """The next message from get(timeout), calling check() (which raises if a worker is gone) each
    time `seconds` pass without one."""
    while True:
        try:
            return get(seconds)
        except empty:
            check()


class Pool(ABC):
    """Workers built from one factory, running phases of jobs; use as a context manager.

    `kind` names the work in errors ("collection", "demonstration").
    """

    #: Whether workers see this machine's files (a checkpoint can travel as its path).
    shares_files = True

    def __init__(self, kind: str, size: int) -> None:
        self.kind = kind
        self.size = size
        self._unfinished = 0  # workers still in a phase the caller stopped early

    def run(
        self,
        context: Any,
        jobs: Iterable[Any],
        on_result: Callable[[Any], bool | None],
        ahead: int | None = None,
        ordered: bool = False,
    ) -> None:
        """Run `jobs` (taken lazily) with every worker's work loaded with `context`.

        on_result is called here for each result, in job order if `ordered`; when it returns True the
        phase stops: no more jobs are taken, and results still to come are dropped. At most `ahead`
        jobs are out beyond those delivered (None: all at once); a work that waits for more jobs
        before it emits the ones it holds (collection fills all its environments first) needs None.
        """
        self._settle()
        self._begin(context)
        source = iter(jobs)
        submitted = delivered = finished = 0
        exhausted = False
        arrived: dict[int, Any] = {}

        def top_up() -> None:
            nonlocal submitted, exhausted
            while not exhausted and (ahead is None or submitted - delivered < ahead):
                job = next(source, _END)
                if job is _END:
                    exhausted = True
                    self._end_jobs()
                else:
                    self._put_job((submitted, job))
                    submitted += 1

        top_up()
        while finished < self.size:
            kind, place, payload = self._get()
            if kind == "done":
                finished += 1
                continue
            if kind == "error":
                self._unfinished = self.size - finished
                raise BorlError(f"a {self.kind} worker failed: {payload.splitlines()[0]}")
            arrived[place] = payload
            while arrived:
                key = delivered if ordered else next(iter(arrived))
                if key not in arrived:
                    break
                delivered += 1
                if on_result(arrived.pop(key)):
                    if not exhausted:
                        self._end_jobs()
                    self._unfinished = self.size - finished
                    return
            top_up()

    def _settle(self) -> None:
        """Wait out a phase stopped early: its remaining results are dropped."""
        while self._unfinished:
            kind, _, payload = self._get()
            if kind == "error":
                self._unfinished = 0
                raise BorlError(f"a {self.kind} worker failed: {payload.splitlines()[0]}")
            self._unfinished -= kind == "done"

    @abstractmethod
    def _begin(self, context: Any) -> None:
        """Start a phase on every worker."""

    @abstractmethod
    def _put_job(self, item: tuple[int, Any]) -> None: ...

    def _end_jobs(self) -> None:
        for _ in range(self.size):
            self._put_job(None)

    @abstractmethod
    def _get(self) -> Message:
        """The next message from a worker; a BorlError if a worker is gone without a word."""

    @abstractmethod
    def close(self, graceful: bool = True) -> None:
        """Stop the workers: let them finish and exit, or (after an error) stop them now."""

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        self.close(graceful=exc_type is None and not self._unfinished)
