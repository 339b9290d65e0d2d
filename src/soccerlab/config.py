"""The experiment schema: one YAML file, validated, typed and frozen.

The schema is the single source of defaults. Unknown keys and wrong types are errors that name
the key's dotted path (and suggest the closest valid key). Loading uses ``yaml.safe_load``
semantics only; command-line overrides are ``key.path=value`` pairs whose value is read as YAML.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from soccerlab.errors import UserError

#: SB3's default discount, where algo.params does not set gamma.
DEFAULT_GAMMA = 0.99

class _Section(BaseModel):
    """A config section: unknown keys are errors and values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


class ExperimentConfig(_Section):
    name: str = Field("run", description="Run name; the run directory is <name>-<timestamp>.")
    seed: int = Field(0, description="Seeds Python, NumPy, torch, the model and the envs.")
    output_dir: str = Field("experiments", description="Root of experiments/<env>/<algo>/.")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ValueError("use letters, digits, '.', '_' and '-' only")
        return v


class NormalizeConfig(_Section):
    """VecNormalize settings. ``env.normalize: true`` means all defaults."""

    obs: bool = Field(True, description="Normalise observations with running mean/std.")
    reward: bool = Field(True, description="Scale rewards by the running std of the return.")
    clip_obs: float = Field(10.0, gt=0)
    clip_reward: float = Field(10.0, gt=0)
    freeze_obs: bool = Field(
        False, description="Keep the observation statistics as they start (e.g. a BC run's)."
    )


class WalkerSection(_Section):
    """The joystick walker that turns (vx, vy, yaw rate) commands into joint torques."""

    path: str = Field(description="TorchScript walker: a local .pt or hf://owner/repo/file.pt")
    config: str | None = Field(None, description="Its YAML (default: path with .yaml suffix).")
    command_ranges: dict[Literal["vx", "vy", "yaw"], tuple[float, float]] | None = Field(
        None, description="Physical ranges for commands -1 and +1 (axes not given: the walker YAML's)."
    )
    revision: str | None = Field(None, description="hf:// walkers: the hub commit to fetch (pins it).")
    sha256: str | None = Field(None, description="Expected SHA-256 of the .pt file (required for hf:// without revision).")


