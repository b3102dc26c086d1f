"""The study's other presets through the real CLI on robosuite Lift, and the axis flags' validation."""

import csv
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml

from borl.cli import main
from borl.config import ExtractionConfig, RunConfig
from borl.data.episode import Episode, Lineage
from borl.data.store import EpisodeStore, decode_episode
from borl.errors import BorlError
from borl.loop import Run

SMALL = ["--quick", "--quiet", "--workers", "1", "--eval-episodes", "2", "--rollouts", "2"]


def weights(out, iteration: int) -> dict:
    return torch.load(out / "checkpoints" / f"iter_{iteration:03d}" / "weights.pt", weights_only=True)


def same_tensors(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("args", "algo", "policy_class"),
    [
        (["--algo", "awr"], "awr", "diffusion"),
        (["--algo", "gaussian-awr"], "gaussian-awr", "gaussian"),
        (["--algo", "recipe", "--policy-class", "gaussian"], "gaussian-implicit", "gaussian"),
        (["--algo", "steering"], "steering", "diffusion"),
    ],
    ids=["awr", "gaussian-awr", "gaussian-implicit-by-flag", "steering"],
)
def test_quick_run_of_each_preset(tmp_path, capsys, args, algo, policy_class):
    out = tmp_path / "run"
    assert main(["run", "lift", *SMALL, *args, "--out", str(out)]) == 0
    assert "demos:" not in capsys.readouterr().err  # --quiet: no progress bars, the demos' included
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["algo"] == algo and config["policy_class"] == policy_class
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["iteration"] for r in rows] == ["0", "1"] and rows[1]["rollouts"] == "2"
    # Only implicit extraction has a policy-alone baseline distinct from the deployed agent.
    assert math.isnan(float(rows[0]["policy_only_success_rate"])) == (algo in ("awr", "gaussian-awr"))
    first, second = weights(out, 0), weights(out, 1)
    policy_kept = same_tensors(first["policy"]["model"], second["policy"]["model"])
    assert policy_kept == (algo == "steering"), "steering alone keeps iteration 0's policy"
    assert not same_tensors(first["critic"]["q_net"], second["critic"]["q_net"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "il", "--extraction", "awr"], "awr extraction needs a critic"),
        (["--algorithm", "filtered_il"], "implicit extraction needs a critic"),
        (["--algo", "steering", "--extraction", "none"], "needs --extraction implicit"),
        (["--policy-class", "flow"], "unknown policy class 'flow'"),
        (["--algorithm", "ppo"], "unknown algorithm class 'ppo'"),
    ],
)
def test_bad_axis_combinations_exit_2_with_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["run", "lift", "--quick", "--quiet", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_extraction_can_start_after_iteration_0(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "extraction.from_iteration=1", "--out", str(out)]
    assert main(["run", "lift", *SMALL, *args]) == 0
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    # Agent 0 acts with one policy sample: its deployed evaluation is its policy-alone one.
    assert rows[0]["eval_success_rate"] == rows[0]["policy_only_success_rate"]
    evals = EpisodeStore(out / "eval")
    assert evals.load(0, "plain") == [] and len(evals.load(0, "eval")) == 2
    assert len(evals.load(1, "plain")) == 2 and len(evals.load(1, "eval")) == 2


def test_extraction_from_a_negative_iteration_is_refused(tmp_path, capsys):
    args = ["--set", "extraction.from_iteration=-1", "--out", str(tmp_path / "run")]
    assert main(["run", "lift", *SMALL, *args]) == 2
    assert "extraction.from_iteration must not be negative" in capsys.readouterr().err


def test_iterations_between_the_first_and_last_take_their_own_episode_count(tmp_path):
    out = tmp_path / "run"
    args = ["--algo", "il", "--iterations", "2", "--set", "eval_episodes_between=1", "--out", str(out)]
    assert main(["run", "lift", *SMALL, *args]) == 0
    with open(out / "metrics.csv") as f:
        counts = [int(row["eval_episodes"]) for row in csv.DictReader(f)]
    assert counts == [2, 1, 2]
    evals = EpisodeStore(out / "eval")
    # The middle iteration's one start is the ends' first: every iteration stays paired.
    assert evals.load(1, "eval")[0].lineage.seed == evals.load(0, "eval")[0].lineage.seed


def test_a_zero_between_count_is_refused(tmp_path, capsys):
    args = ["--set", "eval_episodes_between=0", "--out", str(tmp_path / "run")]
    assert main(["run", "lift", *SMALL, *args]) == 2
    assert "eval_episodes_between must be at least 1" in capsys.readouterr().err


def test_a_config_file_sets_keys_that_flags_and_set_then_override(tmp_path, capsys):
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        yaml.safe_dump({"algorithm": "filtered_il", "extraction": {"kind": "none"}, "rollouts": 7, "seed": 4})
    )
    out = tmp_path / "run"
    args = ["--iterations", "0", "--config", str(settings), "--rollouts", "2", "--set", "seed=5"]
    assert main(["run", "lift", *SMALL, *args, "--out", str(out)]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["algo"], saved["rollouts"], saved["seed"]) == ("filtered-il", 2, 5)
    # A run's own config.yaml is a config file: it starts the same run again.
    again = tmp_path / "again"
    assert main(["run", "lift", "--quiet", "--config", str(out / "config.yaml"), "--out", str(again)]) == 0
    assert (again / "config.yaml").read_text() == (out / "config.yaml").read_text()
    settings.write_text("- not a mapping\n")
    assert main(["run", "lift", *SMALL, "--config", str(settings), "--out", str(tmp_path / "x")]) == 2
    assert f"config {settings} is not a mapping" in capsys.readouterr().err


