"""``SoccerSpec``: everything that defines a soccer env, built once and passed whole.

Every soccer layer (``SoccerBatch``, the VecEnv and single-env adapters, evaluation, videos)
takes a spec, so a new soccer option is a spec field, the one place that uses it, and a test.
``SoccerSpec.from_config`` builds it from the config's ``env`` section; ``SoccerSpec(...)``
validates its values (bad ones raise ``UserError`` with one line).

Tasks and slots: every env of a soccer VecEnv runs one task for good. Each task with a positive
weight gets one env, then each remaining env goes to the task furthest below its quota
``n_envs * weight`` (ties: registry order), so every rollout holds every task in stable
proportions. There must be at least as many envs as tasks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from soccerlab.envs.soccer.backends.base import BACKENDS
from soccerlab.envs.soccer.backends.render import CameraSpec
from soccerlab.envs.soccer.behaviour.kick import KickSpec
from soccerlab.envs.soccer.behaviour.rewards import REWARD_MODES, ShapingConfig
from soccerlab.envs.soccer.behaviour.submission import Preprocessor
from soccerlab.envs.soccer.behaviour.tasks import TASKS, get_task
from soccerlab.envs.soccer.behaviour.walker_load import WalkerSpec
from soccerlab.errors import UserError

if TYPE_CHECKING:
    from soccerlab.config import EnvConfig

CONTROLS: tuple[str, ...] = ("torque", "walker")
OBSERVATION_FRAMES: tuple[str, ...] = Preprocessor.FRAMES


def normalize_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Validated task weights summing to 1, zero-weight tasks dropped, in registry order."""
    if not weights:
        raise UserError("task weights are empty: give at least one task")
    for name, weight in weights.items():
        get_task(name)
        if not np.isfinite(weight) or weight < 0:
            raise UserError(f"task weight of '{name}' must be a finite number >= 0, got {weight}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise UserError("task weights must not all be zero")
    return {name: float(weights[name]) / total for name in TASKS if weights.get(name, 0) > 0}


def plan_slots(weights: Mapping[str, float], n_envs: int) -> list[str]:
    """The task of every env (see the module docstring)."""
    shares = normalize_weights(weights)
    names = list(shares)
    if n_envs < len(names):
        raise UserError(f"{len(names)} soccer tasks need at least {len(names)} envs (one task "
                        f"per env), got {n_envs}: raise env.n_envs")
    counts = dict.fromkeys(names, 1)
    for _ in range(n_envs - len(names)):
        deficit = {name: n_envs * shares[name] - counts[name] for name in names}
        counts[max(names, key=lambda name: deficit[name])] += 1  # first maximum: registry order
    return [name for name in names for _ in range(counts[name])]


def hide_by_index(hide: Mapping[str, Any]) -> dict[int, tuple[str, ...]]:
    """``env.hide`` (task -> block names) keyed by one-hot index, as ``Preprocessor`` takes it."""
    return {get_task(t).onehot_index: tuple(names) for t, names in hide.items() if names}


def _choice(what: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise UserError(f"unknown {what} '{value}' (choose one of: {', '.join(options)})")


@dataclass(frozen=True)
class SoccerSpec:
    """One soccer env definition.

    Attributes:
        tasks: task -> weight (normalised to sum 1, zero weights dropped, registry order).
        control: ``"torque"`` (12-dim action in [-1, 1]) or ``"walker"`` (3-dim command; 4-dim
            with ``kick``).
        reward: ``"env"``, ``"competition"``, ``"shaped"`` or ``"progress"`` (``rewards.py``).
        observation: Frame of the unified observation's relative vectors: ``"world"`` or
            ``"heading"`` (see ``Preprocessor``).
        time_feature: Append the elapsed fraction of the episode (env steps so far / the time
            limit) to the 89 values: the observation has 90. Time is otherwise unobserved.
        hide: task -> names of observation blocks (``Preprocessor.BLOCKS``) that the
            task's episodes see as zeros (``Preprocessor``'s ``hide``).
        walker: Where the walker lives (required for walker control).
        kick: Walker control only: the kick macro a 4th action triggers (``behaviour.kick``).
        shaping: Parameters of the ``shaped``/``progress`` rewards.
        backend: ``"sai"`` (sai-mujoco envs; renders) or ``"fast"`` (one vectorised simulator).
        max_episode_steps: TimeLimit in env steps (default: the registered one).
        env_kwargs: Extra ``gym.make`` arguments (sai backend only).
        camera: Tracking-camera settings for rendering.
    """

    tasks: Mapping[str, float]
    control: str = "torque"
    reward: str = "env"
    observation: str = "world"
    time_feature: bool = False
    walker: WalkerSpec | None = None
    shaping: ShapingConfig = field(default_factory=ShapingConfig)
    backend: str = "sai"
    max_episode_steps: int | None = None
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    camera: CameraSpec | None = None
    kick: KickSpec | None = None
    hide: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tasks = {self.tasks: 1.0} if isinstance(self.tasks, str) else self.tasks
        object.__setattr__(self, "tasks", normalize_weights(tasks))
        object.__setattr__(self, "hide", {get_task(t).name: tuple(names)
                                          for t, names in dict(self.hide).items()})
        blocks = [name for name, _ in Preprocessor.BLOCKS]
        for task, names in self.hide.items():
            if get_task(task).onehot_index is None:
                raise UserError(f"env.hide: task {task} has no one-hot slot to hide blocks by")
            unknown = [n for n in names if n not in blocks]
            if unknown:
                raise UserError(f"env.hide: unknown observation block {unknown[0]!r} "
                                f"(blocks: {', '.join(blocks)})")
        _choice("control", self.control, CONTROLS)
        _choice("reward mode", self.reward, REWARD_MODES)
        _choice("observation frame", self.observation, OBSERVATION_FRAMES)
        _choice("soccer backend", self.backend, BACKENDS)
        if self.control == "walker" and self.walker is None:
            raise UserError("walker control needs a walker (path or hf:// reference)")
        if self.kick is not None and self.control != "walker":
            raise UserError("a kick macro needs walker control (env.control: walker)")
        if self.backend == "fast" and self.env_kwargs:
            raise UserError(f"env.backend: fast replicates the registered sai-mujoco envs only; "
                            f"env.kwargs {sorted(self.env_kwargs)} need env.backend: sai")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise UserError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")

    @classmethod
    def from_config(cls, env: EnvConfig) -> SoccerSpec:
        """The spec of a soccer ``env`` config section."""
        walker = None
        if env.walker is not None:
            w = env.walker
            walker = WalkerSpec(w.path, w.config, dict(w.command_ranges or {}) or None,
                                w.revision, w.sha256)
        kick = None
        if env.kick is not None:
            k = env.kick
            kick = KickSpec(k.clip, k.window, k.trigger, k.mirror, k.ramp_in, k.ramp_out,
                            k.support)
        return cls(dict(env.tasks or {}), control=env.control, reward=env.reward,
                   observation=env.observation, time_feature=env.time_feature, walker=walker,
                   shaping=ShapingConfig(**env.shaping.model_dump()), backend=env.backend,
                   max_episode_steps=env.max_episode_steps, env_kwargs=dict(env.kwargs),
                   kick=kick, hide={t: tuple(v) for t, v in env.hide.items()})

    def preprocessor(self, task_index: int | None = None) -> Preprocessor:
        """The ``Preprocessor`` that builds this spec's unified observations."""
        return Preprocessor(task_index=task_index, frame=self.observation,
                            hide=hide_by_index(self.hide))

    def replace(self, **changes: Any) -> SoccerSpec:
        """A copy with some fields changed (``tasks="kick_to_target"`` for one task)."""
        return dataclasses.replace(self, **changes)

    def slot_tasks(self, n_envs: int) -> list[str]:
        """The task of each of ``n_envs`` envs."""
        return plan_slots(self.tasks, n_envs)
