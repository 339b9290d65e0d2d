"""Build the envs a Config describes: single envs, VecEnvs and VecNormalize.

Env constructors are small picklable objects so that SubprocVecEnv workers can build them;
a worker also drops to one torch thread (torch's default threading cut sai-mujoco throughput by
two thirds on a 2-core machine) and ignores Ctrl-C, which the main process handles.

Soccer with ``env.backend: fast``: training and evaluation VecEnvs come from the fast
simulators (``soccer.fast.make_soccer_vec_env``, the same values as the sai-mujoco DummyVecEnv);
single envs (``env_factory``: videos, ``soccerlab play``) stay on sai-mujoco, which has the
same dynamics and can render.
"""

from __future__ import annotations

import importlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

from soccerlab.config import Config, EnvConfig, NormalizeConfig, suggest
from soccerlab.envs.finite import FiniteGuard
from soccerlab.errors import UserError

# Env-id prefixes registered by packages that must be imported first.
_REGISTERING_PACKAGES = {"LowerT1": "sai_mujoco", "InvertedPendulumWheel": "sai_mujoco"}


def ensure_registered(env_id: str) -> None:
    """Import what registers ``env_id``; raise UserError (with a suggestion) if nothing does."""
    if ":" in env_id:  # gymnasium's "module:EnvId" form imports the module itself
        module = env_id.split(":", 1)[0]
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UserError(f"env.id {env_id!r}: cannot import {module}: {exc}") from None
        env_id = env_id.split(":", 1)[1]
    if env_id in gym.registry:
        return
    for prefix, package in _REGISTERING_PACKAGES.items():
        if env_id.startswith(prefix):
            importlib.import_module(package)
    if env_id not in gym.registry:
        raise UserError(f"unknown env id {env_id!r}{suggest(env_id, list(gym.registry))}")


def prepare_worker() -> None:
    """Settings for an env worker process (see the module docstring)."""
    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass(frozen=True)
class GymEnvFactory:
    """Builds ``gym.make(env_id, ...)`` wrapped in a Monitor; picklable for subprocesses."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    render_mode: str | None = None
    in_subprocess: bool = False

    def __call__(self) -> gym.Env:
        if self.in_subprocess:
            prepare_worker()
        ensure_registered(self.env_id)
        kwargs = dict(self.kwargs)
        if self.max_episode_steps is not None:
            kwargs["max_episode_steps"] = self.max_episode_steps
        if self.render_mode is not None:
            kwargs["render_mode"] = self.render_mode
        try:
            env = gym.make(self.env_id, **kwargs)
        except TypeError as exc:
            raise UserError(f"env.kwargs not accepted by {self.env_id}: {exc}") from None
        return Monitor(env)

    def with_options(self, **changes: Any) -> GymEnvFactory:
        return GymEnvFactory(**{**self.__dict__, **changes})


@dataclass(frozen=True)
class SoccerEnvFactory:
    """Builds one slot of a soccer vector env (``make_soccer_env``) in a Monitor; picklable."""

    tasks: dict[str, float]
    control: str
    reward: str
    walker: Any  # WalkerSpec | None
    shaping: Any  # ShapingConfig
    assignment: str
    env_kwargs: dict[str, Any]
    slot: int = 0
    n_slots: int = 1
    render_mode: str | None = None
    camera: Any = None  # CameraSpec | None
    in_subprocess: bool = False
    observation: str = "world"

    def __call__(self) -> gym.Env:
        from soccerlab.envs.soccer import make_soccer_env

        if self.in_subprocess:
            prepare_worker()
        env = make_soccer_env(
            self.tasks, control=self.control, reward=self.reward, walker=self.walker,
            render_mode=self.render_mode, slot=self.slot, n_slots=self.n_slots,
            assignment=self.assignment, shaping=self.shaping, camera=self.camera,
            env_kwargs=self.env_kwargs, observation=self.observation,
        )
        return Monitor(env)


def soccer_factory(env: EnvConfig, tasks: dict[str, float] | None = None, slot: int = 0,
                   n_slots: int = 1, render_mode: str | None = None, in_subprocess: bool = False,
                   width: int | None = None, height: int | None = None) -> SoccerEnvFactory:
    from soccerlab.envs.soccer import CameraSpec, ShapingConfig, WalkerSpec

    walker = None
    if env.walker is not None:
        ranges = None
        if env.walker.command_ranges:
            defaults = {"vx": (-1.0, 1.0), "vy": (-1.0, 1.0), "yaw": (-1.0, 1.0)}
            given = {**defaults, **env.walker.command_ranges}
            ranges = tuple(tuple(given[k]) for k in ("vx", "vy", "yaw"))
        walker = WalkerSpec(env.walker.path, env.walker.config, ranges)
    shaping = ShapingConfig(**env.shaping.model_dump())
    camera = CameraSpec(width=width, height=height) if width and height else None
    env_kwargs = dict(env.kwargs)
    if env.max_episode_steps is not None:
        env_kwargs["max_episode_steps"] = env.max_episode_steps
    return SoccerEnvFactory(dict(tasks or env.tasks), env.control, env.reward, walker, shaping,
                            env.assignment, env_kwargs, slot, n_slots, render_mode, camera,
                            in_subprocess, env.observation)


def env_factory(env: EnvConfig, render_mode: str | None = None, in_subprocess: bool = False,
                slot: int = 0, n_slots: int = 1, **render_kwargs: Any) -> Callable[[], gym.Env]:
    """The constructor of one env (one vector-env slot) of this config."""
    if env.is_soccer:
        return soccer_factory(env, slot=slot, n_slots=n_slots, render_mode=render_mode,
                              in_subprocess=in_subprocess, **render_kwargs)
    kwargs = {**env.kwargs, **render_kwargs}
    return GymEnvFactory(env.id, kwargs, env.max_episode_steps, render_mode, in_subprocess)


def check_env_config(env: EnvConfig) -> None:
    """Fail early, with one line, on an env the config cannot build."""
    if not env.is_soccer:
        ensure_registered(env.id)
        return
    from soccerlab.envs.soccer.multitask import normalize_weights

    normalize_weights(env.tasks)
    if env.backend == "fast":
        check_fast_backend(env)
    if env.walker is not None:
        from soccerlab.envs.soccer import load_walker

        load_walker(soccer_factory(env).walker, 1)  # a missing or broken walker fails here


def check_fast_backend(env: EnvConfig, n_envs: int | None = None, vec_env: str | None = None,
                       tasks: dict[str, float] | None = None) -> None:
    """UserError for what ``env.backend: fast`` does not support (see ``soccer.fast``)."""
    from soccerlab.envs.soccer.fast import get_fast_task
    from soccerlab.envs.soccer.fast.soccer_vec_env import slot_plan

    if (vec_env or env.vec_env) == "subproc":
        raise UserError("env.backend: fast steps all envs in one process (physics in native "
                        "threads); set env.vec_env: dummy, or use env.backend: sai")
    if env.kwargs:
        raise UserError(f"env.backend: fast replicates the registered sai-mujoco envs only; "
                        f"env.kwargs {sorted(env.kwargs)} need env.backend: sai")
    weights = dict(tasks or env.tasks or {})
    for task, weight in weights.items():
        if weight > 0:
            get_fast_task(task)
    slot_plan(weights, n_envs or env.n_envs, env.assignment)


def fast_soccer_vec_env(env: EnvConfig, n_envs: int, tasks: dict[str, float] | None = None,
                        vec_env: str | None = None) -> VecEnv:
    """The fast backend's VecEnv of ``n_envs`` soccer envs (``tasks`` overrides env.tasks)."""
    from soccerlab.envs.soccer.fast import make_soccer_vec_env

    check_fast_backend(env, n_envs, vec_env, tasks)
    f = soccer_factory(env, tasks=tasks)
    return make_soccer_vec_env(f.tasks, n_envs, control=f.control, reward=f.reward,
                               walker=f.walker, shaping=f.shaping, assignment=f.assignment,
                               env_kwargs=f.env_kwargs, observation=f.observation)