def test_a_gate_decides_from_paired_episodes_whether_an_agent_extracts(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--set", "extraction.gate_episodes=2", "--out", str(out)]
    assert main(["run", "lift", *SMALL, *args]) == 0
    run = Run.open(out)
    evals = EpisodeStore(out / "eval")
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    for iteration, row in enumerate(rows):
        gate, alone = evals.load(iteration, "gate"), evals.load(iteration, "gate_plain")
        # Paired starts of the gate's own, none of them an evaluation's.
        assert [e.lineage.seed for e in gate] == [e.lineage.seed for e in alone] and len(gate) == 2
        assert not {e.lineage.seed for e in gate} & {e.lineage.seed for e in evals.load(iteration, "eval")}
        with_extraction, without = run.gate_outcomes(iteration)
        extracts = sum(with_extraction) >= sum(without)
        assert run.extracts(iteration) == extracts and row["extracted"] == str(int(extracts))
        assert float(row["gate_deployed"]) == sum(with_extraction) / 2
        # An agent that failed its gate is evaluated with its policy alone, like one before from_iteration.
        assert len(evals.load(iteration, "plain")) == (2 if extracts else 0)

    # Had iteration 0's gate gone the other way, `borl eval` would act, as deployed, with the policy alone.
    for source, success in (("gate", False), ("gate_plain", True)):
        for path in evals.paths(0, source):
            episode = decode_episode(path)
            path.unlink()
            evals.append(replace(episode, success=success))
    capsys.readouterr()
    assert main(["eval", str(out), "--iteration", "0", "--episodes", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert not result["extracts"] and "its gate had 0/2 with selection, 2/2 alone" in result["extraction"]


def test_an_agent_extracts_only_where_its_gate_passed(tmp_path):
    config = replace(RunConfig(), extraction=ExtractionConfig(gate_episodes=3, from_iteration=1))
    run = Run(tmp_path, config)
    store = run.evals
    for iteration, (deployed, alone) in enumerate([([0, 0, 0], [1, 1, 1]), ([0, 1, 1], [1, 1, 0])]):
        for source, outcomes in (("gate", deployed), ("gate_plain", alone)):
            for index, success in enumerate(outcomes):
                lineage = Lineage(source, iteration + 1, index, checkpoint="iter_001", seed=index)
                store.append(
                    Episode(
                        np.zeros((2, 3)), np.zeros((1, 2)), np.zeros(1), bool(success), bool(success), lineage
                    )
                )
    assert not run.extracts(0)  # before from_iteration: no gate asked
    assert not run.extracts(1)  # 0 of 3 with extraction against 3 of 3 alone
    assert run.extracts(2)  # 2 of 3 each: no worse with it
    with pytest.raises(BorlError, match="iteration 3's gate has not finished"):
        run.extracts(3)
