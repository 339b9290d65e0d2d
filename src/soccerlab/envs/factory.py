"""Build the envs a Config describes: single envs, VecEnvs and VecNormalize.

Env constructors are small picklable objects so that SubprocVecEnv workers can build them;
a worker also drops to one torch thread (torch's default threading cut sai-mujoco throughput by
two thirds on a 2-core machine) and ignores Ctrl-C, which the main process handles.

Soccer: the config's ``env`` section becomes one ``SoccerSpec``; training and evaluation step
a ``SoccerVecEnv`` over it (all envs in one process, on the spec's backend), and single envs
(videos, ``soccerlab play``) are its N = 1 case, ``SoccerGymEnv`` (rendered on the sai backend).
"""

from __future__ import annotations

import importlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.running_mean_std import RunningMeanStd
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


def soccer_spec(env: EnvConfig, **changes: Any):
    """The ``SoccerSpec`` of a soccer env section (``changes``: fields to replace)."""
    from soccerlab.envs.soccer.spec import SoccerSpec

    spec = SoccerSpec.from_config(env)
    return spec.replace(**changes) if changes else spec


def env_factory(env: EnvConfig, render_mode: str | None = None, in_subprocess: bool = False,
                width: int | None = None, height: int | None = None,
                task: str | None = None) -> Callable[[], gym.Env]:
    """The constructor of one env of this config (videos, ``soccerlab play``).

    Soccer: one ``SoccerGymEnv`` of ``task`` (default: the config's first task)."""
    if env.is_soccer:
        from soccerlab.envs.soccer.backends.render import CameraSpec
        from soccerlab.envs.soccer.vec_env import SoccerGymEnv

        spec = soccer_spec(env)
        camera = CameraSpec(width=width, height=height) if width and height else None
        spec = spec.replace(tasks=task or next(iter(spec.tasks)), camera=camera)
        return partial(SoccerGymEnv, spec, render_mode)
    kwargs = dict(env.kwargs)
    if width and height:
        kwargs.update(width=width, height=height)
    return GymEnvFactory(env.id, kwargs, env.max_episode_steps, render_mode, in_subprocess)


def check_env_config(env: EnvConfig, n_envs: int | None = None) -> None:
    """Fail early, with one line, on an env the config cannot build."""
    if not env.is_soccer:
        ensure_registered(env.id)
        return
    if env.vec_env == "subproc":
        raise UserError("soccer envs run in one process (env.backend: fast is the fast path); "
                        "set env.vec_env: dummy")
    spec = soccer_spec(env)
    spec.slot_tasks(n_envs or env.n_envs)
    if spec.backend == "fast":
        from soccerlab.envs.soccer.backends.fast import get_fast_task

        for task in spec.tasks:
            get_fast_task(task)
    if spec.walker is not None:
        from soccerlab.envs.soccer import load_walker

        walker = load_walker(spec.walker, 1)  # a missing or broken walker fails here
        if spec.kick is not None:
            from soccerlab.envs.soccer.behaviour.kick import load_kick

            # a missing clip or a window outside it fails here
            load_kick(spec.kick, walker.config.dt, walker.config.decimation)


def make_vec_env(env: EnvConfig, n_envs: int, seed: int | None, vec_env: str | None = None) -> VecEnv:
    """A VecEnv of ``n_envs`` slots, seeded ``seed + i`` at the first reset (no normalisation)."""
    venv: VecEnv
    if env.is_soccer:
        from soccerlab.envs.soccer.vec_env import SoccerVecEnv

        venv = SoccerVecEnv(soccer_spec(env), n_envs)
    else:
        subproc = (vec_env or env.vec_env) == "subproc" and n_envs > 1
        fns = [env_factory(env, in_subprocess=subproc) for _ in range(n_envs)]
        venv = SubprocVecEnv(fns) if subproc else DummyVecEnv(fns)
    if seed is not None:
        venv.seed(seed)
    return venv


def make_training_env(cfg: Config, seed: int) -> VecEnv:
    """The training VecEnv, wrapped in VecNormalize when ``env.normalize`` asks for it."""
    venv = FiniteGuard(make_vec_env(cfg.env, cfg.env.n_envs, seed))  # under VecNormalize
    norm = cfg.env.normalize
    if norm is not None:
        venv = wrap_normalize(venv, norm, gamma=cfg.algo.gamma)
    return venv


def eval_suite(cfg: Config) -> list[tuple[str, Callable[[int], VecEnv]]]:
    """The envs an evaluation covers, by name: each builds an n-env VecEnv (no normalisation).

    A soccer config is evaluated task by task (every task with a positive weight)."""
    if not cfg.env.is_soccer:
        return [(str(cfg.env.id), lambda n: make_vec_env(cfg.env, n, seed=None, vec_env="dummy"))]

    from soccerlab.envs.soccer.vec_env import SoccerVecEnv

    spec = soccer_spec(cfg.env)
    return [(task, partial(SoccerVecEnv, spec.replace(tasks=task))) for task in spec.tasks]


class FrozenRunningMeanStd(RunningMeanStd):
    """Statistics that ``update`` leaves as they are (``env.normalize.freeze_obs``)."""

    def update(self, arr: np.ndarray) -> None:
        return None


def wrap_normalize(venv: VecEnv, norm: NormalizeConfig, gamma: float) -> VecNormalize:
    vecnorm = VecNormalize(
        venv,
        norm_obs=norm.obs,
        norm_reward=norm.reward,
        clip_obs=norm.clip_obs,
        clip_reward=norm.clip_reward,
        gamma=gamma,
    )
    if norm.obs and norm.freeze_obs:
        # a policy warm-started from a clone sees its inputs normalised as the clone did: the
        # statistics RL would otherwise move (docs/results.md, imitation) stay the warm start's
        frozen = FrozenRunningMeanStd(shape=vecnorm.obs_rms.mean.shape)
        vecnorm.obs_rms = frozen
    return vecnorm


def seed_each(venv: VecEnv, seeds: Sequence[int]) -> None:
    """Seed env i of ``venv`` with ``seeds[i]`` at its next reset.

    SB3's ``VecEnv.seed(s)`` only gives consecutive seeds s, s+1, ...; DummyVecEnv and
    SubprocVecEnv both read the per-env list ``_seeds`` at reset.
    """
    if len(seeds) != venv.num_envs:
        raise ValueError(f"{len(seeds)} seeds for {venv.num_envs} envs")
    venv._seeds = [int(s) for s in seeds]  # noqa: SLF001 - see docstring
