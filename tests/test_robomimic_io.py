"""robomimic HDF5 export and import: exact round trips, a real robomimic file, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from borl.data.episode import Episode, Lineage
from borl.envs import get_task
from borl.errors import BorlError
from borl.formats.robomimic import append_robomimic, demo_attributes, read_robomimic, write_robomimic

SPEC = get_task("lift").spec
ENV_ARGS = {"env_name": "Lift", "type": 1, "env_kwargs": {}}
FIXTURE_LENGTHS = [37, 36, 38, 37, 36, 38]  # 47, 46, 48, 47, 46, 48 samples, cut after the first success


def _episode(t: int, index: int, success: bool = True, seed: int = 0) -> Episode:
    rng = np.random.default_rng(seed + index)
    rewards = np.zeros(t, dtype=np.float32)
    rewards[-1] = float(success)
    return Episode(
        observations=rng.normal(size=(t + 1, SPEC.obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(t, SPEC.act_dim)).astype(np.float32),
        rewards=rewards,
        terminated=success,
        success=success,
        lineage=Lineage("rollout", 3, index, checkpoint="iter_2", seed=seed + index, noise=0.2),
        states=rng.normal(size=(t, 32)),
    )


@pytest.fixture
def written(tmp_path: Path) -> Path:
    path = tmp_path / "demos.hdf5"
    write_robomimic(path, [_episode(5, 0), _episode(8, 1, success=False)], SPEC, env_args=ENV_ARGS)
    return path


def _edit(path: Path, change) -> Path:
    with h5py.File(path, "r+") as f:
        change(f)
    return path


def test_round_trip_is_exact(tmp_path: Path) -> None:
    episodes = [_episode(5, 0), _episode(8, 1, success=False), _episode(1, 2)]
    path = tmp_path / "out.hdf5"
    write_robomimic(path, episodes, SPEC)
    assert [p.name for p in tmp_path.iterdir()] == ["out.hdf5"]  # no temporary file left behind
    back = read_robomimic(path, SPEC)
    assert len(back) == len(episodes)
    for a, b in zip(episodes, back, strict=True):
        for name in ("observations", "actions", "rewards", "states"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
            assert getattr(a, name).dtype == getattr(b, name).dtype
        assert (a.lineage, a.terminated, a.success) == (b.lineage, b.terminated, b.success)


def test_written_layout_is_robomimic(written: Path) -> None:
    with h5py.File(written, "r") as f:
        assert f["data"].attrs["total"] == 13
        assert json.loads(f["data"].attrs["env_args"]) == ENV_ARGS
        assert list(f["mask/train"][()]) == [b"demo_0", b"demo_1"]
        demo = f["data/demo_0"]
        assert demo.attrs["num_samples"] == 5
        assert list(demo["dones"][()]) == [0, 0, 0, 0, 1]
        assert list(f["data/demo_1/dones"][()]) == [0] * 8  # a time-out is not terminal
        assert demo["obs/object"].shape == (5, 10) and demo["next_obs/robot0_eef_quat"].shape == (5, 4)
        qpos, next_qpos = demo["obs/robot0_gripper_qpos"][()], demo["next_obs/robot0_gripper_qpos"][()]
        np.testing.assert_array_equal(qpos[1:], next_qpos[:-1])


def test_default_env_args_describe_the_robosuite_env(tmp_path: Path) -> None:
    path = tmp_path / "d.hdf5"
    write_robomimic(path, [_episode(2, 0)], SPEC)
    with h5py.File(path, "r") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
    assert env_args["env_name"] == "Lift" and env_args["type"] == 1 and env_args["env_version"] == "1.5.2"
    right = env_args["env_kwargs"]["controller_configs"]["body_parts"]["right"]
    assert right["type"] == "OSC_POSE" and env_args["env_kwargs"]["control_freq"] == 20


def test_demos_are_read_in_numeric_order(tmp_path: Path) -> None:
    path = tmp_path / "many.hdf5"
    write_robomimic(path, [_episode(2, i) for i in range(11)], SPEC, env_args=ENV_ARGS)
    assert [e.lineage.index for e in read_robomimic(path, SPEC)] == list(range(11))


def test_foreign_demo_is_cut_after_first_success(written: Path) -> None:
    def make_foreign(f: h5py.File) -> None:
        for name in ("demo_0", "demo_1"):
            del f[f"data/{name}"].attrs["borl"]
        del f["data/demo_1/rewards"]
        f["data/demo_1/rewards"] = np.array([0, 0, 1, 1, 0, 1, 1, 1], dtype=np.float64)

    original = read_robomimic(written, SPEC)
    first, second = read_robomimic(_edit(written, make_foreign), SPEC)
    assert (len(first), first.terminated, first.success) == (5, True, True)
    assert (len(second), second.terminated, second.success) == (3, True, True)
    assert second.lineage == Lineage("import", 0, 1)
    np.testing.assert_array_equal(second.observations, original[1].observations[:4])
    np.testing.assert_array_equal(second.states, original[1].states[:3])


def test_reads_real_robomimic_file(fixtures_dir: Path) -> None:
    path = fixtures_dir / "robomimic_lift_low_dim.hdf5"
    episodes = read_robomimic(path, SPEC)
    assert [len(e) for e in episodes] == FIXTURE_LENGTHS and sum(FIXTURE_LENGTHS) == 222
    with h5py.File(path, "r") as f:
        for i, episode in enumerate(episodes):
            demo = f[f"data/demo_{i + 1}"]
            t = len(episode)
            assert episode.success and episode.terminated and episode.rewards[-1] == 1.0
            assert episode.rewards[:-1].sum() == 0.0
            assert episode.lineage == Lineage("import", 0, i)
            assert episode.observations.shape == (t + 1, 19) and episode.observations.dtype == np.float32
            obj = demo["obs/object"][:t].astype(np.float32)
            np.testing.assert_array_equal(episode.observations[:t, 9:], obj)
            np.testing.assert_array_equal(
                episode.observations[t, :3], demo["next_obs/robot0_eef_pos"][t - 1].astype(np.float32)
            )
            np.testing.assert_array_equal(episode.actions, demo["actions"][:t].astype(np.float32))
            np.testing.assert_array_equal(episode.states, demo["states"][:t])


def test_reads_raw_robosuite_file_by_replaying_states(fixtures_dir: Path) -> None:
    replayed = read_robomimic(fixtures_dir / "robosuite_lift_demo.hdf5", SPEC)
    converted = read_robomimic(fixtures_dir / "robomimic_lift_low_dim.hdf5", SPEC)
    assert [len(e) for e in replayed] == FIXTURE_LENGTHS
    for a, b in zip(replayed, converted, strict=True):
        for name in ("observations", "actions", "rewards", "states"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert (a.lineage, a.terminated, a.success) == (b.lineage, True, True)


def test_raw_demo_with_wrong_state_size(tmp_path: Path) -> None:
    path = tmp_path / "raw.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("data").attrs["env"] = "Lift"
        f["data/demo_1/states"] = np.zeros((4, 30))
        f["data/demo_1/actions"] = np.zeros((4, 7))
    with pytest.raises(BorlError, match=r"states have shape \(4, 30\), expected \(4, 32\) for env 'Lift'"):
        read_robomimic(path, SPEC)


def test_demo_without_observations_or_states(written: Path) -> None:
    def strip(f: h5py.File) -> None:
        for name in ("obs", "next_obs", "states"):
            del f[f"data/demo_0/{name}"]

    _edit(written, strip)
    with pytest.raises(BorlError, match="demo_0: no observations"):
        read_robomimic(written, SPEC)


def test_other_environment(tmp_path: Path) -> None:
    path = tmp_path / "can.hdf5"
    write_robomimic(path, [_episode(2, 0)], SPEC, env_args={**ENV_ARGS, "env_name": "PickPlaceCan"})
    with pytest.raises(BorlError, match="recorded in env 'PickPlaceCan', but task 'lift' uses 'Lift'"):
        read_robomimic(path, SPEC)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BorlError, match="no such file"):
        read_robomimic(tmp_path / "absent.hdf5", SPEC)


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "text.hdf5"
    path.write_text("not hdf5\n")
    with pytest.raises(BorlError, match="not an HDF5 file"):
        read_robomimic(path, SPEC)


def test_truncated_hdf5(written: Path) -> None:
    data = written.read_bytes()
    written.write_bytes(data[: len(data) // 3])
    with pytest.raises(BorlError, match="cannot read"):
        read_robomimic(written, SPEC)


def test_no_data_group(tmp_path: Path) -> None:
    path = tmp_path / "empty.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("other")
    with pytest.raises(BorlError, match="no 'data' group"):
        read_robomimic(path, SPEC)


def test_no_demos(tmp_path: Path) -> None:
    path = tmp_path / "nodemos.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("data").attrs["total"] = 0
    with pytest.raises(BorlError, match="no demonstrations"):
        read_robomimic(path, SPEC)


def test_missing_obs_key(written: Path) -> None:
    _edit(written, lambda f: f.__delitem__("data/demo_1/obs/object"))
    with pytest.raises(BorlError, match=r"demo_1: no observation key 'object'"):
        read_robomimic(written, SPEC)


def test_wrong_observation_size(written: Path) -> None:
    def widen(f: h5py.File) -> None:
        del f["data/demo_0/obs/object"]
        f["data/demo_0/obs/object"] = np.zeros((5, 14))

    _edit(written, widen)
    expected = r"obs/object has shape \(5, 14\), expected \(5, 10\) for task 'lift'"
    with pytest.raises(BorlError, match=expected):
        read_robomimic(written, SPEC)


def test_wrong_action_dimension(written: Path) -> None:
    def shrink(f: h5py.File) -> None:
        del f["data/demo_0/actions"]
        f["data/demo_0/actions"] = np.zeros((5, 6))

    _edit(written, shrink)
    with pytest.raises(BorlError, match="actions have dimension 6, expected 7 for task 'lift'"):
        read_robomimic(written, SPEC)


@pytest.mark.parametrize(
    ("dataset", "row", "value", "message"),
    [
        ("actions", (2, 3), np.nan, "actions has NaN"),
        ("obs/robot0_eef_pos", (1, 0), np.inf, "observation 'robot0_eef_pos' has NaN or infinite"),
        ("next_obs/object", (4, 9), -np.inf, "observation 'object' has NaN or infinite"),
    ],
)
def test_non_finite_values(written: Path, dataset: str, row: tuple, value: float, message: str) -> None:
    def poison(f: h5py.File) -> None:
        f[f"data/demo_0/{dataset}"][row] = value

    _edit(written, poison)
    with pytest.raises(BorlError, match=message):
        read_robomimic(written, SPEC)


def test_write_rejects_bad_episodes_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.hdf5"
    with pytest.raises(BorlError, match="no episodes"):
        write_robomimic(path, [], SPEC, env_args=ENV_ARGS)
    wrong = _episode(3, 0)
    wrong = Episode(wrong.observations[:, :10], wrong.actions, wrong.rewards, True, True, wrong.lineage)
    with pytest.raises(BorlError, match=r"expected \(T\+1, 19\) for task 'lift'"):
        write_robomimic(path, [wrong], SPEC, env_args=ENV_ARGS)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(written: Path) -> None:
    before = written.read_bytes()
    with pytest.raises(TypeError):
        write_robomimic(written, [_episode(2, 0)], SPEC, env_args={"unserialisable": object()})
    assert written.read_bytes() == before
    assert [p.name for p in written.parent.iterdir()] == [written.name]


def test_write_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "demos.hdf5"
    write_robomimic(path, [_episode(2, 0)], SPEC, env_args=ENV_ARGS)
    assert len(read_robomimic(path, SPEC)) == 1


@pytest.mark.parametrize("attribute", ["not json", json.dumps({"lineage": {}, "terminated": True})])
def test_malformed_borl_attribute(written: Path, attribute: str) -> None:
    _edit(written, lambda f: f["data/demo_1"].attrs.__setitem__("borl", attribute))
    with pytest.raises(BorlError, match=r"demo_1: its 'borl' attribute is malformed"):
        read_robomimic(written, SPEC)


def test_append_adds_one_demo_at_a_time_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "recording.hdf5"
    episodes = [_episode(5, 0), _episode(3, 1, success=False)]
    for index, episode in enumerate(episodes):
        stamps = np.arange(len(episode) + 1, dtype=np.float64)
        extra = {"recording": {"robot": "arm"}}
        assert append_robomimic(path, episode, SPEC, ENV_ARGS, extra, {"timestamps": stamps}) == index
    assert [p.name for p in tmp_path.iterdir()] == ["recording.hdf5"]
    back = read_robomimic(path, SPEC)
    for a, b in zip(episodes, back, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        assert (a.lineage, a.success) == (b.lineage, b.success)
    assert [a["recording"] for a in demo_attributes(path)] == [{"robot": "arm"}] * 2
    with h5py.File(path) as f:
        assert f["data"].attrs["total"] == 8 and list(f["mask/train"][()]) == [b"demo_0", b"demo_1"]
