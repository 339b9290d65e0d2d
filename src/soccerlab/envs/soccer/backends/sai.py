"""The reference backend: a thin stack of N real sai-mujoco envs of one task.

``SaiStack`` implements ``backends.base.TaskPhysics`` by calling ``gym.make(env_id)`` N times
and copying what each env returns into arrays, so it is sai-mujoco by definition, accepts any
``gym.make`` keyword, and renders (a tracking camera per row, ``render.TrackingCamera``).
Rows whose episode has ended are not stepped again until they are reset (their arrays keep the
last step's values; the interface says such results are meaningless anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from soccerlab.envs.soccer.backends.base import StepArrays, per_row_seeds
from soccerlab.envs.soccer.backends.render import CameraSpec, TrackingCamera
from soccerlab.envs.soccer.behaviour.tasks import get_task
from soccerlab.errors import UserError


def make_sai_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` after registering sai-mujoco's environments (TimeLimit included)."""
    import sai_mujoco  # noqa: F401 - registers the envs

    try:
        return gym.make(env_id, **kwargs)
    except TypeError as exc:
        raise UserError(f"env.kwargs not accepted by {env_id}: {exc}") from None


class SaiStack:
    """N sai-mujoco envs of ``task`` as one ``TaskPhysics``.

    Args:
        task: Task name (``goalie_penalty_kick`` ...).
        n: Number of rows (envs).
        max_episode_steps: TimeLimit (default: the registered one).
        env_kwargs: Extra ``gym.make`` keyword arguments.
        camera: Settings of the tracking camera ``render`` uses.
    """

    def __init__(self, task: str, n: int, *, max_episode_steps: int | None = None,
                 env_kwargs: dict[str, Any] | None = None, camera: CameraSpec | None = None
                 ) -> None:
        if int(n) < 1:
            raise UserError(f"the number of envs must be >= 1, got {n}")
        self.task = get_task(task)
        self.n = int(n)
        kwargs = dict(env_kwargs or {})
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = int(max_episode_steps)
        self.envs: list[gym.Env] = []
        try:
            for _ in range(self.n):
                self.envs.append(make_sai_env(self.task.env_id, **kwargs))
        except BaseException:
            self.close()
            raise
        first = self.envs[0]
        self.max_episode_steps = int(first.spec.max_episode_steps)
        robot = first.unwrapped.robots[0]
        self.min_height = float(robot.standing_height[0]) if hasattr(robot, "standing_height") \
            else 1.0  # sai's has_robot_fallen default
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        self._camera_spec = camera
        self._cameras: dict[int, TrackingCamera] = {}
        self._ended = np.zeros(self.n, dtype=bool)
        self.arrays: StepArrays | None = None  # allocated at the first reset

    # ------------------------------------------------------------------------------ rows
    def _allocate(self, obs: np.ndarray, info: dict[str, Any]) -> StepArrays:
        n = self.n
        return StepArrays(
            obs=np.zeros((n, *np.shape(obs)), dtype=np.asarray(obs).dtype),
            reward=np.zeros(n, dtype=np.float32),
            terminated=np.zeros(n, dtype=bool),
            truncated=np.zeros(n, dtype=bool),
            terms={},
            info={k: np.zeros((n, *np.shape(v)), dtype=np.asarray(v).dtype)
                  for k, v in info.items() if k != "reward_terms"},
        )

    def _write(self, i: int, obs: np.ndarray, info: dict[str, Any]) -> None:
        a = self.arrays
        a.obs[i] = obs
        for key, column in a.info.items():
            column[i] = info[key]

    def reset(self, indices: Sequence[int] | np.ndarray | None = None,
              seeds: int | Sequence[int | None] | None = None
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        idx = np.arange(self.n) if indices is None else np.asarray(indices, dtype=np.intp)
        for i, seed in zip(idx, per_row_seeds(idx, seeds), strict=True):
            obs, info = self.envs[i].reset(seed=seed)
            if self.arrays is None:
                self.arrays = self._allocate(obs, info)
            self._write(int(i), obs, info)
            self.arrays.terminated[i] = self.arrays.truncated[i] = False
            self._ended[i] = False
            if i in self._cameras:
                self._cameras[int(i)].aim(info["robot_quat"])
        return self.arrays.obs, self.arrays.info

    def step(self, torques: np.ndarray) -> StepArrays:
        a = self.arrays
        if a is None:
            raise RuntimeError("call reset() before step()")
        for i in np.flatnonzero(~self._ended):
            obs, reward, terminated, truncated, info = self.envs[i].step(torques[i])
            self._write(int(i), obs, info)
            a.reward[i] = reward
            a.terminated[i], a.truncated[i] = terminated, truncated
            for key, value in info["reward_terms"].items():
                a.terms.setdefault(key, np.zeros(self.n))[i] = value
            self._ended[i] = terminated or truncated
        return a

    # ---------------------------------------------------------------- walker-facing state
    @property
    def joint_pos(self) -> np.ndarray:
        return self.arrays.obs[:, 0:12]

    @property
    def joint_vel(self) -> np.ndarray:
        return self.arrays.obs[:, 12:24]

    @property
    def robot_quat(self) -> np.ndarray:
        return self.arrays.info["robot_quat"]

    @property
    def robot_gyro(self) -> np.ndarray:
        return self.arrays.info["robot_gyro"]

    @property
    def robot_height(self) -> np.ndarray:
        heights = []
        for env in self.envs:
            u = env.unwrapped
            heights.append(u.sim.data.get_site_xpos(u._root_site)[2])
        return np.array(heights)

    # -------------------------------------------------------------------------- render
    def mujoco(self, row: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """Row ``row``'s MuJoCo model and data."""
        sim = self.envs[row].unwrapped.sim
        return sim.model._model, sim.data._data

    def render(self, row: int = 0) -> np.ndarray:
        """An RGB frame of row ``row`` from a camera that tracks its robot."""
        model, data = self.mujoco(row)
        camera = self._cameras.get(row)
        if camera is None:
            u = self.envs[row].unwrapped
            root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT,
                                     f"{u.robots[0].name_prefix}root")
            camera = TrackingCamera(model, int(model.jnt_bodyid[root]), self._camera_spec)
            if self.arrays is not None:
                camera.aim(self.arrays.info["robot_quat"][row])
            self._cameras[row] = camera
        return camera.render(data)

    def close(self) -> None:
        for camera in self._cameras.values():
            camera.close()
        self._cameras = {}
        for env in self.envs:
            env.close()
        self.envs = []
