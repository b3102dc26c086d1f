"""The episode store: round trips, refuses duplicates, never shows a partial write."""

from dataclasses import replace

import numpy as np
import pytest

from borl.data.episode import Episode, Lineage
from borl.data.store import EpisodeStore, decode_episode, encode_episode
from borl.errors import BorlError
from borl.files import atomic_path, write_atomic


def make_episode(index: int, length: int = 5, success: bool = True, iteration: int = 1) -> Episode:
    rng = np.random.default_rng(index)
    rewards = np.zeros(length, dtype=np.float32)
    rewards[-1] = float(success)
    return Episode(
        observations=rng.normal(size=(length + 1, 4)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(length, 2)).astype(np.float32),
        rewards=rewards,
        terminated=success,
        success=success,
        lineage=Lineage("rollout", iteration, index, checkpoint="iter_000", seed=index, noise=0.1),
        states=rng.normal(size=(length, 7)),
    )


def test_round_trip_keeps_arrays_and_lineage(tmp_path):
    store = EpisodeStore(tmp_path)
    original = make_episode(3)
    store.append(original)
    (loaded,) = store.load()
    for name in ("observations", "actions", "rewards", "states"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
    assert loaded.lineage == original.lineage
    assert loaded.success and loaded.terminated


def test_wire_format_round_trip():
    episode = make_episode(1, success=False)
    decoded = decode_episode(encode_episode(episode))
    assert decoded.lineage == episode.lineage and not decoded.success


def test_duplicate_episode_is_refused(tmp_path):
    store = EpisodeStore(tmp_path)
    store.append(make_episode(0))
    with pytest.raises(BorlError, match="already stored"):
        store.append(make_episode(0))
    assert len(store.load()) == 1


def test_partial_write_is_invisible_and_cleaned(tmp_path):
    store = EpisodeStore(tmp_path)
    store.append(make_episode(0))
    leftover = store.path_of(make_episode(1).lineage).with_name(".rollout_00001.npz.999.tmp")
    leftover.write_bytes(b"half an episode")
    assert [e.lineage.index for e in store.load()] == [0]
    assert store.indices(1, "rollout") == {0}
    assert store.remove_temporary() == 1
    assert not leftover.exists()


def test_order_and_filters(tmp_path):
    store = EpisodeStore(tmp_path)
    for iteration, index in [(2, 1), (1, 10), (1, 2)]:
        store.append(make_episode(index, iteration=iteration))
    assert [(e.lineage.iteration, e.lineage.index) for e in store.load()] == [(1, 2), (1, 10), (2, 1)]
    assert store.indices(1, "rollout") == {2, 10}
    assert store.load(2, "demo") == []


def test_episode_shapes_are_checked():
    with pytest.raises(ValueError, match="disagree"):
        Episode(np.zeros((3, 2)), np.zeros((3, 1)), np.zeros(3), False, False, Lineage("demo", 0, 0))


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.csv"
    write_atomic(path, "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]
    write_atomic(path, b"new\n")
    assert path.read_text() == "new\n"


def test_an_atomic_directory_replaces_the_old_one_whole(tmp_path):
    checkpoint = tmp_path / "iter_001"
    for version in ("old", "new"):
        with atomic_path(checkpoint) as tmp:
            tmp.mkdir()
            (tmp / "weights.pt").write_text(version)
            # Until the block ends, readers see the previous version or nothing, never this one.
            assert not checkpoint.exists() or (checkpoint / "weights.pt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["iter_001"]
    assert (checkpoint / "weights.pt").read_text() == "new"


def test_a_source_named_like_the_start_of_another_holds_only_its_own_episodes(tmp_path):
    store = EpisodeStore(tmp_path)
    store.append(replace(make_episode(0), lineage=Lineage("gate", 1, 0, seed=0)))
    for index in range(2):
        store.append(replace(make_episode(index), lineage=Lineage("gate_plain", 1, index, seed=index)))
    assert store.indices(1, "gate") == {0} and len(store.load(1, "gate_plain")) == 2
    assert len(store.load(1)) == 3
