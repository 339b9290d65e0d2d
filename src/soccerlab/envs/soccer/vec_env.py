"""The adapters over ``SoccerBatch``: an SB3 ``VecEnv`` and, for N = 1, a Gymnasium env.

``SoccerVecEnv(spec, n)`` is what training and evaluation step: observations, actions,
rewards, dones, ``terminal_observation``, ``TimeLimit.truncated``, Monitor's
``info["episode"]`` (``"t"`` is wall time), ``info["soccer"]`` (the episode record at every
episode's end), ``info["task"]``, sai's info fields, ``reset_infos`` and seeding
(``seed()``/``_seeds``: env i seeded at its next reset; later resets continue each env's
stream), on either backend. ``env_method("reset", indices=...)`` starts new episodes in
some envs only (``envs.finite.FiniteGuard`` uses it). Not supported: reset options, setting
env attributes, other ``env_method`` calls.

``SoccerGymEnv(spec)`` is one env of one task as a ``gym.Env`` (``soccerlab play``, videos,
anything that wants a single env); with ``render_mode="rgb_array"`` it renders through the sai
backend's tracking camera. Its episodes are those of env 0 of a ``SoccerVecEnv`` with the same
seed: a reset without a seed after an episode's end starts the episode the batch already
started.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from soccerlab.envs.soccer.batch import SoccerBatch
from soccerlab.envs.soccer.spec import SoccerSpec
from soccerlab.errors import UserError


def metadata(spec: SoccerSpec) -> dict[str, Any]:
    """Render metadata: one frame per agent step (50 Hz walker ticks, 500 Hz torque steps)."""
    return {"render_modes": ["rgb_array"], "render_fps": 50 if spec.control == "walker" else 500}


def monitor_episode(ret: float, length: int, t_start: float) -> dict[str, float | int]:
    """Monitor's ``info["episode"]``: return and length rounded as Monitor rounds them."""
    return {"r": round(ret, 6), "l": int(length), "t": round(time.time() - t_start, 6)}


