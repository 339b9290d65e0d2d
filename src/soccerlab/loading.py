"""Finding and loading a trained policy from a run directory or a model .zip."""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from soccerlab import runs
from soccerlab.algos import AlgoSpec, algo_from_policy_class, get_algo
from soccerlab.config import Config, config_from_dict, load_config
from soccerlab.errors import UserError


@dataclass
class LoadedPolicy:
    model: BaseAlgorithm
    cfg: Config
    vecnorm: VecNormalize | None
    path: Path


def load_policy(target: str | Path, env_id: str | None = None, algo: str | None = None) -> LoadedPolicy:
    """Load TARGET: a run directory (its best model, else final, else latest checkpoint) or a
    model .zip (its config is found in the run it belongs to, or built from ``env_id``)."""
    target = Path(target)
    if target.is_dir():
        run = runs.RunDir.open(target)
        model_path = run.policy_model()
    elif target.is_file():
        model_path = target
    else:
        raise UserError(f"not found: {target} (expected a run directory or a model .zip)")
    if not zipfile.is_zipfile(model_path):
        raise UserError(f"{model_path} is not an SB3 model archive (.zip)")
    cfg = _config_for(model_path, env_id, algo)
    spec = get_algo(algo) if algo else get_algo(cfg.algo.name)
    model = _load_model(spec, model_path)
    vecnorm = _load_vecnorm(model_path.parent / runs.VECNORM) if cfg.env.normalize else None
    if cfg.env.normalize and vecnorm is None:
        raise UserError(f"{model_path.parent} has no {runs.VECNORM}, but the run normalises observations")
    return LoadedPolicy(model, cfg, vecnorm, model_path)


def _config_for(model_path: Path, env_id: str | None, algo: str | None) -> Config:
    for folder in (model_path.parent, *list(model_path.parents)[1:3]):
        cfg_file = folder / "config.yaml"
        if cfg_file.is_file():
            cfg = load_config(cfg_file)
            if env_id:
                data = cfg.to_dict()
                data["env"]["id"] = env_id
                cfg = config_from_dict(data)
            return cfg
    if not env_id:
        raise UserError(f"{model_path} is not inside a soccerlab run: pass --env ENV_ID")
    name = algo or _guess_algo(model_path).name
    return config_from_dict({"env": {"id": env_id}, "algo": {"name": name}})


def _guess_algo(model_path: Path) -> AlgoSpec:
    try:
        with zipfile.ZipFile(model_path) as zf:
            data = json.loads(zf.read("data"))
        spec = algo_from_policy_class(data["policy_class"]["__module__"])
    except (KeyError, ValueError, zipfile.BadZipFile):
        spec = None
    if spec is None:
        raise UserError(f"cannot tell which algorithm saved {model_path}: pass --algo")
    return spec


def _load_model(spec: AlgoSpec, path: Path) -> BaseAlgorithm:
    try:
        return spec.cls.load(path, device="cpu")
    except Exception as exc:  # noqa: BLE001 - corrupt archives raise many types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot load {path} as {spec.name}: {first}") from None


def _load_vecnorm(path: Path) -> VecNormalize | None:
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            vecnorm: Any = pickle.load(f)  # noqa: S301 - our own run's normaliser
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(vecnorm, VecNormalize):
        raise UserError(f"{path} does not hold a VecNormalize")
    vecnorm.training = False
    return vecnorm
