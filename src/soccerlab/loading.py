"""Finding and loading a trained policy from a run directory or a model .zip, without unpickling.

An SB3 zip holds ``policy.pth`` (a ``torch.save``d state dict) and ``data`` (JSON whose
non-JSON values are cloudpickled). ``load_policy`` never deserialises those pickled values: it
rebuilds the policy from the run's config (or ``--env``/``--algo``) and the env's spaces, and
loads ``policy.pth`` with ``torch.load(weights_only=True)``; from ``data`` it reads only plain
JSON (the policy class's module name, to guess the algorithm). Normaliser statistics come from
``vecnormalize.npz`` (``soccerlab.normalizer``); an old run with only ``vecnormalize.pkl`` needs
``trust_pickle`` (``--trust-pickle``).
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from soccerlab import normalizer, runs
from soccerlab.algos import AlgoSpec, algo_from_policy_class, algo_params, get_algo
from soccerlab.config import Config, config_from_dict, load_config
from soccerlab.errors import UserError
from soccerlab.networks import resolve_policy_kwargs
from soccerlab.trust import FLAG


@dataclass
class LoadedPolicy:
    model: BaseAlgorithm  # built here from the config; only its policy's weights come from the file
    cfg: Config
    vecnorm: normalizer.ObsNormalizer | None
    path: Path
    in_run: bool = True


def load_policy(target: str | Path, env_id: str | None = None, algo: str | None = None,
                trust_pickle: bool = False,
                spaces: tuple[gym.Space, gym.Space] | None = None) -> LoadedPolicy:
    """Load TARGET: a run directory (its best model, else final, else latest checkpoint) or a
    model .zip (its config is found in the run it belongs to, or built from ``env_id``).

    ``spaces`` (observation, action) saves building an env to find them."""
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
    cfg, in_run = _config_for(model_path, env_id, algo)
    spec = get_algo(algo) if algo else get_algo(cfg.algo.name)
    state = read_policy_weights(model_path)
    model = build_policy_model(cfg, spec, spaces or env_spaces(cfg))
    _load_weights(model, state, model_path, spec)
    vecnorm = _find_normalizer(model_path.parent, cfg, in_run, trust_pickle)
    shape = getattr(vecnorm, "shape", None)
    if shape is not None and shape != tuple(model.observation_space.shape):
        raise UserError(f"the normaliser beside {model_path} is for observations of shape {shape}, "
                        f"the policy's are {tuple(model.observation_space.shape)}")
    return LoadedPolicy(model, cfg, vecnorm, model_path, in_run)


def _config_for(model_path: Path, env_id: str | None, algo: str | None) -> tuple[Config, bool]:
    run = runs.run_of_model(model_path)
    if run is not None:
        cfg = load_config(run / "config.yaml")
        if env_id:
            data = cfg.to_dict()
            data["env"]["id"] = env_id
            cfg = config_from_dict(data)
        return cfg, True
    if not env_id:
        raise UserError(f"{model_path} is not inside a soccerlab run: pass --env ENV_ID")
    name = algo or _guess_algo(model_path).name
    return config_from_dict({"env": {"id": env_id}, "algo": _algo_section(model_path, name)}), False


def _algo_section(model_path: Path, name: str) -> dict[str, Any]:
    """The ``algo`` config of a zip outside a run, from the plain-JSON part of its ``data``."""
    data = _read_data_json(model_path)
    kwargs = data.get("policy_kwargs", {})
    if not isinstance(kwargs, dict) or ":serialized:" in kwargs:
        raise UserError(f"{model_path}: its policy settings are stored pickled (e.g. a custom "
                        "activation), which soccerlab does not read; evaluate it inside its run "
                        "folder, where config.yaml describes the policy")
    section: dict[str, Any] = {"name": name, "policy_kwargs": {
        k: v for k, v in kwargs.items() if k != "use_sde"}}
    if data.get("use_sde") is True:
        section["params"] = {"use_sde": True}
    return section


def _read_data_json(model_path: Path) -> dict[str, Any]:
    """The zip's ``data`` entry as JSON; pickled values stay base64 strings, never decoded."""
    try:
        with zipfile.ZipFile(model_path) as zf:
            data = json.loads(zf.read("data"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return {}
    return data if isinstance(data, dict) else {}


def _guess_algo(model_path: Path) -> AlgoSpec:
    try:
        spec = algo_from_policy_class(_read_data_json(model_path)["policy_class"]["__module__"])
    except (KeyError, TypeError):
        spec = None
    if spec is None:
        raise UserError(f"cannot tell which algorithm saved {model_path}: pass --algo")
    return spec


def read_policy_weights(model_path: Path) -> dict[str, torch.Tensor]:
    """The policy's state dict from an SB3 zip (``torch.load(weights_only=True)``)."""
    try:
        with zipfile.ZipFile(model_path) as zf:
            raw = zf.read("policy.pth")
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except KeyError:
        raise UserError(f"{model_path} is not an SB3 model archive (no policy.pth)") from None
    except (zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read the policy weights in {model_path} safely "
                        f"(SB3 model archive expected): {first}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{model_path}: policy.pth does not hold a state dict of tensors")
    return state


def env_spaces(cfg: Config) -> tuple[gym.Space, gym.Space]:
    """The observation and action spaces of the config's env (builds and closes one env)."""
    from soccerlab.envs.factory import env_factory

    env = env_factory(cfg.env)()
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


class _SpacesOnly(gym.Env):
    """An env that only has spaces: enough for SB3 to build a policy."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # pragma: no cover
        raise NotImplementedError

    def step(self, action: Any):  # pragma: no cover
        raise NotImplementedError


def build_policy_model(cfg: Config, spec: AlgoSpec, spaces: tuple[gym.Space, gym.Space]) -> BaseAlgorithm:
    """A fresh ``spec`` model with the config's policy over ``spaces`` (CPU, no replay memory)."""
    venv = DummyVecEnv([lambda: _SpacesOnly(*spaces)])
    params = algo_params(cfg, spec, venv)
    if spec.off_policy:
        params["buffer_size"] = 1  # the policy is all we need
    try:
        with warnings.catch_warnings():  # e.g. PPO's batch-size advice for 1 env: not training
            warnings.simplefilter("ignore")
            return spec.cls(cfg.algo.policy, venv, device="cpu", seed=cfg.experiment.seed,
                            policy_kwargs=resolve_policy_kwargs(cfg.algo.policy_kwargs), **params)
    except (TypeError, ValueError, AssertionError, KeyError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot build {spec.name} with this config: {detail}") from None


def _load_weights(model: BaseAlgorithm, state: dict[str, torch.Tensor], path: Path,
                  spec: AlgoSpec) -> None:
    own = model.policy.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        name = (missing or extra)[0]
        where = "the policy built from the config" if missing else "the file"
        raise UserError(f"{path} does not fit a {spec.name} {model.policy_class.__name__} built "
                        f"from this config: tensor {name!r} is only in {where} "
                        f"(wrong --algo or policy settings?)")
    for key, tensor in own.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise UserError(f"{path} does not fit this env/config: tensor {key!r} has shape "
                            f"{tuple(state[key].shape)} in the file but {tuple(tensor.shape)} in "
                            f"the policy for observation {model.observation_space.shape} and "
                            f"action {model.action_space.shape}")
    model.policy.load_state_dict(state)
    model.policy.set_training_mode(False)


def _find_normalizer(folder: Path, cfg: Config, in_run: bool, trust_pickle: bool):
    """The normaliser beside the model: ``vecnormalize.npz``; ``vecnormalize.pkl`` only when
    ``trust_pickle``. Inside a run it is required when the run normalises; beside a zip outside
    a run it is used whenever it is there."""
    npz, pkl = folder / runs.VECNORM_NPZ, folder / runs.VECNORM
    if in_run and not cfg.env.normalize:
        return None
    if npz.is_file():
        return normalizer.load(npz)
    if pkl.is_file():
        if not trust_pickle:
            raise UserError(f"{folder} has normaliser statistics only in {runs.VECNORM} (a pickle, "
                            f"which can run code when read; runs before soccerlab wrote "
                            f"{runs.VECNORM_NPZ}); pass {FLAG} if you trust where it came from")
        return _load_vecnorm_pickle(pkl)
    if in_run:
        raise UserError(f"{folder} has no {runs.VECNORM_NPZ}, but the run normalises observations")
    return None


def _load_vecnorm_pickle(path: Path) -> normalizer.ObsNormalizer:
    try:
        with open(path, "rb") as f:
            vecnorm: Any = pickle.load(f)  # noqa: S301 - the user passed --trust-pickle
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(vecnorm, VecNormalize):
        raise UserError(f"{path} does not hold a VecNormalize")
    return normalizer.from_vecnormalize(vecnorm)
