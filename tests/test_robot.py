"""The loop without a simulator, on real processes and sockets: a policy server on localhost, the sim
robot driven against it, recordings ingested and the next iteration trained and served."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import h5py
import msgpack
import numpy as np
import pytest
import torch
import yaml
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from borl.agent import Agent
from borl.cli import main
from borl.data.episode import Episode, Lineage
from borl.data.store import EpisodeStore
from borl.envs.registry import get_task
from borl.errors import BorlError
from borl.formats.robomimic import demo_attributes, read_robomimic
from borl.loop import Run
from borl.robot.protocol import ProtocolError, pack, unpack

TOKEN = "test-token"
LIFT = get_task("lift").spec
DRIVE = ["--robot", "sim:lift", "--rate", "0", "--horizon", "25"]


@pytest.fixture(scope="module")
def robot_run(tmp_path_factory) -> Path:
    """A run made as on a robot: D0 from a demonstrations file, iteration 0 trained by `borl train`."""
    root = tmp_path_factory.mktemp("robot")
    demos = root / "demos.hdf5"
    assert main(["demos", "lift", "--episodes", "3", "--out", str(demos)]) == 0
    run = root / "run"
    assert main(["train", str(run), "--task", "lift", "--dataset", str(demos), "--quick", "--quiet"]) == 0
    return run


class Server:
    """`borl serve` in its own process on a free port; stopped with SIGTERM."""

    def __init__(self, directory: Path, *flags: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "borl", "serve", str(directory), "--port", "0", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        assert "serving" in line, self.process.stderr.read()
        self.url = line.split(" on ")[1].split()[0]
        self.http = self.url.replace("ws://", "http://")

    def connect(self, token: str | None = TOKEN, **kwargs):
        """An open connection past its spec message (close it, or use it in a with block)."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        connection = connect(self.url, additional_headers=headers, open_timeout=20, **kwargs).__enter__()
        assert unpack(connection.recv(timeout=20))["type"] == "spec"
        return connection

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.http}/healthz", timeout=20) as response:
            return json.loads(response.read())

    def wait_for_no_clients(self, timeout: float = 40) -> None:
        """Until the server has seen every earlier connection leave (a vanished one takes a ping timeout)."""
        deadline = time.monotonic() + timeout
        while self.health()["clients"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.health()["clients"] == 0, "earlier connections never left"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(robot_run):
    started = Server(robot_run, "--token", TOKEN, "--max-clients", "3")
    yield started
    started.stop()


def ask(connection, message: bytes | str) -> dict:
    connection.send(message)
    return unpack(connection.recv(timeout=30))


def good_step(connection) -> dict:
    """A reset and one action: what a working connection answers."""
    assert ask(connection, pack({"type": "reset", "seed": 3}))["type"] == "ready"
    reply = ask(connection, pack({"type": "act", "obs": np.zeros(LIFT.obs_dim, np.float32)}))
    assert reply["type"] == "action" and reply["action"].shape == (LIFT.act_dim,)
    return reply


def test_arrays_cross_as_typed_buffers_and_nothing_else_decodes():
    for array in (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([True, False]), np.uint8([1, 255])):
        back = unpack(pack({"type": "x", "a": array}))["a"]
        assert back.dtype == array.dtype and np.array_equal(back, array)
    with pytest.raises(TypeError):
        pack({"type": "x", "a": np.array([object()], dtype=object)})
    forged = msgpack.packb({"type": "x", "a": {"__ndarray__": "|O", "shape": [1], "data": b"\0" * 8}})
    with pytest.raises(ProtocolError, match="not accepted"):
        unpack(forged)
    short = msgpack.packb({"type": "x", "a": {"__ndarray__": "<f4", "shape": [4], "data": b"\0" * 8}})
    with pytest.raises(ProtocolError, match="does not match"):
        unpack(short)


def test_a_checkpoint_rebuilds_its_agent_alone(robot_run):
    checkpoint = robot_run / "checkpoints" / "iter_000"
    alone = Agent.load(checkpoint)
    with_config = Agent.load(checkpoint, Run.open(robot_run).config)
    obs = np.random.default_rng(0).standard_normal((3, LIFT.obs_dim)).astype(np.float32)

    def act(agent):
        import torch

        return agent.act(obs, [torch.Generator().manual_seed(i) for i in range(3)])

    assert np.array_equal(act(alone), act(with_config))
    assert alone.config.task == "lift" and alone.critic is not None


# Each bad input: the message sent, and a part of the error the server must answer with.
BAD_MESSAGES = [
    (b"\xc1\xff not msgpack", "malformed msgpack"),
    ("a text frame", "text frames"),
    (msgpack.packb(7), "must be a map"),
    (pack({"type": "fly"}), "unknown message type"),
    (pack({"type": "act", "obs": np.zeros(LIFT.obs_dim, np.float32)}), "reset"),
    (pack({"type": "reset", "seed": -1}), "seed"),
    (pack({"type": "reset", "seed": True}), "seed"),
]
BAD_OBSERVATIONS = [
    (np.zeros(LIFT.obs_dim + 1, np.float32), "values, expected"),
    (np.full(LIFT.obs_dim, np.nan, np.float32), "NaN"),
    (np.full(LIFT.obs_dim, np.inf, np.float32), "NaN or infinite"),
    ({"no_such_key": np.zeros(3, np.float32)}, "no key"),
    ("not an array", "must be an array"),
    ({"__ndarray__": "<f4", "shape": [LIFT.obs_dim], "data": b"\0"}, "does not match"),
]


@pytest.mark.parametrize(("message", "expected"), BAD_MESSAGES)
def test_bad_messages_get_an_error_and_the_connection_keeps_working(server, message, expected):
    with server.connect() as connection:
        reply = ask(connection, message)
        assert reply["type"] == "error" and expected in reply["message"], reply
        good_step(connection)


@pytest.mark.parametrize(("obs", "expected"), BAD_OBSERVATIONS)
def test_bad_observations_get_an_error_and_the_episode_goes_on(server, obs, expected):
    with server.connect() as connection:
        assert ask(connection, pack({"type": "reset"}))["type"] == "ready"
        forged = isinstance(obs, dict) and "__ndarray__" in obs
        body = msgpack.packb({"type": "act", "obs": obs}) if forged else pack({"type": "act", "obs": obs})
        reply = ask(connection, body)
        assert reply["type"] == "error" and expected in reply["message"], reply
        reply = ask(connection, pack({"type": "act", "obs": np.zeros(LIFT.obs_dim, np.float32)}))
        assert reply["type"] == "action" and reply["step"] == 1


def test_an_oversized_message_closes_only_that_connection(server):
    with server.connect() as other:
        with server.connect(max_size=None) as big:
            big.send(pack({"type": "act", "obs": np.zeros(2 << 20, np.uint8)}))
            with pytest.raises(ConnectionClosed) as closed:
                big.recv(timeout=30)
            assert closed.value.rcvd.code == 1009
        good_step(other)


def test_a_client_that_stops_reading_or_vanishes_mid_episode_stops_nobody(server):
    stuck = server.connect()
    assert ask(stuck, pack({"type": "reset"}))["type"] == "ready"
    for _ in range(300):  # never reads the answers
        stuck.send(pack({"type": "act", "obs": np.zeros(LIFT.obs_dim, np.float32)}))
    with server.connect() as other:
        good_step(other)
    stuck.socket.close()  # gone mid-episode, without a closing handshake
    with server.connect() as other:
        good_step(other)
    assert server.health()["status"] == "ok"


def test_token_limit_and_health(server):
    server.wait_for_no_clients()  # the module's server: earlier tests' connections may still be closing
    with pytest.raises(InvalidStatus) as refused:
        server.connect(token="wrong")
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        server.connect(token=None)
    held = [server.connect() for _ in range(3)]
    with pytest.raises(InvalidStatus) as full:
        server.connect()
    assert full.value.response.status_code == 503
    health = server.health()
    assert health["clients"] == 3 and health["iteration"] == 0
    for connection in held:
        connection.close()
    server.wait_for_no_clients()
    with server.connect() as connection:
        good_step(connection)


def test_the_loop_without_a_simulator(robot_run, tmp_path, capsys):
    """D0, serve, drive the sim robot, ingest, train, serve the new iteration, drive again."""
    served = Server(robot_run, "--token", TOKEN)
    following = Server(robot_run, "--follow")
    try:
        first = tmp_path / "first.hdf5"
        url = ["--server", served.url, "--token", TOKEN]
        assert main(["drive", *DRIVE, "--episodes", "3", "--out", str(first), *url]) == 0
        episodes = read_robomimic(first, LIFT)
        assert len(episodes) == 3 and all(len(e) <= 25 for e in episodes)
        with h5py.File(first) as f:
            stamps = f["data/demo_0/timestamps"][()]
        assert len(stamps) == len(episodes[0]) + 1 and np.all(np.diff(stamps) >= 0)
        recorded = demo_attributes(first)[0]["recording"]
        assert recorded["iteration"] == 0 and recorded["robot"] == "sim:lift"

        assert main(["ingest", str(robot_run), str(first)]) == 0
        assert "3 episodes added" in capsys.readouterr().out
        assert main(["ingest", str(robot_run), str(first)]) == 0
        assert "0 episodes added" in capsys.readouterr().out
        assert main(["train", str(robot_run), "--quiet"]) == 0
        assert main(["train", str(robot_run), "--quiet"]) != 0  # nothing new to train on
        assert "borl ingest" in capsys.readouterr().err

        served.process.send_signal(signal.SIGHUP)  # the new checkpoint serves from the next episode
        second = tmp_path / "second.hdf5"
        assert main(["drive", *DRIVE, "--episodes", "2", "--out", str(second), *url]) == 0
        assert {a["recording"]["iteration"] for a in demo_attributes(second)} == {1}
        assert main(["ingest", str(robot_run), str(second)]) == 0
        run = Run.open(robot_run)
        robot_episodes = run.data.load(source="robot")
        assert [(e.lineage.iteration, e.lineage.checkpoint) for e in robot_episodes] == [
            *[(1, "iter_000")] * 3,
            *[(2, "iter_001")] * 2,
        ]
        assert [row["iteration"] for row in run.metrics()] == [0, 1]
        assert run.metrics()[1]["rollouts"] == 3

        with following.connect(token=None) as connection:  # --follow: no signal needed
            assert ask(connection, pack({"type": "reset"}))["iteration"] == 1
            assert main(["train", str(robot_run), "--quiet"]) == 0
            act = pack({"type": "act", "obs": np.zeros(LIFT.obs_dim, np.float32)})
            assert ask(connection, act)["iteration"] == 1  # the episode in progress keeps its agent
            assert following.health()["iteration"] == 1
            assert ask(connection, pack({"type": "reset"}))["iteration"] == 2
    finally:
        served.stop()
        following.stop()


def _copy_with(source: Path, target: Path, edit) -> Path:
    target.write_bytes(source.read_bytes())
    with h5py.File(target, "a") as f:
        edit(f)
    return target


def _set_borl_attr(f, change):
    meta = json.loads(f["data/demo_1"].attrs["borl"])
    change(meta)
    f["data/demo_1"].attrs["borl"] = json.dumps(meta)


def _drop_success(meta):
    del meta["success"]


def _other_checkpoint(meta):
    meta["recording"]["checkpoint_id"] = "0" * 16


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f["data/demo_1/actions"].__setitem__((0, 0), 3.0), "outside [-1, 1]"),
        (lambda f: f["data/demo_1/obs/object"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda f: _set_borl_attr(f, _drop_success), "no success label"),
        (lambda f: _set_borl_attr(f, _other_checkpoint), "not one of"),
    ],
)
def test_a_bad_recording_is_refused_whole(robot_run, tmp_path, capsys, edit, message):
    good = tmp_path / "good.hdf5"
    assert (
        main(["drive", str(robot_run), *DRIVE, "--episodes", "2", "--out", str(good), "--iteration", "0"])
        == 0
    )
    bad = _copy_with(good, tmp_path / "bad.hdf5", edit)
    before = sorted(p.name for p in (robot_run / "data").rglob("*.npz"))
    assert main(["ingest", str(robot_run), str(good), str(bad)]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in (robot_run / "data").rglob("*.npz")) == before


