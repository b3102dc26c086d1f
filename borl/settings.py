"""Config fields that carry their own help and limits: one declaration that the command line's flags
(`borl run --help` lists every key), `--set`, config files and validation all read."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

import yaml

from borl.errors import BorlError


def union_members(hint: Any) -> tuple[Any, ...]:
    """The types a type hint admits: each member of a union (`int | None`), else the hint itself."""
    return typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,  # noqa: A002 - argparse's name for it
    minimum: float | None = None,
    positive: bool = False,
    factory: Any = dataclasses.MISSING,
    flags: tuple[str, ...] = (),
) -> Any:
    """A dataclass field with its help text and limits (`minimum` inclusive; `positive`: above 0).

    `flags` are extra command-line spellings besides --KEY (e.g. --video for videos)."""
    metadata = {"help": help, "minimum": minimum, "positive": positive, "flags": flags}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Key:
    """One leaf of a nested config: its dotted name, type hint, default, help and limits."""

    name: str
    hint: Any
    default: Any
    help: str
    minimum: float | None
    positive: bool
    flags: tuple[str, ...]

    @property
    def allowed(self) -> tuple[Any, ...]:
        return union_members(self.hint)

    def parse(self, text: str) -> Any:
        """A command-line value for this key: text as is for a string key (null for None), comma-
        separated for a tuple of strings, else read as YAML (numbers, true/false, null, [lists])."""
        if type(None) in self.allowed and text.lower() in ("null", "none", "~"):
            return None
        if str in self.allowed:
            return text
        if tuple[str, ...] in self.allowed:
            return tuple(part for part in text.split(",") if part)
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise BorlError(f"{self.name}: cannot read value '{text}'") from None

    def format(self, value: Any) -> str:
        """The text that `parse` reads back as `value` (a study keeps its settings as such texts)."""
        if value is None:
            return "null"
        if isinstance(value, str):
            return value
        if isinstance(value, tuple | list) and tuple[str, ...] in self.allowed:
            return ",".join(value)
        plain = list(value) if isinstance(value, tuple) else value
        return yaml.safe_dump(plain, default_flow_style=True, width=math.inf).removesuffix("...\n").strip()

    @property
    def metavar(self) -> str:
        kinds = [k for k in self.allowed if k is not type(None)]
        names = {int: "INT", float: "FLOAT", str: "TEXT", bool: "true|false", tuple[str, ...]: "A,B"}
        return names.get(kinds[0], "YAML") if len(kinds) == 1 else "YAML"

    def check(self, value: Any) -> None:
        """A one-line BorlError if `value` breaks this key's limits (None passes: unset)."""
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return
        if not math.isfinite(value):
            raise BorlError(f"{self.name} must be a finite number (got {value})")
        if self.positive and not value > 0:
            raise BorlError(f"{self.name} must be positive (got {value})")
        if self.minimum is not None and value < self.minimum:
            rule = "must not be negative" if self.minimum == 0 else f"must be at least {self.minimum:g}"
            raise BorlError(f"{self.name} {rule} (got {value})")


def keys(config: Any, prefix: str = "") -> list[Key]:
    """Every leaf key of a dataclass config (an instance: nested defaults are its own), in order."""
    hints = typing.get_type_hints(type(config))
    found = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            found += keys(value, f"{name}.")
            continue
        meta = f.metadata
        found.append(
            Key(
                name,
                hints[f.name],
                value,
                meta.get("help", ""),
                meta.get("minimum"),
                meta.get("positive", False),
                meta.get("flags", ()),
            )
        )
    return found


def flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"policy_steps": 5}} -> {"train.policy_steps": 5}: the inverse of `nest`."""
    flat: dict[str, Any] = {}
    for name, value in nested.items():
        dotted = f"{prefix}{name}"
        flat.update(flatten(value, f"{dotted}.") if isinstance(value, dict) else {dotted: value})
    return flat


def nest(values: dict[str, Any]) -> dict[str, Any]:
    """{"train.policy_steps": 5} -> {"train": {"policy_steps": 5}}."""
    nested: dict[str, Any] = {}
    for name, value in values.items():
        *parents, leaf = name.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def lookup(config: Any, name: str) -> Any:
    """The value of a dotted key."""
    for part in name.split("."):
        config = getattr(config, part)
    return config


def check_limits(config: Any) -> None:
    """Each key's declared limits, checked in one place for every way a config is made."""
    for key in keys(config):
        key.check(lookup(config, key.name))


# The prefix of a config key's argparse destination (borl/cli.py makes one flag per key).
SETTING = "setting:"


def settings_given(args: Any) -> dict[str, str]:
    """The config keys an argparse namespace got as flags, by dotted name, with their text."""
    return {
        name.removeprefix(SETTING): text
        for name, text in vars(args).items()
        if name.startswith(SETTING) and text is not None
    }
