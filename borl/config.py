"""Typed run configuration: defaults, the study's presets, quick mode, YAML save/load."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from borl.algos import ALGORITHMS, AlgorithmClass
from borl.critics import CRITICS, IQLConfig
from borl.errors import BorlError, one_line
from borl.extraction import EXTRACTIONS, Extraction
from borl.files import write_atomic
from borl.logger import check_outputs
from borl.policies import POLICIES, DiffusionConfig, GaussianConfig
from borl.policies.vision import EncoderConfig
from borl.settings import Key, check_limits, flatten, keys, nest, setting, union_members


@dataclass
class TrainConfig:
    """Gradient steps per iteration; every iteration retrains on all data collected so far.

    The critic: with Polyak 0.005, value propagates about one Bellman backup per 200 steps. On Lift's
    iteration-1 data (3 demos + 50 rollouts) best-of-32 succeeded in 6/30 episodes with a 3k-step
    critic and 14/30 with a 10k-step one.
    The policy: 3k steps were enough for D0 but not for D0 plus 50 rollouts (8x the transitions):
    on square's iteration-1 data BC on all data reached 8-10% alone at 3k, 26% at 10k; threading
    and Lift were level (docs/results/normalisation). Equal step counts also keep the two busy
    side by side for the whole of training.
    The data grow with every iteration while the steps stay fixed, so each network sees its data
    fewer times: `epochs` keeps a floor on the passes (docs/recipe.md, "Training as the data grow").
    """

    policy_steps: int = setting(10000, minimum=0, help="the policy's gradient steps per iteration")
    critic_steps: int = setting(10000, minimum=0, help="the critic's gradient steps per iteration")
    batch_size: int = setting(256, minimum=1, help="transitions per gradient step")
    threads: int = setting(2, minimum=1, help="torch threads for training")
    epochs: float = setting(
        0.0,
        minimum=0,
        help="the least passes over each network's data per iteration: a network trains "
        "max(its *_steps, epochs x its transitions / batch_size) steps (0: always its *_steps)",
    )
    policy_epochs: float | None = setting(
        None,
        minimum=0,
        help="the policy's own floor of passes over its data per iteration (default: epochs)",
    )
    demo_share: float = setting(
        0.0,
        minimum=0,
        help="share of each policy batch drawn from the demonstrations, below 1 (0: uniform over its data)",
    )
    keep_fastest: float = setting(
        1.0,
        positive=True,
        help="filtered algorithms: the share of the successful rollouts the policy imitates, the "
        "shortest (highest discounted return) first, beside the demonstrations (1: all of them)",
    )
    overlap: bool = setting(
        True, help="train critic and policy side by side on separate threads when independent"
    )


@dataclass
class ExtractionConfig:
    """How the critic shapes the policy's actions: at rollout (implicit) or in training (AWR).

    kind "implicit": draw `candidates` actions from the policy, take the one with the highest min
    target Q (or sample softmax(Q / temperature) when temperature > 0).
    kind "awr": train the policy with each dataset action weighted by exp(beta * (Q - V)), clipped at
    max_weight; act with one policy sample. kind "none": plain imitation, one policy sample.

    beta 10 and max_weight 100 are IQL's AntMaze settings, the sparse goal-reaching setting closest to
    these tasks (IQL uses beta 3 for dense-reward locomotion, 0.5 for Kitchen and Adroit, and clips at
    100 throughout). With a 0/1 success reward Q and V lie in [0, 1], so advantages are small: beta 3
    would weight dataset actions within a few percent of each other, which is behaviour cloning.

    from_iteration: the first iteration whose agent acts with implicit extraction; earlier agents
    act with one policy sample, in their rollouts and as deployed in evaluation. 0 (the study's
    recipe) extracts from the start, with a critic that has seen only demonstrations.

    safety_k: when set, safe selection (borl/extraction/implicit.py `safe_choose`): the first
    candidate is the policy's own sample, and another acts only where the Q ensemble's lower
    confidence bound (mean - safety_k * std over members) of its advantage over that sample
    exceeds safety_margin. None is the study's plain argmax of the min Q.

    gate_episodes: when above 0, an agent that would act with implicit extraction first acts that
    many episodes with it and as many with the policy alone, on start states of their own (neither
    the rollouts' nor the evaluation's), and extracts, in its rollouts and as deployed, only if it
    succeeded at least as often with it; otherwise it acts with the policy's own sample. 0 (the
    study's recipe) deploys extraction unchecked.
    """

    kind: str = setting(
        "implicit",
        flags=("--extraction",),
        help="implicit (best-of-N by Q when acting), awr (Q-weighted BC in training) or none",
    )
    candidates: int = setting(
        32, minimum=1, flags=("--candidates",), help="implicit: actions drawn from the policy per state"
    )
    temperature: float = setting(
        0.0, minimum=0, help="implicit: 0 acts with the highest Q, above 0 samples softmax(Q / temperature)"
    )
    beta: float = setting(10.0, minimum=0, help="awr: each dataset action weighted by exp(beta (Q - V))")
    max_weight: float = setting(100.0, positive=True, help="awr: the weights' clip")
    from_iteration: int = setting(
        0, minimum=0, help="the first iteration whose agent acts with implicit extraction"
    )
    safety_k: float | None = setting(
        None, minimum=0, help="safe selection's k (null: the plain argmax of the min Q)"
    )
    safety_margin: float = setting(
        0.0, minimum=0, help="safe selection: the lower confidence bound a candidate must exceed"
    )
    gate_episodes: int = setting(
        0,
        minimum=0,
        help="paired episodes with and without implicit extraction on start states of their own before "
        "an agent deploys it; it extracts only if no worse on them (0: no check)",
    )

    @property
    def method(self) -> Extraction:
        """The extraction object `kind` names (validated by `validate`)."""
        return EXTRACTIONS[self.kind]

    @property
    def at_rollout(self) -> bool:
        """Whether acting needs the critic (implicit best-of-N) rather than one policy sample."""
        return self.method.acts_with_critic

    def extracts_at(self, iteration: int) -> bool:
        """Whether the agent trained at `iteration` acts with implicit extraction."""
        return self.at_rollout and iteration >= self.from_iteration


# The LN-ResNet's 4x expansion (IDQL's default) costs 2.5x the training time and 4x the sampling
# arithmetic (32 ms vs 12.6 ms per update, batch 256, 2 cores): on CPU the default run must finish in
# about 15 minutes, so the CPU default is no expansion. `--set policy.expansion=4` restores IDQL's.
CPU_EXPANSION = 1


@dataclass
class RunConfig:
    """Everything that determines a run; saved as DIR/config.yaml.

    The study's three axes are `policy_class`, `algorithm` and `extraction.kind`; `algo` names the
    point they make (a preset's name, or "policy_class-algorithm-extraction" for another combination).
    `policy` holds the diffusion policy's settings and `gaussian` the Gaussian policy's; only the one
    that `policy_class` names is used.
    """

    task: str = setting("lift", help="the task (`borl tasks` lists them)")
    algo: str = setting("recipe", help="the preset on the study's axes (`--algo`)")
    policy_class: str = setting("diffusion", help="the policy class: diffusion or gaussian")
    algorithm: str = setting(
        "value",
        help="the algorithm class: value (BC + critic), filtered_value (BC on successful episodes + "
        "critic), il, filtered_il, or steering (the policy frozen after D0, the critic retrained)",
    )
    dataset: str | None = setting(
        None,
        help="demonstrations: a robomimic HDF5 file, for pen also a Minari directory or a D4RL HDF5 "
        "file (default: made by the scripted expert)",
    )
    demos: int | None = setting(None, minimum=1, help="D0's size (default: the task's)")
    demo_noise: float | None = setting(
        None, minimum=0, help="the scripted expert's action noise (default: the task's)"
    )
    horizon: int | None = setting(None, minimum=1, help="episode length limit (default: the task's)")
    # Two iterations of 50 rollouts and 30 evaluation episodes (each also run by the policy alone) keep
    # the default Lift run near 15 minutes on 2 cores, three trainings of 10k critic + 10k policy steps
    # being most of it (docs/results/lift_default); a study sets its own.
    iterations: int = setting(2, minimum=0, help="iterations of collection and retraining after D0's")
    rollouts: int = setting(50, minimum=0, help="rollouts M per iteration")
    eval_episodes: int = setting(
        30, minimum=1, help="evaluation episodes per iteration (as deployed and as the policy alone)"
    )
    # A study's curve needs its ends measured well more than its middle; the starts are a prefix of
    # the ends' starts, so every iteration stays paired.
    eval_episodes_between: int | None = setting(
        None,
        minimum=1,
        help="evaluation episodes at the iterations between the first and the last (default: eval_episodes)",
    )
    eval_baseline: bool = setting(
        True, help="also evaluate the policy alone (one sample, no critic) on the same start states"
    )
    videos: int = setting(
        0,
        minimum=0,
        flags=("--video",),
        help="deployed evaluation episodes drawn as MP4s each iteration (DIR/videos/iter_K)",
    )
    log: tuple[str, ...] = setting(
        (),
        help="also send training curves and metrics to: tensorboard, wandb (offline unless WANDB_MODE), "
        "comma-separated; into DIR/logs",
    )
    seed: int = setting(0, help="seeds D0, training, rollouts and the evaluation's start states")
    workers: int = setting(2, minimum=1, help="collection and demonstration workers")
    envs_per_worker: int = setting(
        8, minimum=1, help="environments a worker steps in lockstep, its policy acting on them in one batch"
    )
    backend: str = setting("local", help="local processes or Ray actors (ray)")
    ray_address: str | None = setting(None, help="the Ray cluster to join (default: start a local Ray)")
    ou_sigma: float = setting(0.0, minimum=0, help="Ornstein-Uhlenbeck noise during collection (0: off)")
    ou_theta: float = setting(0.15, minimum=0, help="the OU noise's pull back to zero per step")
    device: str = setting("cpu", help="cpu or cuda")
    quick: bool = setting(False, help="the smallest settings: a one-minute check (`--quick`)")
    policy: DiffusionConfig = setting(
        factory=lambda: DiffusionConfig(expansion=CPU_EXPANSION), help="the diffusion policy"
    )
    gaussian: GaussianConfig = setting(factory=GaussianConfig, help="the Gaussian policy")
    critic: IQLConfig = setting(factory=IQLConfig, help="the critic")
    train: TrainConfig = setting(factory=TrainConfig, help="training")
    extraction: ExtractionConfig = setting(factory=ExtractionConfig, help="extraction")
    encoder: EncoderConfig = setting(factory=EncoderConfig, help="the image encoder (image tasks only)")

    @property
    def algorithm_class(self) -> AlgorithmClass:
        """The algorithm-class object `algorithm` names (validated by `validate`)."""
        return ALGORITHMS[self.algorithm]

    @property
    def uses_critic(self) -> bool:
        return self.algorithm_class.trains_critic

    def eval_episodes_at(self, iteration: int) -> int:
        """How many episodes evaluate `iteration`: eval_episodes at the first and last iteration."""
        between = 0 < iteration < self.iterations
        if between and self.eval_episodes_between is not None:
            return self.eval_episodes_between
        return self.eval_episodes


def _axes(policy_class: str, algorithm: str, extraction: str) -> dict[str, Any]:
    return {"policy_class": policy_class, "algorithm": algorithm, "extraction": {"kind": extraction}}


# The study's named points on its three axes (policy class, algorithm class, extraction).
PRESETS: dict[str, dict[str, Any]] = {
    "recipe": _axes("diffusion", "value", "implicit"),
    "il": _axes("diffusion", "il", "none"),
    "filtered-il": _axes("diffusion", "filtered_il", "none"),
    "filtered-recipe": _axes("diffusion", "filtered_value", "implicit"),
    "awr": _axes("diffusion", "value", "awr"),
    "gaussian-awr": _axes("gaussian", "value", "awr"),
    "gaussian-implicit": _axes("gaussian", "value", "implicit"),
    "steering": _axes("diffusion", "steering", "implicit"),
}


def axes_name(config: RunConfig) -> str:
    """The preset whose axes `config` has, else "policy_class-algorithm-extraction"."""
    mine = _axes(config.policy_class, config.algorithm, config.extraction.kind)
    for name, preset in PRESETS.items():
        if preset == mine:
            return name
    return f"{config.policy_class}-{config.algorithm}-{config.extraction.kind}"


QUICK: dict[str, Any] = {
    "demos": 3,
    "horizon": 80,
    "iterations": 1,
    "rollouts": 4,
    "eval_episodes": 4,
    "envs_per_worker": 2,
    "policy": {"width": 32, "blocks": 1, "expansion": 1},
    "gaussian": {"width": 32, "blocks": 1, "expansion": 1},
    "critic": {"hidden": 32},
    # One thread: tiny networks gain nothing from a second, and lose 10x to contention on busy cores.
    "train": {"policy_steps": 60, "critic_steps": 60, "batch_size": 64, "threads": 1},
    "extraction": {"candidates": 4},
    # Image tasks: 2.6% of ResNet-18's arithmetic, so that a quick image run trains on a CPU.
    "encoder": {"widths": (16, 32), "blocks": 1, "keypoints": 16, "features": 32},
}


def merge(config: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    """A copy of a dataclass config with (nested) overrides applied; unknown keys are an error."""
    names = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes = {}
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        if key not in names:
            raise BorlError(f"unknown config key '{name}' (`borl run --help` lists them)")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise BorlError(f"config key '{name}' needs a mapping, got {value!r}")
            value = merge(current, value, f"{name}.")
        else:
            value = _coerce(name, hints[key], value)
        changes[key] = value
    return dataclasses.replace(config, **changes)


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """`value` as the type `hint` names (ints as floats, lists as tuples), or a BorlError naming `name`."""
    allowed = union_members(hint)
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if typing.get_origin(kind) is tuple and isinstance(value, list | tuple):
            items = typing.get_args(kind)
            if items[-1:] == (Ellipsis,) and all(isinstance(v, items[0]) for v in value):
                return tuple(value)
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            if items == (float,) * len(value) and numbers:
                return tuple(float(v) for v in value)
        if isinstance(kind, type) and kind is not tuple and isinstance(value, kind):
            if kind is int and isinstance(value, bool):
                continue
            return value
    wanted = " or ".join(_type_name(kind) for kind in allowed)
    raise BorlError(f"{name} must be {wanted}, got {value!r}")


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        return "a list" if items[-1:] == (Ellipsis,) else f"a list of {len(items)} numbers"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "text", type(None): "null"}
    return names.get(kind, str(kind))


def with_preset(config: RunConfig, algo: str) -> RunConfig:
    """`config` moved to the preset's point on the study's three axes; unknown names are an error."""
    if algo not in PRESETS:
        raise BorlError(f"unknown preset '{algo}' (known: {', '.join(PRESETS)})")
    return merge(config, PRESETS[algo])


def build_config(algo: str = "recipe", quick: bool = False, *overrides: dict[str, Any]) -> RunConfig:
    """Defaults, then the preset, then quick mode, then each overrides mapping in turn (None = unset).

    Overrides may move the axes off the preset; `algo` then names the point they reach.
    """
    config = with_preset(RunConfig(), algo)
    if quick:
        config = merge(config, {"quick": True, **QUICK})
    for mapping in overrides:
        config = merge(config, {k: v for k, v in mapping.items() if v is not None})
    config = dataclasses.replace(config, algo=axes_name(config))
    validate(config)
    return config


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """Nested overrides from `key.sub=value` strings (`--set`)."""
    values: dict[str, str] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or not name:
            raise BorlError(f"--set needs KEY=VALUE, got '{assignment}'")
        values[name] = text
    return parse_settings(values)


def config_keys() -> dict[str, Key]:
    """Every leaf key of a RunConfig by its dotted name."""
    return {key.name: key for key in keys(RunConfig())}


def parse_settings(values: dict[str, str]) -> dict[str, Any]:
    """Nested overrides from {dotted key: text}, each text read as its key's type (Key.parse)."""
    known = config_keys()
    for name in values:
        if name not in known:
            raise BorlError(f"unknown config key '{name}' (`borl run --help` lists them)")
    return nest({name: known[name].parse(text) for name, text in values.items()})


def validate(config: RunConfig) -> None:
    """Reject settings that cannot run, with the offending name in the message."""
    check_limits(config)
    check_outputs(config.log)
    if config.critic.kind not in CRITICS:
        raise BorlError(f"unknown critic.kind '{config.critic.kind}' (known: {', '.join(CRITICS)})")
    CRITICS[config.critic.kind].check_config(config.critic)
    x = config.extraction
    if x.safety_k is not None:
        if x.temperature > 0:
            raise BorlError("safe selection (extraction.safety_k) takes temperature 0")
        if config.critic.num_critics < 2:
            raise BorlError("safe selection (extraction.safety_k) needs critic.num_critics of at least 2")
    if config.train.demo_share >= 1:
        raise BorlError("train.demo_share must be below 1 (the rest of each batch is the other data)")
    if config.train.keep_fastest > 1:
        raise BorlError("train.keep_fastest is a share of the successful rollouts: at most 1")
    if config.train.keep_fastest < 1 and not config.algorithm_class.imitates_successes_only:
        raise BorlError(
            f"train.keep_fastest chooses among successful rollouts, and algorithm '{config.algorithm}' "
            "imitates all data: use a filtered one (filtered_il, filtered_value)"
        )
    if config.gaussian.log_std_min >= config.gaussian.log_std_max:
        raise BorlError("gaussian.log_std_min must be below gaussian.log_std_max")
    _validate_axes(config)
    if config.backend not in ("local", "ray"):
        raise BorlError(f"unknown backend '{config.backend}' (known: local, ray)")
    if config.device not in ("cpu", "cuda"):
        raise BorlError(f"unknown device '{config.device}' (known: cpu, cuda)")


def _validate_axes(config: RunConfig) -> None:
    """Each axis takes a known value, and the combination can run."""
    known = {
        "policy class": (config.policy_class, POLICIES),
        "algorithm class": (config.algorithm, ALGORITHMS),
        "extraction": (config.extraction.kind, EXTRACTIONS),
    }
    for axis, (value, choices) in known.items():
        if value not in choices:
            raise BorlError(f"unknown {axis} '{value}' (known: {', '.join(choices)})")
    config.algorithm_class.check_extraction(config.extraction.method)
    if config.critic.share_encoder and config.extraction.method.weights_policy_loss:
        raise BorlError(
            f"critic.share_encoder cannot take extraction {config.extraction.kind}: the critic reads "
            "the policy's trained encoder, and this policy trains against the critic"
        )


def save_config(config: RunConfig, path: Path) -> None:
    write_atomic(path, yaml.safe_dump(_plain(dataclasses.asdict(config)), sort_keys=False))


def read_config_file(path: Path) -> dict[str, Any]:
    """The (nested) keys of a YAML config file, any subset of a RunConfig's; one BorlError if unreadable."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise BorlError(f"cannot read config {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise BorlError(f"config {path} is not valid YAML: {one_line(error)}") from None
    if not isinstance(data, dict):
        raise BorlError(f"config {path} is not a mapping")
    return data


# The keys that place a run on the study's three axes: a preset sets all three.
AXIS_KEYS = ("policy_class", "algorithm", "extraction.kind")


def as_assignments(data: dict[str, Any]) -> dict[str, str]:
    """A config file's (nested) keys as `--set` texts, {dotted key: text}, each read back to the
    file's value (a study keeps its settings so in study.yaml); unknown keys and bad values are one
    BorlError."""
    merge(RunConfig(), data)
    known = config_keys()
    return {name: known[name].format(value) for name, value in flatten(data).items()}


def load_config(path: Path) -> RunConfig:
    config = merge(RunConfig(), read_config_file(path))
    validate(config)
    return config


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