def make_vec_env(env: EnvConfig, n_envs: int, seed: int | None, vec_env: str | None = None) -> VecEnv:
    """A VecEnv of ``n_envs`` slots, seeded ``seed + i`` at the first reset (no normalisation)."""
    venv: VecEnv
    if env.is_soccer and env.backend == "fast":
        venv = fast_soccer_vec_env(env, n_envs, vec_env=vec_env)
    else:
        subproc = (vec_env or env.vec_env) == "subproc" and n_envs > 1
        fns = [env_factory(env, in_subprocess=subproc, slot=i, n_slots=n_envs)
               for i in range(n_envs)]
        venv = SubprocVecEnv(fns) if subproc else DummyVecEnv(fns)
    if seed is not None:
        venv.seed(seed)
    return venv


def make_training_env(cfg: Config, seed: int) -> VecEnv:
    """The training VecEnv, wrapped in VecNormalize when ``env.normalize`` asks for it."""
    venv = FiniteGuard(make_vec_env(cfg.env, cfg.env.n_envs, seed))  # under VecNormalize
    norm = cfg.env.normalize
    if norm is not None:
        venv = wrap_normalize(venv, norm, gamma=float(cfg.algo.params.get("gamma", 0.99)))
    return venv


def eval_suite(cfg: Config) -> list[tuple[str, Callable[[int], VecEnv]]]:
    """The envs an evaluation covers, by name: each builds an n-env VecEnv (no normalisation).

    A soccer config is evaluated task by task (every task with a positive weight)."""
    if not cfg.env.is_soccer:
        return [(str(cfg.env.id), lambda n: make_vec_env(cfg.env, n, seed=None, vec_env="dummy"))]

    def task_env(task: str) -> Callable[[int], VecEnv]:
        if cfg.env.backend == "fast":
            return lambda n: fast_soccer_vec_env(cfg.env, n, tasks={task: 1.0}, vec_env="dummy")
        return lambda n: DummyVecEnv([soccer_factory(cfg.env, tasks={task: 1.0}) for _ in range(n)])

    from soccerlab.envs.soccer.multitask import normalize_weights

    return [(task, task_env(task)) for task in normalize_weights(cfg.env.tasks)]


def wrap_normalize(venv: VecEnv, norm: NormalizeConfig, gamma: float) -> VecNormalize:
    return VecNormalize(
        venv,
        norm_obs=norm.obs,
        norm_reward=norm.reward,
        clip_obs=norm.clip_obs,
        clip_reward=norm.clip_reward,
        gamma=gamma,
    )


def seed_each(venv: VecEnv, seeds: Sequence[int]) -> None:
    """Seed env i of ``venv`` with ``seeds[i]`` at its next reset.

    SB3's ``VecEnv.seed(s)`` only gives consecutive seeds s, s+1, ...; DummyVecEnv and
    SubprocVecEnv both read the per-env list ``_seeds`` at reset.
    """
    if len(seeds) != venv.num_envs:
        raise ValueError(f"{len(seeds)} seeds for {venv.num_envs} envs")
    venv._seeds = [int(s) for s in seeds]  # noqa: SLF001 - see docstring
