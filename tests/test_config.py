"""Config: presets, overrides, YAML round trip, rejection of bad values."""

from pathlib import Path

import pytest
import yaml

from borl.cli import _parser
from borl.commands import study_settings
from borl.config import (
    RunConfig,
    build_config,
    config_keys,
    load_config,
    merge,
    parse_assignments,
    parse_settings,
    read_config_file,
    save_config,
)
from borl.envs.registry import get_task
from borl.errors import BorlError
from borl.settings import nest
from borl.study import make_grid


def test_presets_set_the_axes():
    recipe = build_config("recipe")
    assert recipe.uses_critic and recipe.extraction.kind == "implicit"
    il = build_config("il")
    assert not il.uses_critic and il.extraction.kind == "none"


@pytest.mark.parametrize(
    ("algo", "axes"),
    [
        ("recipe", ("diffusion", "value", "implicit")),
        ("il", ("diffusion", "il", "none")),
        ("filtered-il", ("diffusion", "filtered_il", "none")),
        ("filtered-recipe", ("diffusion", "filtered_value", "implicit")),
        ("awr", ("diffusion", "value", "awr")),
        ("gaussian-awr", ("gaussian", "value", "awr")),
        ("gaussian-implicit", ("gaussian", "value", "implicit")),
        ("steering", ("diffusion", "steering", "implicit")),
    ],
)
def test_every_preset_is_a_point_on_the_three_axes(algo, axes):
    config = build_config(algo)
    assert (config.policy_class, config.algorithm, config.extraction.kind) == axes
    assert config.algo == algo


def test_axis_overrides_name_the_point_they_reach():
    assert build_config("recipe", False, {"policy_class": "gaussian"}).algo == "gaussian-implicit"
    assert (
        build_config("il", False, {"algorithm": "value", "extraction": {"kind": "implicit"}}).algo == "recipe"
    )
    custom = build_config("il", True, {"policy_class": "gaussian"})
    assert custom.algo == "gaussian-il-none" and custom.gaussian.width == 32


def test_gaussian_settings_round_trip(tmp_path):
    config = build_config("gaussian-awr", True, parse_assignments(["gaussian.width=48", "extraction.beta=3"]))
    assert config.gaussian.width == 48 and config.extraction.beta == 3.0
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_yaml_round_trip(tmp_path):
    config = build_config("recipe", True, {"seed": 7}, parse_assignments(["critic.expectile=0.9"]))
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_set_overrides_nested_keys():
    config = build_config("recipe", False, parse_assignments(["train.policy_steps=10", "policy.width=64"]))
    assert config.train.policy_steps == 10 and config.policy.width == 64


@pytest.mark.parametrize(
    ("algo", "overrides", "message"),
    [
        ("nope", {}, "unknown preset 'nope'"),
        ("recipe", {"rollouts": -1}, "rollouts must not be negative"),
        ("recipe", {"workers": 0}, "workers must be at least 1"),
        ("recipe", {"bogus": 1}, "unknown config key 'bogus'"),
        ("recipe", {"seed": "x"}, "seed must be an integer"),
        ("il", {"extraction": {"kind": "implicit"}}, "needs a critic"),
        ("filtered-il", {"extraction": {"kind": "awr"}}, "awr extraction needs a critic"),
        ("steering", {"extraction": {"kind": "awr"}}, "needs --extraction implicit"),
        ("steering", {"extraction": {"kind": "none"}}, "needs --extraction implicit"),
        ("recipe", {"policy_class": "flow"}, "unknown policy class 'flow'"),
        ("recipe", {"algorithm": "ppo"}, "unknown algorithm class 'ppo'"),
        ("recipe", {"extraction": {"kind": "cem"}}, "unknown extraction 'cem'"),
        ("awr", {"extraction": {"max_weight": 0}}, "max_weight must be positive"),
        ("awr", {"extraction": {"beta": -1}}, "beta must not be negative"),
        ("il", {"train": {"demo_share": 1.0}}, "demo_share must be below 1"),
        ("il", {"train": {"demo_share": -0.1}}, "demo_share must not be negative"),
        ("filtered-il", {"train": {"keep_fastest": 0}}, "keep_fastest must be positive"),
        ("filtered-il", {"train": {"keep_fastest": 1.5}}, "keep_fastest is a share"),
        ("recipe", {"train": {"keep_fastest": 0.5}}, "use a filtered one"),
    ],
)
def test_bad_values_are_refused(algo, overrides, message):
    with pytest.raises(BorlError, match=message):
        build_config(algo, False, overrides)


def test_bad_assignment():
    with pytest.raises(BorlError, match="KEY=VALUE"):
        parse_assignments(["novalue"])


