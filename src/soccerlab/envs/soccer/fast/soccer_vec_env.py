"""``SoccerVecEnv``: the fast backend's stand-in for a VecEnv of soccer envs.

``make_soccer_vec_env(tasks, n, ...)`` behaves like
``DummyVecEnv([Monitor(make_soccer_env(tasks, slot=i, n_slots=n, ...)) for i in range(n)])``
on sai-mujoco: the same observations, actions, rewards, dones, ``terminal_observation``,
``TimeLimit.truncated``, Monitor's ``info["episode"]`` (``"t"`` is wall time), ``info["soccer"]``,
``info["task"]``, sai's info fields, ``reset_infos`` and seeding (``seed()``/``_seeds``: env i
seeded at its next reset; later resets continue each env's stream). ``tests/
test_fast_soccer_parity.py`` checks it value for value.

Not supported (``UserError``): per-reset task sampling (multi-task with fewer envs than tasks,
or ``assignment: sample``), ``gym.make`` kwargs other than ``max_episode_steps``, reset
options, rendering, setting env attributes, ``env_method`` (other than ``get_wrapper_attr``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from soccerlab.envs.soccer.fast.soccer_batch import SoccerBatch
from soccerlab.envs.soccer.multitask import normalize_weights, plan_slots
from soccerlab.envs.soccer.rewards import ShapingConfig
from soccerlab.envs.soccer.walker import JoystickWalker
from soccerlab.envs.soccer.walker_load import WalkerSpec, load_walker
from soccerlab.errors import UserError


def monitor_episode(ret: float, length: int, t_start: float) -> dict[str, float | int]:
    """Monitor's ``info["episode"]``: return and length rounded as Monitor rounds them."""
    return {"r": round(ret, 6), "l": int(length), "t": round(time.time() - t_start, 6)}


class SoccerVecEnv(VecEnv):
    """N soccer envs on the fast simulators as an SB3 ``VecEnv`` (see the module docstring).

    Args:
        slot_tasks: Task name of every env.
        control, reward, walker, shaping, max_episode_steps, info_keys, n_threads,
            reset_mode: See ``SoccerBatch`` (``walker`` is a ``JoystickWalker`` for N envs).
    """

    def __init__(self, slot_tasks: Sequence[str], control: str = "torque", reward: str = "env",
                 walker: JoystickWalker | None = None, shaping: ShapingConfig | None = None,
                 max_episode_steps: int | None = None, info_keys: str | Sequence[str] = "all",
                 n_threads: int | None = None, reset_mode: str = "replay",
                 observation: str = "world") -> None:
        self.batch = SoccerBatch(slot_tasks, control, reward, walker, shaping, max_episode_steps,
                                 info_keys, n_threads, reset_mode, observation)
        super().__init__(self.batch.n, self.batch.observation_space, self.batch.action_space)
        self.metadata = {"render_modes": ["rgb_array"],
                         "render_fps": 50 if control == "walker" else 500}
        self._t_start = time.time()
        self._ep_return = np.zeros(self.num_envs)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        if any(self._options):
            raise UserError("the fast soccer backend does not support reset options")
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
        raise AttributeError(f"SoccerVecEnv envs have no attribute {name!r} (supported: "
                             "render_mode, observation_space, action_space, metadata, task, "
                             "control, command_ranges, episode_length)")

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [self._slot_attr(attr_name, i) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise UserError(f"the fast soccer backend does not support setting env attributes "
                        f"({attr_name!r})")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        if method_name == "get_wrapper_attr":
            return [self._slot_attr(method_args[0], i) for i in self._get_indices(indices)]
        raise UserError(f"the fast soccer backend does not support env_method({method_name!r})"
                        "; use env.backend: sai")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper],
                       indices: VecEnvIndices = None) -> list[bool]:
        wrapped = issubclass(Monitor, wrapper_class)  # Monitor's bookkeeping is built in
        return [wrapped for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        raise UserError("the fast soccer backend does not render; videos and `soccerlab play` "
                        "use the sai-mujoco backend (identical dynamics)")

    def render(self, mode: str | None = None) -> np.ndarray | None:
        return self.get_images()  # type: ignore[return-value]


def slot_plan(tasks: str | Mapping[str, float], n_envs: int, assignment: str = "auto"
              ) -> list[str]:
    """The task of every env, as ``make_soccer_env`` would run it; UserError where slots
    would sample their task at every reset (not supported by the fast backend)."""
    if isinstance(tasks, str):
        return [tasks] * n_envs
    shares = normalize_weights(tasks)
    plan = plan_slots(shares, n_envs, assignment)
    if any(task is None for task in plan):
        raise UserError(
            f"the fast soccer backend runs a fixed task per env; {n_envs} env(s) for "
            f"{len(shares)} tasks with assignment '{assignment}' would sample tasks at every "
            f"reset: use n_envs >= {len(shares)} (and assignment auto or fixed) or env.backend: sai")
    return [str(task) for task in plan]


def make_soccer_vec_env(tasks: str | Mapping[str, float], n_envs: int, *,
                        control: str = "torque", reward: str = "env",
                        walker: WalkerSpec | str | JoystickWalker | None = None,
                        shaping: ShapingConfig | None = None, assignment: str = "auto",
                        env_kwargs: dict[str, Any] | None = None, seed: int | None = None,
                        info_keys: str | Sequence[str] = "all", n_threads: int | None = None,
                        reset_mode: str = "replay", observation: str = "world") -> SoccerVecEnv:
    """The fast counterpart of a DummyVecEnv over ``make_soccer_env`` slots.

    Args:
        tasks: One task name, or task -> weight (slots as ``plan_slots`` gives them).
        n_envs: Number of envs.
        control, reward, shaping, assignment, observation: As for ``make_soccer_env``.
        walker: WalkerSpec, path/``hf://`` reference or a ``JoystickWalker`` for ``n_envs``.
        env_kwargs: Only ``max_episode_steps`` is supported (anything else: UserError).
        seed: If given, env i is seeded with ``seed + i`` at the first reset.
        info_keys, n_threads, reset_mode: See ``SoccerBatch``.
    """
    kwargs = dict(env_kwargs or {})
    max_steps = kwargs.pop("max_episode_steps", None)
    if kwargs:
        raise UserError(f"the fast soccer backend replicates the registered sai-mujoco envs "
                        f"only; env.kwargs {sorted(kwargs)} need env.backend: sai")
    plan = slot_plan(tasks, n_envs, assignment)
    if control == "walker":
        if walker is None:
            raise UserError("walker control needs a walker (path or hf:// reference)")
        if not isinstance(walker, JoystickWalker):
            walker = load_walker(walker, n_envs)
    venv = SoccerVecEnv(plan, control, reward, walker if control == "walker" else None,
                        shaping, max_steps, info_keys, n_threads, reset_mode, observation)
    if seed is not None:
        venv.seed(seed)
    return venv