def test_a_killed_recording_keeps_every_finished_episode(robot_run, tmp_path):
    out = tmp_path / "killed.hdf5"
    command = [sys.executable, "-m", "borl", "drive", str(robot_run), "--robot", "sim:lift"]
    process = subprocess.Popen(
        [*command, "--episodes", "100", "--horizon", "25", "--rate", "200", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not (out.exists() and len(demo_attributes(out)) >= 2):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.07)  # inside a later episode, or inside its write
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    episodes = read_robomimic(out, LIFT)
    assert 2 <= len(episodes) < 100 and all(len(e) > 0 for e in episodes)


def test_health_answers_plain_http_on_the_websocket_port(server):
    health = server.health()
    assert health["status"] == "ok" and len(health["checkpoint_id"]) == 16
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{server.http}/no-such-page", timeout=20)
    assert missing.value.code == 401  # every path but /healthz needs the token


def test_episodes_acting_in_one_batch_act_as_each_would_alone(robot_run):
    """The server batches the clients waiting; each row's randomness is its own episode's."""
    from borl.robot.policy import ActingEpisode, AgentSource, act_together

    served = AgentSource(robot_run).current
    obs = list(np.random.default_rng(1).standard_normal((3, LIFT.obs_dim)).astype(np.float32))
    together = [ActingEpisode(served, seed, 0.3, 0.15) for seed in (5, 6, 7)]
    alone = [ActingEpisode(served, seed, 0.3, 0.15) for seed in (5, 6, 7)]
    for _ in range(3):
        batched = act_together(together, obs)
        single = [episode.act(o) for episode, o in zip(alone, obs, strict=True)]
        np.testing.assert_allclose(np.stack(batched), np.stack(single), atol=1e-5)


def test_drive_keeps_the_control_rate(robot_run, tmp_path):
    out = tmp_path / "paced.hdf5"
    # 5 Hz, so that a step (about 115 ms on 2 cores loaded 5x over, 20 ms idle) fits in the period
    # even on a busy machine: the loop must wait for the next tick, not run ahead or sleep a period more.
    drive = ["drive", str(robot_run), "--robot", "sim:lift", "--rate", "5", "--horizon", "12"]
    assert main([*drive, "--episodes", "1", "--out", str(out)]) == 0
    with h5py.File(out) as f:
        periods = np.diff(f["data/demo_0/timestamps"][()])
    assert len(periods) == 12 and 0.18 <= np.median(periods) <= 0.3, periods


def test_an_agent_before_its_extraction_iteration_acts_with_its_policy_alone(robot_run, tmp_path):
    """A run set to select from iteration 1 serves iteration 0 as its loop collects with it: one sample."""
    from borl.robot.policy import ActingEpisode, AgentSource, act_together

    checkpoint = tmp_path / "run" / "checkpoints" / "iter_000"
    shutil.copytree(robot_run / "checkpoints" / "iter_000", checkpoint)
    saved = json.loads((checkpoint / "config.json").read_text())
    saved["extraction"]["from_iteration"] = 1
    (checkpoint / "config.json").write_text(json.dumps(saved))
    served = AgentSource(tmp_path / "run").current
    assert not served.extract and served.describe()["extraction"] == "none"
    obs = np.random.default_rng(1).standard_normal((1, LIFT.obs_dim)).astype(np.float32)
    [action] = act_together([ActingEpisode(served, 5, 0.0, 0.15)], list(obs))
    alone = served.agent.act(obs, [torch.Generator().manual_seed(5)], extract=False)[0]
    np.testing.assert_allclose(action, np.clip(alone, -1, 1), atol=1e-6)
    assert AgentSource(robot_run).current.describe()["extraction"] == "implicit"


def test_a_gated_run_serves_its_agent_as_deployed(robot_run, tmp_path):
    """A run whose gate turned selection off serves its policy alone; one whose gate is still running
    serves nothing newer."""
    from borl.robot.policy import AgentSource

    run = tmp_path / "run"
    shutil.copytree(robot_run / "checkpoints" / "iter_000", run / "checkpoints" / "iter_000")
    saved = json.loads((run / "checkpoints" / "iter_000" / "config.json").read_text())
    saved["extraction"]["gate_episodes"] = 2
    (run / "checkpoints" / "iter_000" / "config.json").write_text(json.dumps(saved))
    config = yaml.safe_load((robot_run / "config.yaml").read_text())
    config["extraction"]["gate_episodes"] = 2
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    evals = EpisodeStore(run / "eval")

    def gate(index: int, with_selection: bool, alone: bool) -> None:
        for source, success in (("gate", with_selection), ("gate_plain", alone)):
            lineage = Lineage(source, 0, index, checkpoint="iter_000", seed=index)
            evals.append(Episode(np.zeros((2, 3)), np.zeros((1, 2)), np.zeros(1), success, success, lineage))

    gate(0, False, True)
    with pytest.raises(BorlError, match="no checkpoint to serve"):
        AgentSource(run)
    with pytest.raises(BorlError, match="iteration 0's gate has not finished"):
        AgentSource(run, iteration=0)
    gate(1, True, True)  # 1 of 2 with selection, 2 of 2 alone: deployed alone
    served = AgentSource(run).current
    assert not served.extract and served.describe()["extraction"] == "none"


def test_the_robot_loop_refuses_a_gate_it_has_no_simulator_for(robot_run, tmp_path, capsys):
    demos = robot_run.parent / "demos.hdf5"
    new = ["train", str(tmp_path / "run"), "--task", "lift", "--dataset", str(demos), "--quick", "--quiet"]
    assert main([*new, "--set", "extraction.gate_episodes=2"]) == 2
    assert "robot loop has none" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    # A run made elsewhere with a gate, continued by the robot loop: refused before it trains.
    config = yaml.safe_load((robot_run / "config.yaml").read_text())
    config["extraction"]["gate_episodes"] = 2
    (tmp_path / "gated").mkdir()
    (tmp_path / "gated" / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "gated"), "--quiet"]) == 2
    assert "robot loop has none" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "gated").iterdir()) == ["config.yaml"]
