"""Config: presets, overrides, YAML round trip, rejection of bad values."""

import pytest

from borl.config import build_config, load_config, parse_assignments, save_config
from borl.errors import BorlError


def test_presets_set_the_axes():
    recipe = build_config("recipe")
    assert recipe.uses_critic and recipe.extraction.kind == "implicit"
    il = build_config("il")
    assert not il.uses_critic and il.extraction.kind == "none"


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
        ("recipe", {"seed": "x"}, "'seed' must be"),
        ("il", {"extraction": {"kind": "implicit"}}, "needs a critic"),
    ],
)
def test_bad_values_are_refused(algo, overrides, message):
    with pytest.raises(BorlError, match=message):
        build_config(algo, False, overrides)


def test_bad_assignment():
    with pytest.raises(BorlError, match="KEY=VALUE"):
        parse_assignments(["novalue"])
