"""Several soccer tasks in one vector env, in proportion to weights, plus the env factory.

How slots get tasks (``plan_slots``), deterministic given the weights and the slot count:

- ``assignment="fixed"`` (``"auto"`` when n_slots >= number of tasks): every slot runs one task
  for good. Each task with a positive weight gets one slot, then each remaining slot goes to the
  task furthest below its quota ``n_slots * weight`` (ties: registry order). Every rollout
  batch then holds every task in stable proportions.
- ``assignment="sample"`` (``"auto"`` when n_slots < number of tasks): every slot draws its
  task at each reset from the weights, with its own RNG seeded by the reset seed (or the
  construction seed), so task frequencies follow the weights in the long run and a seeded run
  repeats exactly.

All tasks share the observation (89,) and action spaces; ``info["task"]`` names the task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from soccerlab.envs.soccer.env import SoccerEnv
from soccerlab.envs.soccer.render import CameraSpec
from soccerlab.envs.soccer.rewards import ShapingConfig
from soccerlab.envs.soccer.tasks import TASKS, get_task
from soccerlab.envs.soccer.walker import JoystickWalker
from soccerlab.envs.soccer.walker_load import WalkerSpec, load_walker
from soccerlab.errors import UserError

ASSIGNMENTS: tuple[str, ...] = ("auto", "fixed", "sample")


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
    order = [name for name in TASKS if weights.get(name, 0) > 0]
    return {name: float(weights[name]) / total for name in order}


def plan_slots(
    weights: Mapping[str, float], n_slots: int, assignment: str = "auto"
) -> list[str | None]:
    """Task of every slot: a task name (fixed) or None (sampled at each reset); see module doc."""
    if assignment not in ASSIGNMENTS:
        raise UserError(
            f"unknown task assignment '{assignment}' (choose one of: {', '.join(ASSIGNMENTS)})"
        )
    if n_slots < 1:
        raise UserError(f"the number of envs must be >= 1, got {n_slots}")
    shares = normalize_weights(weights)
    names = list(shares)
    if assignment == "auto":
        assignment = "fixed" if n_slots >= len(names) else "sample"
    if assignment == "sample":
        return [None] * n_slots
    if n_slots < len(names):
        raise UserError(f"fixed task assignment needs at least {len(names)} envs, got {n_slots}")
    counts = dict.fromkeys(names, 1)
    for _ in range(n_slots - len(names)):
        deficit = {name: n_slots * shares[name] - counts[name] for name in names}
        best = max(names, key=lambda name: deficit[name])  # first maximum: registry order
        counts[best] += 1
    return [name for name in names for _ in range(counts[name])]


def _derived_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class MultiTaskSoccerEnv(gym.Env):
    """One vector-env slot that runs soccer tasks by weight (see the module docstring).

    Sub-envs (one ``SoccerEnv`` per task the slot may run) are built on first use; a walker is
    loaded once and shared, since only one sub-env runs at a time.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        weights: Mapping[str, float],
        slot: int = 0,
        n_slots: int = 1,
        assignment: str = "auto",
        seed: int | None = None,
        walker: WalkerSpec | str | JoystickWalker | None = None,
        **soccer_kwargs: Any,
    ):
        self.shares = normalize_weights(weights)
        self.fixed_task = plan_slots(self.shares, n_slots, assignment)[slot]
        self.tasks = [self.fixed_task] if self.fixed_task else list(self.shares)
        control = soccer_kwargs.get("control", "torque")
        if control == "walker" and walker is not None and not isinstance(walker, JoystickWalker):
            walker = load_walker(walker)
        self._kwargs = {**soccer_kwargs, "walker": walker}
        self._envs: dict[str, SoccerEnv] = {}
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._pending_seeds: dict[str, int] = {}
        self.current = self._env_for(self.tasks[0])
        self.observation_space = self.current.observation_space
        self.action_space = self.current.action_space
        self.render_mode = self.current.render_mode
        self.metadata = self.current.metadata

    def _env_for(self, task: str) -> SoccerEnv:
        if task not in self._envs:
            self._envs[task] = SoccerEnv(task, **self._kwargs)
        return self._envs[task]

    def _choose_task(self) -> str:
        if self.fixed_task:
            return self.fixed_task
        p = np.array([self.shares[name] for name in self.tasks])
        return self.tasks[int(self._rng.choice(len(self.tasks), p=p))]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._pending_seeds = {t: _derived_seed(seed, i) for i, t in enumerate(self.tasks)}
        task = self._choose_task()
        if seed is not None:
            self._pending_seeds[task] = seed
        self.current = self._env_for(task)
        return self.current.reset(seed=self._pending_seeds.pop(task, None), options=options)

    def step(self, action: np.ndarray):
        return self.current.step(action)

    def render(self) -> np.ndarray | None:
        return self.current.render()

    def close(self) -> None:
        for env in self._envs.values():
            env.close()


def make_soccer_env(
    task: str | Mapping[str, float],
    control: str = "torque",
    reward: str = "env",
    walker: WalkerSpec | str | JoystickWalker | None = None,
    render_mode: str | None = None,
    seed: int | None = None,
    slot: int = 0,
    n_slots: int = 1,
    assignment: str = "auto",
    shaping: ShapingConfig | None = None,
    camera: CameraSpec | None = None,
    env_kwargs: dict[str, Any] | None = None,
    observation: str = "world",
) -> gym.Env:
    """Build a soccer env from plain config values.

    Args:
        task: One task name, or a mapping task -> weight (multi-task; a one-task mapping gives
            a plain ``SoccerEnv``).
        control: ``"torque"`` (12-dim action in [-1, 1]) or ``"walker"`` (3-dim command).
        reward: ``"env"``, ``"competition"``, ``"shaped"`` or ``"progress"``.
        walker: WalkerSpec or path/``hf://`` reference; required for walker control.
        render_mode: None or ``"rgb_array"`` (tracking camera).
        seed: Seed of the first reset (and of the slot's task sampling).
        slot, n_slots, assignment: This env's index among ``n_slots`` vector-env slots and
            how slots get tasks (multi-task only; see ``plan_slots``).
        shaping, camera, env_kwargs, observation: See ``SoccerEnv``.
    """
    common = dict(
        control=control, reward=reward, walker=walker, render_mode=render_mode,
        shaping=shaping, camera=camera, seed=seed, env_kwargs=env_kwargs, observation=observation,
    )  # fmt: skip
    if isinstance(task, str):
        return SoccerEnv(task, **common)
    shares = normalize_weights(task)
    if len(shares) == 1:
        return SoccerEnv(next(iter(shares)), **common)
    return MultiTaskSoccerEnv(shares, slot=slot, n_slots=n_slots, assignment=assignment, **common)


def make_soccer_env_fns(
    task: str | Mapping[str, float], n_envs: int, seed: int | None = None, **kwargs: Any
) -> list[Callable[[], gym.Env]]:
    """One constructor per vector-env slot (for SB3's DummyVecEnv/SubprocVecEnv).

    Slot ``i`` gets seed ``seed + i`` (the convention of SB3's ``VecEnv.seed``).
    """
    if not isinstance(task, str):
        plan_slots(task, n_envs, kwargs.get("assignment", "auto"))  # fail early, in this process

    def make(i: int) -> Callable[[], gym.Env]:
        slot_seed = None if seed is None else seed + i
        return lambda: make_soccer_env(task, seed=slot_seed, slot=i, n_slots=n_envs, **kwargs)

    return [make(i) for i in range(n_envs)]