class SoccerVecEnv(VecEnv):
    """N soccer envs of one ``SoccerSpec`` as an SB3 ``VecEnv`` (see the module docstring).

    Args:
        spec: What to run (env i runs ``spec.slot_tasks(n_envs)[i]``).
        n_envs: Number of envs.
        seed: If given, env i is seeded with ``seed + i`` at the first reset.
        **batch_options: See ``SoccerBatch`` (``walker``, ``info_keys``, backend options).
    """

    def __init__(self, spec: SoccerSpec, n_envs: int, seed: int | None = None,
                 **batch_options: Any) -> None:
        self.batch = SoccerBatch(spec, n_envs, **batch_options)
        super().__init__(self.batch.n, self.batch.observation_space, self.batch.action_space)
        self.metadata = metadata(spec)
        self._t_start = time.time()
        self._ep_return = np.zeros(self.num_envs)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._actions: np.ndarray | None = None
        if seed is not None:
            self.seed(seed)

    def reset(self) -> np.ndarray:
        if any(self._options):
            raise UserError("soccer envs do not support reset options")
        obs, self.reset_infos = self.batch.reset(list(self._seeds))
        self._reset_seeds()
        self._reset_options()
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        out = self.batch.step(self._actions)
        self._actions = None
        self._ep_return += out.reward  # Monitor sums the envs' float rewards in order
        self._ep_length += 1
        dones = out.terminated | out.truncated
        timeouts = (out.truncated & ~out.terminated).tolist()
        for i, info in enumerate(out.infos):
            if dones[i]:
                info["episode"] = monitor_episode(float(self._ep_return[i]),
                                                  int(self._ep_length[i]), self._t_start)
            info["TimeLimit.truncated"] = timeouts[i]
        for i in np.flatnonzero(dones):
            out.infos[i]["terminal_observation"] = out.terminal_obs[int(i)]
            self.reset_infos[i] = out.reset_infos[int(i)]
            self._ep_return[i], self._ep_length[i] = 0.0, 0
        return out.obs, out.reward.astype(np.float32), dones, out.infos

    def close(self) -> None:
        self.batch.close()

    # ----------------------------------------------------------------- VecEnv plumbing
    def _slot_attr(self, name: str, i: int) -> Any:
        batch = self.batch
        if name == "render_mode":
            return None
        if name in ("observation_space", "action_space"):
            return getattr(batch, name)
        if name == "metadata":
            return self.metadata
        if name == "task":
            return batch.task_of(i)
        if name == "control":
            return batch.control
        if name == "command_ranges":
            return None if batch.walker is None else batch.walker.config.command_ranges
        if name == "episode_length":
            return int(batch.lengths[i])
        if name == "time_limit":
            return batch.time_limit_of(i)
        raise AttributeError(f"soccer envs have no attribute {name!r} (supported: "
                             "render_mode, observation_space, action_space, metadata, task, "
                             "control, command_ranges, episode_length, time_limit)")

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [self._slot_attr(attr_name, i) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise UserError(f"soccer envs do not support setting env attributes ({attr_name!r})")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        idx = list(self._get_indices(indices))
        if method_name == "get_wrapper_attr":
            return [self._slot_attr(method_args[0], i) for i in idx]
        if method_name == "reset" and not method_args and not method_kwargs.get("options"):
            seed = method_kwargs.get("seed")
            obs, infos = self.batch.reset_slots(idx, None if seed is None else [seed] * len(idx))
            for k, i in enumerate(idx):
                self.reset_infos[i] = infos[k]
                self._ep_return[i], self._ep_length[i] = 0.0, 0
            return [(obs[k], infos[k]) for k in range(len(idx))]
        raise UserError(f"soccer envs do not support env_method({method_name!r}); supported: "
                        "get_wrapper_attr, reset (seed=)")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper],
                       indices: VecEnvIndices = None) -> list[bool]:
        wrapped = issubclass(Monitor, wrapper_class)  # Monitor's bookkeeping is built in
        return [wrapped for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [self.batch.render(i) for i in range(self.num_envs)]

    def render(self, mode: str | None = None) -> np.ndarray | None:
        return self.batch.render(0)


class SoccerGymEnv(gym.Env):
    """One soccer env (one task) as a Gymnasium env: ``SoccerBatch`` with N = 1.

    Args:
        spec: What to run; it must name one task (``spec.replace(tasks=name)``).
        render_mode: None or ``"rgb_array"`` (then the sai backend runs it: only sai renders).
    """

    def __init__(self, spec: SoccerSpec, render_mode: str | None = None) -> None:
        if len(spec.tasks) != 1:
            raise UserError(f"one soccer env runs one task; got {', '.join(spec.tasks)}")
        if render_mode not in (None, "rgb_array"):
            raise UserError(f"unsupported render_mode '{render_mode}' (use rgb_array or none)")
        if render_mode is not None:
            spec = spec.replace(backend="sai")
        self.spec_ = spec
        self.render_mode = render_mode
        self.batch = SoccerBatch(spec, 1)
        self.task = self.batch.task_of(0)
        self.observation_space = self.batch.observation_space
        self.action_space = self.batch.action_space
        self.metadata = metadata(spec)
        self._next: tuple[np.ndarray, dict[str, Any]] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options:
            raise UserError("soccer envs do not support reset options")
        if seed is None and self._next is not None:
            obs, info = self._next
        else:
            batch_obs, infos = self.batch.reset([seed])
            obs, info = batch_obs[0], infos[0]
        self._next = None
        return obs, info

    def step(self, action: np.ndarray):
        out = self.batch.step(np.asarray(action, dtype=np.float32).reshape(1, -1))
        info = out.infos[0]
        obs = out.obs[0]
        if 0 in out.terminal_obs:  # the batch has started the next episode already
            self._next = (obs, out.reset_infos[0])
            obs = out.terminal_obs[0]
        return obs, float(out.reward[0]), bool(out.terminated[0]), bool(out.truncated[0]), info

    def render(self) -> np.ndarray | None:
        return None if self.render_mode is None else self.batch.render(0)

    def close(self) -> None:
        self.batch.close()