class KickSection(_Section):
    """Walker control's kick macro: a 4th action above ``trigger`` plays a recorded kick."""

    clip: str = Field(description="Mocap clip .npz (qpos (T, 19), frequency), e.g. kick_ball2.npz.")
    window: tuple[float, float] | None = Field(
        None, description="[start, end] seconds of the clip (default: measured for the shipped clips)."
    )
    trigger: float = Field(0.5, ge=-1, lt=1, description="The kick starts when action[3] exceeds this.")
    mirror: bool = Field(False, description="Kick with the other foot (legs swapped).")
    ramp_in: float = Field(0.1, ge=0, description="Seconds blending from the current joints into the clip.")
    ramp_out: float = Field(0.2, ge=0, description="Seconds blending from the clip's end to the default pose.")
    support: Literal["clip", "walker"] = Field(
        "clip", description="clip: the clip drives both legs; walker: the kicking leg only."
    )

    @field_validator("window")
    @classmethod
    def _window(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 <= v[0] < v[1]:
            raise ValueError("window must be [start, end] seconds with 0 <= start < end")
        return v


class ShapingSection(_Section):
    """The ``shaped`` and ``progress`` rewards: a distance potential plus the final score."""

    gamma: float | None = Field(None, gt=0, le=1, description="Defaults to algo.params.gamma.")
    robot_ball: float = Field(1.0, ge=0, description="Potential per metre robot-to-ball.")
    ball_target: float = Field(3.0, ge=0, description="Potential per metre ball-to-goal/target.")
    score_weight: float = Field(3.0, ge=0, description="Multiplier of the final competition score.")


class EnvConfig(_Section):
    id: str | None = Field(None, description="A Gymnasium env id, e.g. Pendulum-v1 (or use tasks).")
    tasks: dict[str, float] | None = Field(
        None, description="Soccer: task -> weight; several tasks train one policy on all of them."
    )
    n_envs: int = Field(1, ge=1, description="Parallel envs in the training VecEnv.")
    vec_env: Literal["dummy", "subproc"] = Field("dummy", description="In-process or subprocess envs.")
    normalize: NormalizeConfig | None = Field(
        None, description="VecNormalize: false, true (defaults) or a mapping of its settings."
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra gym.make keyword arguments.")
    max_episode_steps: int | None = Field(None, ge=1, description="Override the env's time limit.")
    # soccer only
    control: Literal["torque", "walker"] = Field("torque", description="Soccer action space.")
    observation: Literal["world", "heading"] = Field(
        "world", description="Soccer: relative vectors world-frame (unified layout) or heading-frame."
    )
    time_feature: bool = Field(
        False, description="Soccer: append the elapsed fraction of the episode (env steps / time "
        "limit) to the observation (90 values); export counts steps the same way."
    )
    reward: Literal["env", "competition", "shaped", "progress"] = Field(
        "env", description="Soccer training reward."
    )
    hide: dict[str, list[str]] = Field(
        default_factory=dict, description="Soccer: task -> observation blocks its episodes see "
        "as zeros, e.g. {obstacle_penalty_kick: [target_xpos_rel_robot, defender_xpos]}; "
        "export ships the same."
    )
    walker: WalkerSection | None = Field(None, description="Required by control: walker.")
    kick: KickSection | None = Field(
        None, description="Walker control: a 4th action component triggers a recorded kick."
    )
    shaping: ShapingSection = Field(default_factory=ShapingSection)
    assignment: Literal["auto", "fixed"] = Field(
        "auto", description="Kept for old configs: every env runs one task, envs shared by weight."
    )
    backend: Literal["sai", "fast"] = Field("sai", description="Soccer simulator backend.")

    @field_validator("normalize", mode="before")
    @classmethod
    def _normalize_bool(cls, v: Any) -> Any:
        if v is True:
            return {}
        return None if v is False else v

    @field_serializer("normalize")
    def _normalize_out(self, v: NormalizeConfig | None) -> Any:
        return False if v is None else v.model_dump()

    @model_validator(mode="after")
    def _one_env(self) -> EnvConfig:
        if self.id is None and self.tasks is None:
            raise ValueError("missing required key 'env.id' (or env.tasks for soccer)")
        if self.id is not None and self.tasks is not None:
            raise ValueError("env.id and env.tasks are exclusive: give one")
        if self.tasks is None:
            defaults = EnvConfig.model_fields
            for key in ("control", "observation", "time_feature", "reward", "walker", "kick",
                        "assignment", "backend", "hide"):
                if getattr(self, key) != defaults[key].get_default(call_default_factory=True):
                    raise ValueError(f"env.{key} applies to soccer tasks only (set env.tasks)")
        elif self.control == "walker" and self.walker is None:
            raise ValueError("env.control: walker needs env.walker.path")
        elif self.kick is not None and self.control != "walker":
            raise ValueError("env.kick needs env.control: walker")
        return self

    @property
    def is_soccer(self) -> bool:
        return self.tasks is not None

    @property
    def label(self) -> str:
        """A short filesystem-safe name for the env, used in run paths."""
        if self.tasks is not None:
            from soccerlab.envs.soccer.behaviour.tasks import COMPETITION_TASKS

            names = [t for t, w in self.tasks.items() if w > 0]
            label = "showdown" if set(names) == set(COMPETITION_TASKS) else "+".join(names)
        else:
            label = str(self.id)
        return re.sub(r"[^A-Za-z0-9._+-]+", "_", label)


class InitConfig(_Section):
    """Warm start from pretrained weights."""

    path: str = Field(description="A run directory (e.g. a BC run), an SB3 .zip, or a PyTorch state dict file.")
    freeze_layers: int = Field(0, ge=0, description="Freeze the first N linear layers of the actor.")
    unfreeze_at: int | None = Field(None, ge=0, description="Step at which frozen layers unfreeze.")


class DemosConfig(_Section):
    """Off-policy learning with demonstrations in the replay buffer (``imitation.replay``)."""

    path: str = Field(description="A demos .npz (soccerlab demos record), recorded with this reward.")
    fraction: float = Field(
        0.25, gt=0, le=1, description="At most this share of the replay buffer is pre-filled with demos."
    )
    batch_share: float | None = Field(
        None, ge=0, le=1,
        description="Keep this share of every batch from the demos (RLPD-style); null: uniform over all.",
    )
    min_score: float | None = Field(None, description="Load only demo episodes scoring above this.")


class BCTermConfig(_Section):
    """Behaviour cloning beside RL, decaying (``imitation.bc_term``); any algorithm."""

    demos: str = Field(description="A demos .npz (soccerlab demos record, or a BC run's dagger.npz).")
    learning_rate: float = Field(1e-4, gt=0, description="The BC steps' Adam learning rate at step 0.")
    until: int = Field(100_000, ge=1, description="Env steps at which the rate reaches 0.")
    batch_size: int = Field(256, ge=1)
    steps: int | None = Field(None, ge=1, description="BC steps per policy update (default: the algorithm's own).")
    min_score: float | None = Field(None, description="Use only demo episodes scoring above this.")


class PolicyKwargs(_Section):
    """SB3 policy_kwargs, with activations and feature extractors given by name.

    Keys other than these four are passed to the policy as they are and checked against its
    constructor's signature when the model is built.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    net_arch: list[int] | dict[str, list[int]] | None = None
    activation_fn: str | None = Field(None, description="relu, tanh, elu, gelu, silu, leaky_relu")
    features_extractor_class: str | None = Field(None, description="flatten, mlp or residual_mlp")
    features_extractor_kwargs: dict[str, Any] = Field(default_factory=dict)


class AlgoConfig(_Section):
    name: str = Field("ppo", description="ppo, a2c, sac, td3, ddpg, tqc, crossq, trpo")
    policy: str = Field("MlpPolicy", description="SB3 policy name (MlpPolicy, MultiInputPolicy...).")
    params: dict[str, Any] = Field(default_factory=dict, description="Algorithm keyword arguments.")
    policy_kwargs: PolicyKwargs = Field(default_factory=PolicyKwargs)
    lr_schedule: Literal["constant", "linear"] = Field(
        "constant", description="linear decays params.learning_rate to 0 over train.total_timesteps."
    )
    init: InitConfig | None = None
    demos: DemosConfig | None = None
    bc_term: BCTermConfig | None = None

    @field_validator("name")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()

    @property
    def gamma(self) -> float:
        """The learner's discount (SB3's default where params do not set it)."""
        return float(self.params.get("gamma", DEFAULT_GAMMA))


class ValidationConfig(_Section):
    """Held-out transitions for off-policy algorithms; their critic TD error is logged."""

    every: int = Field(5000, ge=1, description="Log train/val_td_error every N steps.")
    size: int = Field(1000, ge=1, description="Transitions held out (never trained on).")
    fraction: float = Field(0.05, gt=0, le=0.5, description="Share of transitions diverted until full.")


class TrainConfig(_Section):
    total_timesteps: int = Field(100_000, ge=1)
    checkpoint_every: int | None = Field(10_000, ge=1, description="Env steps between checkpoints.")
    keep_checkpoints: int = Field(3, ge=1, description="Keep the last K checkpoints.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int | None = Field(
        1, ge=1, description="CPU threads for torch in the learner (null: torch's default)."
    )
    progress_bar: bool = True
    validation: ValidationConfig | None = None


class EvalConfig(_Section):
    every: int | None = Field(10_000, ge=1, description="Env steps between evaluations (null: final only).")
    episodes: int = Field(5, ge=1, description="Episodes per seed.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    deterministic: bool = True
    task_weights: dict[str, float] | None = Field(
        None, description="Soccer: weights of the overall competition score (default: equal)."
    )


class VideoConfig(_Section):
    every: int | None = Field(None, ge=1, description="Record every N env steps (null: never).")
    length: int = Field(300, ge=1, description="Frames per video.")
    width: int = Field(480, ge=16)
    height: int = Field(360, ge=16)


class WandbConfig(_Section):
    mode: Literal["online", "offline", "disabled"] = "disabled"
    project: str = "soccerlab"
    entity: str | None = None
    tags: list[str] = Field(default_factory=list)


class LoggingConfig(_Section):
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    verbose: int = Field(0, ge=0, le=2, description="SB3 verbosity.")


class DaggerConfig(_Section):
    """DAgger after behaviour cloning: the clone plays, a scripted expert labels its states."""

    expert: str = Field(description="The scripted expert that labels (soccerlab demos record's "
                        "expert names, e.g. striker).")
    rounds: int = Field(3, ge=1, description="Play, label, retrain: this many times.")
    episodes: int = Field(10, ge=1, description="Episodes per task the clone plays each round.")
    settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="striker: task -> {setting: value} changes to its "
        "tuned settings (demos record's --set), e.g. {kick_to_target: {foot: 0}}")
    beta: float = Field(0.0, ge=0, le=1, description="Round r plays the expert's own action at "
                        "a decision with probability beta / 2^r (DAgger's mixture; 0: the clone "
                        "alone).")
    seed: int = Field(1000, description="Round r (from 0) plays episode i of a task with seed "
                      "seed + r * episodes + i (demos record from 0).")


class BCConfig(_Section):
    """Behaviour cloning (``soccerlab bc``): the config's actor trained on demonstrations."""

    demos: str = Field(description="A demos .npz (soccerlab demos record).")
    epochs: int = Field(200, ge=1, description="Passes over the training split at most.")
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    validation_fraction: float = Field(0.1, gt=0, lt=1, description="Share of episodes held out.")
    patience: int = Field(20, ge=1, description="Stop after this many epochs without a better validation loss.")
    min_score: float | None = Field(None, description="Use only demo episodes scoring above this.")
    dagger: DaggerConfig | None = Field(None, description="Then DAgger rounds (walker control).")


class SweepParam(_Section):
    """One dimension of a sweep's search space (an Optuna distribution)."""

    type: Literal["float", "int", "categorical"] = Field(description="float, int or categorical")
    low: float | None = Field(None, description="float/int: the lower bound (inclusive)")
    high: float | None = Field(None, description="float/int: the upper bound (inclusive)")
    log: bool = Field(False, description="float/int: sample on a log scale (low > 0)")
    step: float | None = Field(None, gt=0, description="float/int: discretisation step")
    choices: list[Any] | None = Field(None, description="categorical: the values to choose from")

    @model_validator(mode="after")
    def _check(self) -> SweepParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("empty choices: a categorical parameter needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("a categorical parameter takes only 'choices'")
            return self
        if self.choices is not None:
            raise ValueError(f"a {self.type} parameter takes low/high, not 'choices'")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs 'low' and 'high'")
        if self.high <= self.low:
            raise ValueError(f"empty range: low {self.low:g} must be below high {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0 (got {self.low:g})")
        if self.log and self.step is not None:
            raise ValueError("log and step are exclusive")
        if self.type == "int" and any(
                v is not None and float(v) != int(v) for v in (self.low, self.high, self.step)):
            raise ValueError("an int parameter needs integer low, high and step")
        return self


class SweepConfig(_Section):
    """``soccerlab sweep``: the search space and how Optuna explores it (ignored by train)."""

    params: dict[str, SweepParam] = Field(
        default_factory=dict, description="Config key path -> distribution.")
    objective: str = Field(
        "auto", description="auto (soccer: comp/overall, else mean_return), score, mean_return, "
                            "success_rate, comp/overall or comp/<task>: an evaluations.csv column")
    value: Literal["final", "best"] = Field(
        "final", description="A trial's value: its final evaluation or its best one.")
    direction: Literal["maximize", "minimize"] = "maximize"
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    startup_trials: int = Field(
        5, ge=0, description="Random trials before TPE, and trials before the median pruner prunes.")
    seed: int | None = Field(None, description="Sampler seed (null: random).")
    heartbeat: int = Field(60, ge=1, description="Seconds between a running trial's heartbeats.")
    grace: int | None = Field(
        None, ge=1, description="Seconds without heartbeat before a trial is failed (null: 2 x heartbeat).")
    retries: int = Field(3, ge=0, description="Times a trial whose worker died is retried.")


class Config(_Section):
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)
    env: EnvConfig
    algo: AlgoConfig = Field(default_factory=AlgoConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    bc: BCConfig | None = None
    sweep: SweepConfig | None = Field(None, description="soccerlab sweep's search space.")

    @model_validator(mode="after")
    def _sweep_paths(self) -> Config:
        if self.sweep is None:
            return self
        for path in self.sweep.params:
            problem = _key_path_problem(path)
            if problem:
                raise ValueError(f"sweep.params: {problem}")
        objective = self.sweep.objective
        known = ["auto", "score", "mean_return", "success_rate"]
        if self.env.tasks:
            known += ["comp/overall", *(f"comp/{t}" for t in self.env.tasks)]
        if objective not in known:
            raise ValueError(f"sweep.objective: unknown {objective!r}{suggest(objective, known)}; "
                             f"known: {', '.join(known)}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _shaping_gamma(cls, data: Any) -> Any:
        """The shaped reward must discount like the learner: default its gamma to the algo's."""
        if isinstance(data, dict) and isinstance(data.get("env"), dict) and data["env"].get("tasks"):
            env = dict(data["env"])
            shaping = env.get("shaping") or {}
            if isinstance(shaping, dict) and shaping.get("gamma") is None:
                algo = data.get("algo") if isinstance(data.get("algo"), dict) else {}
                params = algo.get("params") if isinstance(algo.get("params"), dict) else {}
                env["shaping"] = {**shaping, "gamma": params.get("gamma", DEFAULT_GAMMA)}
                data = {**data, "env": env}
        return data

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML-safe dict that loads back into an equal Config."""
        return self.model_dump(mode="json", exclude_none=False)


# Sections whose values may change when a run is resumed; everything else defines the run.
RESUMABLE_SECTIONS = ("train", "eval", "video", "logging", "sweep")


def _key_path_problem(path: str) -> str | None:
    """Why ``path`` (e.g. ``algo.params.learning_rate``) is not a key of the schema, or None.

    Free-form mappings (``algo.params``, ``env.kwargs``, extra policy_kwargs...) accept any key
    below them; those are checked when a trial's model is built.
    """
    parts = path.split(".")
    if not path or any(not p for p in parts):
        return f"bad key path {path!r}"
    if parts[0] == "sweep":
        return f"cannot sweep {path!r}: sweep.* configures the sweep itself"
    if path in ("experiment.name", "experiment.output_dir"):
        return f"cannot sweep {path!r}: each trial's run is named and placed by the sweep"
    model: Any = Config
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            if model.model_config.get("extra") == "allow":
                return None
            where = ".".join(parts[:i + 1])
            return f"unknown key path {path!r}: no key '{where}'{suggest(part, list(model.model_fields))}"
        sub = _model_of(field.annotation)
        if sub is None:
            if i < len(parts) - 1 and not _is_mapping(field.annotation):
                return f"unknown key path {path!r}: {'.'.join(parts[:i + 1])} is not a section"
            return None
        model = sub
    return None


def _is_mapping(annotation: Any) -> bool:
    if getattr(annotation, "__origin__", None) is dict:
        return True
    return any(_is_mapping(a) for a in getattr(annotation, "__args__", ()) or ())


# ---------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 requires ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{source}: invalid YAML{where}: {problem}") from None


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


# ---------------------------------------------------------------------------------------------
# Loading, overrides, errors
# ---------------------------------------------------------------------------------------------


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML experiment file, apply ``key.path=value`` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config {path}: {exc}") from None
    data = parse_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of sections")
    return config_from_dict(apply_overrides(data, overrides), source=str(path))


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{source}: {_describe(exc)}") from None


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b.c=value`` set (value parsed as YAML)."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise UserError(f"bad override {item!r}: expected key.path=value")
        value = parse_yaml(raw, f"override {key}") if raw.strip() else None
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise UserError(f"bad override {item!r}: {where} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def _describe(exc: ValidationError) -> str:
    """One line for the first validation error, naming the key's dotted path."""
    # an unknown key usually explains the errors that follow from it: report it first
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = [str(p) for p in first["loc"] if not _is_union_tag(p)]
    path = ".".join(loc)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if first["type"] == "extra_forbidden":
        parent, name = loc[:-1], loc[-1]
        hint = suggest(name, _valid_keys(parent))
        return f"unknown key '{path}'{hint}{more}"
    if first["type"] == "missing":
        return f"missing required key '{path}'{more}"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "value_error" and msg.startswith(("missing required key", "env.", "sweep.")):
        return f"{msg}{more}"
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"{path}: {msg}{shown}{more}"


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the union member's name (e.g. 'bool', 'NormalizeConfig') into the location
    return isinstance(part, str) and (part[:1].isupper() or part in {"bool", "int", "float", "str"}
                                      or part.startswith(("list[", "dict[")))


def _valid_keys(parent: list[str]) -> list[str]:
    model: Any = Config
    for part in parent:
        field = model.model_fields.get(part)
        if field is None:
            continue  # a key of a mapping of sections (sweep.params.<path>)
        model = _model_of(field.annotation)
        if model is None:
            return []
    return list(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def suggest(name: str, options: list[str]) -> str:
    """' (did you mean 'x'?)' for the closest option, or ''."""
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_resume_compatible(old: Config, new: Config) -> None:
    """Resuming may change only train/eval/video/logging; anything else defines the run."""
    a, b = old.to_dict(), new.to_dict()
    for section in a:
        if section in RESUMABLE_SECTIONS:
            continue
        diff = _first_difference(a[section], b.get(section), section)
        if diff:
            raise UserError(
                f"cannot resume: {diff} differs from the run's config; only "
                f"{', '.join(RESUMABLE_SECTIONS)} may change on resume"
            )


def _first_difference(a: Any, b: Any, path: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    return None if a == b else path