CONFIGS = Path(__file__).parent.parent / "configs"
RESULTS = Path(__file__).parent.parent / "docs" / "results"
# Each task config and the committed study that measured its settings.
MEASURED_BY = {
    "can": "can_epochs",
    "lift": "lift_noise",
    "pen": "pen_gate",
    "square": "square/gate",
    "threading": "threading",
}
# Study overrides that set how a run is measured or how many threads it uses, not what it learns.
MEASUREMENT_KEYS = ("eval_episodes_between", "train.threads")


def test_every_task_config_has_the_study_that_measured_it():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(MEASURED_BY)


@pytest.mark.parametrize("task", sorted(MEASURED_BY))
def test_a_task_config_holds_exactly_the_settings_of_its_study(task):
    """configs/TASK.yaml (`borl run TASK --config`) builds the run its study's first preset ran,
    with the study's overrides; the study's scale (iterations, rollouts, evaluation) aside."""
    get_task(task)
    study = yaml.safe_load((RESULTS / MEASURED_BY[task] / "study.yaml").read_text())
    assert task in study["tasks"]
    learning = [o for o in study["overrides"] if o.split("=")[0] not in MEASUREMENT_KEYS]
    from_file = build_config("recipe", False, read_config_file(CONFIGS / f"{task}.yaml"))
    assert from_file.ou_sigma in study["ou_sigma"]
    learning.append(f"ou_sigma={from_file.ou_sigma}")
    measured = build_config(study["algos"][0], False, parse_assignments(learning))
    assert from_file == measured


def test_every_setting_reads_back_from_its_text():
    """A study keeps a config file's keys as `--set` texts: each value must survive the trip."""
    known = config_keys()
    values = {name: key.default for name, key in known.items()}
    values.update({"critic.expectile": 1e-05, "extraction.safety_k": None, "train.epochs": 45})
    texts = {name: known[name].format(value) for name, value in values.items()}
    assert merge(RunConfig(), parse_settings(texts)) == merge(RunConfig(), nest(values))


@pytest.mark.parametrize("task", sorted(MEASURED_BY))
def test_a_study_from_a_task_config_builds_the_runs_its_study_measured(task, tmp_path):
    """`borl study --config configs/TASK.yaml --algos ...` runs what the committed study's --set ran."""
    study = yaml.safe_load((RESULTS / MEASURED_BY[task] / "study.yaml").read_text())
    measurement = [o for o in study["overrides"] if o.split("=")[0] in MEASUREMENT_KEYS]
    argv = [
        "study",
        "--tasks",
        task,
        "--config",
        str(CONFIGS / f"{task}.yaml"),
        "--algos",
        ",".join(study["algos"]),
        "--seeds",
        "1",
    ]
    argv += [f"--set={o}" for o in measurement] + ["--out", str(tmp_path)]
    flags, overrides = study_settings(_parser().parse_args(argv))
    from_config = make_grid(**flags, overrides=overrides)
    noise = ",".join(str(sigma) for sigma in study["ou_sigma"])
    algos = ",".join(study["algos"])
    measured = make_grid(tasks=task, algos=algos, seeds=1, ou_sigma=noise, overrides=study["overrides"])
    assert from_config.points() == measured.points()
    for point in from_config.points():
        assert from_config.point_config(point) == measured.point_config(point)


def test_a_task_config_alone_names_the_study_preset(tmp_path):
    args = _parser().parse_args(["study", "--config", str(CONFIGS / "square.yaml"), "--out", str(tmp_path)])
    flags, overrides = study_settings(args)
    assert flags["algos"] == "filtered-recipe" and "algorithm=filtered_value" not in overrides
    assert "extraction.safety_k=3" in overrides


def test_a_config_files_grid_keys_stand_for_the_flags_left_out(tmp_path):
    config = tmp_path / "noisy.yaml"
    config.write_text("ou_sigma: 0.1\nrollouts: 200\ncritic:\n  num_critics: 5\n")
    flags, overrides = study_settings(_parser().parse_args(["study", "--config", str(config), "--out", "S"]))
    assert (flags["ou_sigma"], flags["rollouts"]) == ("0.1", "200") and overrides == ["critic.num_critics=5"]
    grid = make_grid(**flags, overrides=overrides)
    assert (grid.ou_sigma, grid.rollouts) == ((0.1,), (200,))
    argv = ["study", "--config", str(config), "--ou-sigma", "0,0.3", "--out", "S"]
    flags, _ = study_settings(_parser().parse_args(argv))
    assert (flags["ou_sigma"], flags["rollouts"]) == ("0,0.3", "200")
