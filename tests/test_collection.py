"""The worker pool, and collection on it: the same episodes however it is spread (one process,
several, or Ray actors)."""

import itertools
import os
import sys
import time
from functools import partial

import numpy as np
import pytest

from borl.bench import synthetic_agent
from borl.cli import main
from borl.config import build_config
from borl.data.episode import Lineage
from borl.data.store import EpisodeStore
from borl.errors import BorlError
from borl.pool import open_pool
from borl.rollout.collector import Collector, EpisodeJob, episode_seed
from borl.rollout.noise import OUNoise

EPISODES = 5


def collect(collector_class, checkpoint, **overrides):
    config = build_config("recipe", True, {"horizon": 25, "ou_sigma": 0.2, **overrides})
    jobs = [
        EpisodeJob(Lineage("rollout", 1, i, "iter_000", episode_seed(0, "rollout", 1, i), noise=0.2))
        for i in range(EPISODES)
    ]
    episodes = []
    with collector_class(config) as collector:
        collector.run(checkpoint, jobs, episodes.append)
    return sorted(episodes, key=lambda e: e.lineage.index)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("agent") / "iter_000"
    synthetic_agent(build_config("recipe", True), 19, 7).save(path)
    return path


@pytest.fixture(scope="module")
def serial(checkpoint):
    return collect(Collector, checkpoint, workers=1, envs_per_worker=1)


def assert_same(episodes, reference):
    assert [e.lineage for e in episodes] == [e.lineage for e in reference]
    for mine, theirs in zip(episodes, reference, strict=True):
        np.testing.assert_array_equal(mine.actions, theirs.actions)
        np.testing.assert_array_equal(mine.observations, theirs.observations)


def test_lockstep_batch_matches_one_env_at_a_time(checkpoint, serial):
    assert len(serial) == EPISODES and all(len(e) == 25 for e in serial)
    assert_same(collect(Collector, checkpoint, workers=1, envs_per_worker=3), serial)


def test_worker_processes_match_serial(checkpoint, serial):
    assert_same(collect(Collector, checkpoint, workers=2, envs_per_worker=2), serial)


def test_ray_actors_match_serial(checkpoint, serial):
    pytest.importorskip("ray", reason="Ray is installed by scripts/setup.sh")
    assert_same(collect(Collector, checkpoint, workers=2, envs_per_worker=2, backend="ray"), serial)


def test_ou_noise_is_correlated_and_seeded():
    first = OUNoise(3, 0.3, 0.15, np.random.default_rng(1))()
    noise = OUNoise(3, 0.3, 0.15, np.random.default_rng(1))
    series = np.array([noise() for _ in range(2000)])
    np.testing.assert_array_equal(series[0], first)
    lag1 = np.corrcoef(series[:-1, 0], series[1:, 0])[0, 1]
    assert lag1 == pytest.approx(0.85, abs=0.05)
    assert np.all(OUNoise(3, 0.0, 0.15, np.random.default_rng(1))() == 0)


def test_a_dead_worker_is_reported_not_waited_for() -> None:
    # A worker process that exits while building its work: the pool says so instead of waiting.
    with (
        open_pool(partial(os._exit, 3), 2, "demonstration") as pool,
        pytest.raises(BorlError, match="a demonstration worker died \\(exit code 3\\)"),
    ):
        pool.run(None, [1, 2], lambda result: None)


class Doubling:
    """A pool's work that doubles numbers, slower on every third, so results arrive out of order."""

    def serve(self, context, next_job, emit):
        while (job := next_job()) is not None:
            time.sleep(0.05 if job % 3 == 0 else 0.0)
            emit(job, (context, 2 * job))

    def close(self):
        pass


class Failing(Doubling):
    def serve(self, context, next_job, emit):
        raise ValueError(f"bad context {context}")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_pool_delivers_in_job_order_stops_early_and_serves_again(workers):
    with open_pool(Doubling, workers, "test") as pool:
        results = []
        pool.run("a", range(10), results.append, ordered=True)
        assert results == [("a", 2 * i) for i in range(10)]
        taken = []
        # A phase stopped after 4 results from an endless stream; the next phase sees none of it.
        pool.run("b", itertools.count(), lambda r: taken.append(r) or len(taken) == 4, ahead=6, ordered=True)
        assert taken == [("b", 2 * i) for i in range(4)]
        unordered = []
        pool.run("c", range(7), unordered.append)
        assert sorted(unordered) == [("c", 2 * i) for i in range(7)]


def test_a_pool_worker_error_is_one_line():
    with (
        open_pool(Failing, 2, "test") as pool,
        pytest.raises(BorlError, match="a test worker failed: ValueError: bad context x"),
    ):
        pool.run("x", range(3), lambda r: None)
    with pytest.raises(BorlError, match="test workers must be at least 1"):
        open_pool(Doubling, 0, "test")
    with pytest.raises(BorlError, match="unknown backend 'dask'"):
        open_pool(Doubling, 1, "test", "dask")


def test_a_ray_pool_matches_the_local_one():
    ray = pytest.importorskip("ray", reason="Ray is installed by scripts/setup.sh")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import tests
    with open_pool(Doubling, 2, "test", "ray") as pool:
        results = []
        pool.run("a", range(10), results.append, ordered=True)
        assert results == [("a", 2 * i) for i in range(10)]
    with (
        open_pool(Failing, 1, "test", "ray") as pool,
        pytest.raises(BorlError, match="Ray test failed: .*bad context x"),
    ):
        pool.run("x", range(3), lambda r: None)


def test_a_ray_run_starts_ray_once_for_demos_and_collection(tmp_path, monkeypatch):
    import ray

    starts = []
    real_init = ray.init
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: starts.append(1) or real_init(*args, **kwargs))
    out = tmp_path / "run"
    args = ["run", "lift", "--quick", "--quiet", "--demos", "2", "--backend", "ray", "--workers", "2"]
    assert main([*args, "--out", str(out)]) == 0
    store = EpisodeStore(out / "data")
    assert store.indices(0, "demo") == {0, 1} and len(store.load(1, "rollout")) == 4
    assert len(starts) == 1 and not ray.is_initialized()
