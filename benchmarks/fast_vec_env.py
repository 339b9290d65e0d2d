"""``FastSoccerVecEnv``: raw ``FastSoccerSim`` behind SB3's ``VecEnv`` (for
``sim_throughput.py``'s ``fast_vec`` rows: the cost of the VecEnv plumbing alone).

Same semantics as ``DummyVecEnv([lambda: gym.make(id)] * n)``: auto-reset of finished envs,
``terminal_observation`` and ``TimeLimit.truncated`` in their info, seeds from ``seed()`` used
at the next ``reset()`` (env i gets seed + i) and later resets continuing each env's stream.
Per-env info dicts are minimal by default; ``info_keys="all"`` (or a list of keys, which may
include ``"reward_terms"``) adds sai-mujoco's info fields. Batched consumers should read the
arrays instead: ``last`` (``StepArrays``, the simulator's buffers: after a step, ``terms`` and
``reward`` are that step's for every env, ``obs``/``info`` rows of envs that were just reset
already belong to their new episode) and ``terminal`` (copies of the finished envs' last
``obs``/``info``/``terms``, or None when no env finished on this step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from soccerlab.envs.soccer.backends.base import BOOL_TERMS, INFO_KEYS, StepArrays
from soccerlab.envs.soccer.backends.fast.sim import FastSoccerSim
from soccerlab.errors import UserError

_ATTRS = ("render_mode", "observation_space", "action_space", "spec", "np_random",
          "np_random_seed", "task", "max_episode_steps", "unwrapped")


def _value(v: Any) -> Any:
    """An info value detached from the simulator's buffers, in sai-mujoco's types."""
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, np.bool_):
        return bool(v)
    return v


class FastSoccerVecEnv(VecEnv):
    """N instances of one showdown task as an SB3 ``VecEnv`` (see module docstring).

    Args:
        task: env id or short task name (``FAST_TASKS``).
        n_envs: number of envs.
        seed: seeds for the first ``reset()`` (env i gets ``seed + i``), as ``VecEnv.seed``.
        info_keys: ``None`` (minimal infos), ``"all"``, or a list of info keys.
        max_episode_steps: TimeLimit (default: the registered one).
        n_threads: physics threads (default: adaptive, up to the cpu count).
        reset_mode, env_kwargs: as for ``FastSoccerSim``.
    """

    def __init__(self, task: str, n_envs: int, seed: int | None = None, *,
                 info_keys: str | Sequence[str] | None = None,
                 max_episode_steps: int | None = None, n_threads: int | None = None,
                 reset_mode: str = "replay", env_kwargs: dict | None = None) -> None:
        self.sim = FastSoccerSim(task, n_envs, max_episode_steps=max_episode_steps,
                                 n_threads=n_threads, reset_mode=reset_mode,
                                 env_kwargs=env_kwargs)
        if info_keys == "all":
            keys: tuple[str, ...] = (*INFO_KEYS, "reward_terms")
        elif info_keys is None:
            keys = ()
        else:
            keys = tuple([info_keys] if isinstance(info_keys, str) else info_keys)
            unknown = sorted(set(keys) - {*INFO_KEYS, "reward_terms"})
            if unknown:
                raise UserError(f"unknown info keys {unknown}; known: "
                                f"{', '.join(INFO_KEYS)}, reward_terms")
        self.info_keys = keys
        super().__init__(n_envs, self.sim.observation_space, self.sim.action_space)
        if seed is not None:
            self.seed(seed)
        self._actions: np.ndarray | None = None
        self.last: StepArrays = self.sim.arrays
        self.terminal: dict[str, Any] | None = None

    # ------------------------------------------------------------------------------ core
    def _infos(self, indices: Iterable[int], with_terms: bool) -> list[dict[str, Any]]:
        info, terms = self.sim.arrays.info, self.sim.arrays.terms
        keys = [k for k in self.info_keys if k != "reward_terms"]
        out = []
        for i in indices:
            d = {k: _value(info[k][i]) for k in keys}
            if with_terms and "reward_terms" in self.info_keys:
                d["reward_terms"] = {k: bool(v[i]) if k in BOOL_TERMS else v[i]
                                     for k, v in terms.items()}
            out.append(d)
        return out

    def reset(self) -> np.ndarray:
        if any(self._options):
            raise UserError("the fast soccer backend does not support reset options")
        obs, _ = self.sim.reset(seeds=list(self._seeds))
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = self._infos(range(self.num_envs), with_terms=False)
        return obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        out = self.sim.step(self._actions)
        self._actions = None
        n = self.num_envs
        dones = out.terminated | out.truncated
        rewards = out.reward.copy()
        timeouts = out.truncated & ~out.terminated
        if self.info_keys:
            infos = self._infos(range(n), with_terms=True)
            for i in range(n):
                infos[i]["TimeLimit.truncated"] = bool(timeouts[i])
        else:
            infos = [{"TimeLimit.truncated": t} for t in timeouts.tolist()]
        self.terminal = None
        if dones.any():
            idx = np.flatnonzero(dones)
            for i in idx:
                infos[i]["terminal_observation"] = out.obs[i].copy()
            self.terminal = {
                "indices": idx, "obs": out.obs[idx], "terminated": out.terminated[idx],
                "truncated": out.truncated[idx],
                "info": {k: v[idx] for k, v in out.info.items()},
                "terms": {k: v[idx] for k, v in out.terms.items()},
            }
            self.sim.reset(idx)
            for i, d in zip(idx, self._infos(idx, with_terms=False), strict=True):
                self.reset_infos[i] = d
        return out.obs.copy(), rewards, dones, infos

    def close(self) -> None:
        self.sim.close()

    # ---------------------------------------------------------------- VecEnv plumbing
    def _slot_attr(self, name: str, i: int) -> Any:
        sim = self.sim
        if name == "render_mode":
            return None
        if name in ("observation_space", "action_space"):
            return getattr(sim, name)
        if name == "spec":
            return dataclasses.replace(gym.spec(sim.task.env_id),
                                       max_episode_steps=sim.max_episode_steps)
        if name == "np_random":
            return sim.np_random[i]
        if name == "np_random_seed":
            return sim._resetter.seeds[i]
        if name == "task":
            return sim.task
        if name == "max_episode_steps":
            return sim.max_episode_steps
        if name == "unwrapped":
            raise UserError("the fast soccer backend has no per-env gym.Env to unwrap")
        raise AttributeError(f"FastSoccerVecEnv envs have no attribute {name!r} "
                             f"(supported: {', '.join(_ATTRS)})")

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [self._slot_attr(attr_name, i) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise UserError(f"FastSoccerVecEnv does not support setting env attributes "
                        f"({attr_name!r})")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        idx = list(self._get_indices(indices))
        if method_name == "get_wrapper_attr":
            return [self._slot_attr(method_args[0], i) for i in idx]
        if method_name == "reset":
            seed = method_kwargs.pop("seed", None)
            if method_args or method_kwargs.get("options"):
                raise UserError("env_method('reset') takes only seed=")
            obs, _ = self.sim.reset(idx, None if seed is None else [seed] * len(idx))
            return [(obs[i].copy(), d) for i, d in zip(idx, self._infos(idx, False),
                                                       strict=True)]
        raise UserError(f"FastSoccerVecEnv does not support env_method({method_name!r}); "
                        "supported: reset, get_wrapper_attr")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper],
                       indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        raise UserError("the fast soccer backend does not render; use the sai-mujoco backend")

    def render(self, mode: str | None = None) -> np.ndarray | None:
        raise UserError("the fast soccer backend does not render; use the sai-mujoco backend")
