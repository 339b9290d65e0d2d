"""The algorithm registry: config name -> SB3 class, and building a model from a Config."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from soccerlab.config import Config, suggest
from soccerlab.errors import UserError
from soccerlab.networks import resolve_policy_kwargs


@dataclass(frozen=True)
class AlgoSpec:
    name: str
    module: str
    class_name: str
    off_policy: bool

    @property
    def cls(self) -> type[BaseAlgorithm]:
        try:
            return getattr(importlib.import_module(self.module), self.class_name)
        except ImportError as exc:  # sb3-contrib is a dependency, so this means a broken install
            raise UserError(f"algorithm {self.name!r} needs {self.module}: {exc}") from None


ALGOS: dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec("ppo", "stable_baselines3", "PPO", off_policy=False),
        AlgoSpec("a2c", "stable_baselines3", "A2C", off_policy=False),
        AlgoSpec("sac", "stable_baselines3", "SAC", off_policy=True),
        AlgoSpec("td3", "stable_baselines3", "TD3", off_policy=True),
        AlgoSpec("ddpg", "stable_baselines3", "DDPG", off_policy=True),
        AlgoSpec("tqc", "sb3_contrib", "TQC", off_policy=True),
        AlgoSpec("crossq", "sb3_contrib", "CrossQ", off_policy=True),
        AlgoSpec("trpo", "sb3_contrib", "TRPO", off_policy=False),
    )
}

# Keyword arguments that other config keys own.
_OWNED = {
    "policy": "algo.policy",
    "env": "env",
    "seed": "experiment.seed",
    "device": "train.device",
    "verbose": "logging.verbose",
    "tensorboard_log": "the run directory (always <run>/tb)",
    "policy_kwargs": "algo.policy_kwargs",
    "_init_setup_model": None,
}


def get_algo(name: str) -> AlgoSpec:
    try:
        return ALGOS[name.lower()]
    except KeyError:
        raise UserError(
            f"unknown algorithm {name!r}{suggest(name.lower(), list(ALGOS))}; "
            f"known: {', '.join(ALGOS)}"
        ) from None


def algo_from_policy_class(policy_class_path: str) -> AlgoSpec | None:
    """Guess the algorithm from a saved policy module (e.g. 'stable_baselines3.sac.policies')."""
    parts = policy_class_path.lower().split(".")
    for spec in ALGOS.values():
        if spec.name in parts:
            return spec
    return None


def build_model(cfg: Config, env: VecEnv, device: str) -> BaseAlgorithm:
    """A fresh model for ``cfg`` on ``env``; every user mistake becomes a UserError."""
    spec = get_algo(cfg.algo.name)
    params = algo_params(cfg, spec, env)
    if cfg.algo.demos is not None:
        if not spec.off_policy:
            raise UserError(f"algo.demos fills a replay buffer, which {spec.name} has not: "
                            "warm-start on-policy algorithms from a BC run instead "
                            "(soccerlab bc, then algo.init.path), and add algo.bc_term")
        from soccerlab.imitation.replay import buffer_params

        params.update(buffer_params(cfg))
    try:
        return spec.cls(
            cfg.algo.policy,
            env,
            seed=cfg.experiment.seed,
            device=device,
            verbose=cfg.logging.verbose,
            policy_kwargs=resolve_policy_kwargs(cfg.algo.policy_kwargs),
            **params,
        )
    except (TypeError, ValueError, AssertionError, KeyError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot build {spec.name} with this config: {detail}") from None


def algo_params(cfg: Config, spec: AlgoSpec, env: VecEnv) -> dict[str, Any]:
    """algo.params checked against the algorithm's signature, with names resolved to objects."""
    accepted = inspect.signature(spec.cls.__init__).parameters
    params = dict(cfg.algo.params)
    for key in params:
        if key in _OWNED:
            owner = _OWNED[key]
            hint = f"; set {owner} instead" if owner else ""
            raise UserError(f"algo.params.{key} is not allowed{hint}")
        if key not in accepted:
            raise UserError(
                f"unknown key 'algo.params.{key}' for {spec.name}"
                f"{suggest(key, [k for k in accepted if k not in _OWNED and k != 'self'])}"
            )
    if "action_noise" in params:
        params["action_noise"] = _action_noise(params["action_noise"], env)
    if cfg.algo.lr_schedule == "linear":
        lr = params.get("learning_rate", accepted["learning_rate"].default)
        if not isinstance(lr, int | float):
            raise UserError("algo.lr_schedule: linear needs a numeric algo.params.learning_rate")
        params["learning_rate"] = LinearSchedule(float(lr), 0.0, 1.0)
    return params


def _action_noise(value: Any, env: VecEnv) -> Any:
    """``{type: normal|ornstein_uhlenbeck, sigma: 0.1}`` -> an SB3 action-noise object."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"type", "sigma"} or "type" not in value:
        raise UserError("algo.params.action_noise: expected {type: normal|ornstein_uhlenbeck, sigma: S}")
    dim = int(np.prod(env.action_space.shape))
    sigma = float(value.get("sigma", 0.1)) * np.ones(dim)
    kinds = {"normal": NormalActionNoise, "ornstein_uhlenbeck": OrnsteinUhlenbeckActionNoise}
    if value["type"] not in kinds:
        raise UserError(f"algo.params.action_noise.type: unknown {value['type']!r}; known: {', '.join(kinds)}")
    return kinds[value["type"]](mean=np.zeros(dim), sigma=sigma)
