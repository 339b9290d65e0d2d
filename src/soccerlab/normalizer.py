"""Normaliser statistics in a plain file: ``vecnormalize.npz`` beside every ``vecnormalize.pkl``.

SB3 saves ``VecNormalize`` with pickle, and unpickling a file runs whatever code it names, so
a shared run folder could run code on the machine that evaluates it. The trainer therefore also
writes the statistics as plain arrays (``save``); ``eval``, ``play`` and ``export`` read only
that file (``load``, ``np.load(allow_pickle=False)``) into an :class:`ObsNormalizer`, which
normalises observations exactly as ``VecNormalize.normalize_obs`` does (same float64
arithmetic and float32 result, so the same bits).

Keys: ``obs_mean``, ``obs_var``, ``obs_count`` (dict observation spaces: ``obs_mean/<key>``...),
``ret_mean``, ``ret_var``, ``ret_count``, ``returns`` (the running discounted return per env),
``clip_obs``, ``clip_reward``, ``epsilon``, ``gamma``, ``norm_obs``, ``norm_reward``,
``norm_obs_keys`` (dict spaces), ``format`` (1).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soccerlab.errors import UserError

FORMAT = 1


@dataclass
class ObsNormalizer:
    """Observation normalisation of a trained policy (``VecNormalize.normalize_obs``)."""

    mean: np.ndarray | dict[str, np.ndarray] | None
    var: np.ndarray | dict[str, np.ndarray] | None
    epsilon: float = 1e-8
    clip_obs: float = 10.0
    norm_obs: bool = True
    keys: list[str] = field(default_factory=list)

    def normalize_obs(self, obs: Any) -> Any:
        if not self.norm_obs:
            return obs
        if isinstance(self.mean, dict):
            out = dict(obs)
            for key in self.keys:
                out[key] = self._apply(obs[key], self.mean[key], self.var[key])
            return out
        return self._apply(obs, self.mean, self.var)

    def _apply(self, obs: Any, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        out = np.clip((obs - mean) / np.sqrt(var + self.epsilon), -self.clip_obs, self.clip_obs)
        return out.astype(np.float32)

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self.mean is None or isinstance(self.mean, dict) else tuple(self.mean.shape)


def _rms_arrays(prefix: str, rms: Any) -> dict[str, np.ndarray]:
    """``<prefix>_mean``, ``_var``, ``_count`` (per key of a dict: ``<prefix>_mean/<key>``)."""
    if isinstance(rms, dict):
        return {f"{name}/{key}": value for key, sub in rms.items()
                for name, value in _rms_arrays(prefix, sub).items()}
    return {f"{prefix}_mean": np.asarray(rms.mean), f"{prefix}_var": np.asarray(rms.var),
            f"{prefix}_count": np.asarray(rms.count)}


def save(vecnorm: Any, path: Path) -> None:
    """Write a ``VecNormalize``'s statistics and settings to ``path`` (.npz, plain arrays)."""
    arrays: dict[str, np.ndarray] = {"format": np.asarray(FORMAT)}
    if vecnorm.norm_obs:
        arrays.update(_rms_arrays("obs", vecnorm.obs_rms))
    arrays.update(_rms_arrays("ret", vecnorm.ret_rms))
    arrays["returns"] = np.asarray(vecnorm.returns, dtype=np.float64)
    for name in ("clip_obs", "clip_reward", "epsilon", "gamma"):
        arrays[name] = np.asarray(float(getattr(vecnorm, name)))
    arrays["norm_obs"] = np.asarray(bool(vecnorm.norm_obs))
    arrays["norm_reward"] = np.asarray(bool(vecnorm.norm_reward))
    keys = getattr(vecnorm, "norm_obs_keys", None)
    if isinstance(vecnorm.obs_rms, dict) and keys:
        arrays["norm_obs_keys"] = np.asarray(list(keys), dtype=str)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def write_obs_mean(path: Path, mean: np.ndarray) -> None:
    """Replace the observation mean in ``save``'s file ``path``, everything else kept."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["obs_mean"] = np.asarray(mean, dtype=arrays["obs_mean"].dtype)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def from_vecnormalize(vecnorm: Any) -> ObsNormalizer:
    """The observation part of a ``VecNormalize`` (copies of its statistics)."""
    common = {"epsilon": float(vecnorm.epsilon), "clip_obs": float(vecnorm.clip_obs),
              "norm_obs": bool(vecnorm.norm_obs)}
    if not vecnorm.norm_obs:
        return ObsNormalizer(None, None, **common)
    rms = vecnorm.obs_rms
    if isinstance(rms, dict):
        keys = list(vecnorm.norm_obs_keys)
        return ObsNormalizer({k: rms[k].mean.copy() for k in keys},
                             {k: rms[k].var.copy() for k in keys}, keys=keys, **common)
    return ObsNormalizer(rms.mean.copy(), rms.var.copy(), **common)


def load(path: Path) -> ObsNormalizer:
    """Read ``save``'s file without unpickling anything; UserError if it is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read normaliser statistics {path}: {first}") from None
    try:
        norm_obs = bool(arrays["norm_obs"])
        common = {"epsilon": float(arrays["epsilon"]), "clip_obs": float(arrays["clip_obs"]),
                  "norm_obs": norm_obs}
        if not norm_obs:
            return ObsNormalizer(None, None, **common)
        if "obs_mean" in arrays:
            return ObsNormalizer(arrays["obs_mean"].astype(np.float64),
                                 arrays["obs_var"].astype(np.float64), **common)
        keys = [str(k) for k in arrays["norm_obs_keys"]]
        return ObsNormalizer({k: arrays[f"obs_mean/{k}"] for k in keys},
                             {k: arrays[f"obs_var/{k}"] for k in keys}, keys=keys, **common)
    except KeyError as exc:
        raise UserError(f"{path} is not a soccerlab normaliser file (no {exc})") from None


def obs_statistics(path: Path) -> tuple[np.ndarray, np.ndarray, float] | None:
    """``(mean, var, count)`` of the observation statistics in ``save``'s file (None when it
    does not normalise observations or has a dict observation space)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "obs_mean" not in data.files or not bool(data["norm_obs"]):
                return None
            return (data["obs_mean"].astype(np.float64), data["obs_var"].astype(np.float64),
                    float(data["obs_count"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read normaliser statistics {path}: {first}") from None
