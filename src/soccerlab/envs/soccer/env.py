"""``SoccerEnv``: one sai-mujoco soccer task behind a Gymnasium interface for training.

- Observation: the unified 89-dim vector (``submission.Preprocessor``, the submission's code).
- ``control="torque"``: action (12,) in [-1, 1], mapped linearly onto the torque bounds by
  ``submission.action_function`` (what SAI does with a torch/ONNX model's output; an SB3 model
  needs that function shipped as its action function). [-1, 1] suits SB3's Gaussian policies.
- ``control="walker"``: action (3,) in [-1, 1] = (vx, vy, yaw rate) command, scaled by the
  walker's command ranges. One agent step = ``decimation`` (10) env steps with the command held
  (50 Hz); the env reward is summed over them; the step stops early at termination/truncation;
  the score comes from the last inner step.
- Reward: see ``rewards.py`` (``env``, ``competition``, ``shaped``, ``progress``), computed per
  agent step.
- ``info["task"]`` every step; at every episode end ``info["soccer"]`` = {task, score,
  components, success, fallen, length (env steps)}. All raw env info keys pass through.
- ``render_mode="rgb_array"``: frames from a camera that tracks the robot (``render.py``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from soccerlab.envs.soccer.render import CameraSpec, TrackingCamera
from soccerlab.envs.soccer.rewards import RewardTracker, ShapingConfig, check_reward_mode
from soccerlab.envs.soccer.robot import NUM_JOINTS
from soccerlab.envs.soccer.scoring import episode_score
from soccerlab.envs.soccer.submission import Preprocessor, action_function
from soccerlab.envs.soccer.tasks import SoccerTask, get_task
from soccerlab.envs.soccer.walker import JoystickWalker, scale_command
from soccerlab.envs.soccer.walker_load import WalkerSpec, load_walker
from soccerlab.errors import UserError

CONTROLS: tuple[str, ...] = ("torque", "walker")
OBSERVATION_FRAMES: tuple[str, ...] = Preprocessor.FRAMES


def build_sai_env(task: SoccerTask, **env_kwargs: Any) -> gym.Env:
    """``gym.make`` the task's sai-mujoco env (TimeLimit included) after ``import sai_mujoco``."""
    import sai_mujoco  # noqa: F401  (registers the envs)

    return gym.make(task.env_id, **env_kwargs)


class SoccerEnv(gym.Env):
    """One soccer task with the unified observation, a control mode and a reward mode.

    Args:
        task: Task name (see ``tasks.TASKS``) or a ``SoccerTask``.
        control: ``"torque"`` or ``"walker"``.
        reward: ``"env"``, ``"competition"``, ``"shaped"`` or ``"progress"``.
        walker: Required for walker control: a ``WalkerSpec``, a path/``hf://`` reference, or a
            ``JoystickWalker`` for one env (shared by ``MultiTaskSoccerEnv``'s sub-envs).
        render_mode: None or ``"rgb_array"``.
        shaping: Parameters of the ``shaped`` reward.
        camera: Tracking camera settings.
        seed: Seed used by the first ``reset`` when that call passes none.
        env_kwargs: Extra keyword arguments for ``gym.make`` of the sai-mujoco env.
        observation: ``"world"`` (the competition's unified layout) or ``"heading"`` (the same
            89 entries with relative vectors in the robot's heading frame; see ``Preprocessor``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task: str | SoccerTask,
        control: str = "torque",
        reward: str = "env",
        walker: WalkerSpec | str | JoystickWalker | None = None,
        render_mode: str | None = None,
        shaping: ShapingConfig | None = None,
        camera: CameraSpec | None = None,
        seed: int | None = None,
        env_kwargs: dict[str, Any] | None = None,
        observation: str = "world",
    ):
        self.task = task if isinstance(task, SoccerTask) else get_task(task)
        if control not in CONTROLS:
            raise UserError(f"unknown control '{control}' (choose one of: {', '.join(CONTROLS)})")
        if render_mode not in (None, "rgb_array"):
            raise UserError(f"unsupported render_mode '{render_mode}' (use rgb_array or none)")
        if observation not in OBSERVATION_FRAMES:
            raise UserError(f"unknown observation frame '{observation}' "
                            f"(choose one of: {', '.join(OBSERVATION_FRAMES)})")
        self.control = control
        self.render_mode = render_mode
        self.walker: JoystickWalker | None = None
        if control == "walker":
            if walker is None:
                raise UserError("walker control needs a walker (path or hf:// reference)")
            self.walker = walker if isinstance(walker, JoystickWalker) else load_walker(walker)
            if self.walker.num_envs != 1:
                raise ValueError(f"SoccerEnv needs a walker for 1 env, got {self.walker.num_envs}")
            self.action_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, (NUM_JOINTS,), np.float32)
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, (self.task.unified_obs_size,), np.float32
        )
        self.metadata = {**self.metadata, "render_fps": 50 if control == "walker" else 500}
        self.raw_env = build_sai_env(self.task, **(env_kwargs or {}))
        self.preprocessor = Preprocessor(task_index=self.task.onehot_index, frame=observation)
        self.rewards = RewardTracker(check_reward_mode(reward), [self.task], shaping)
        self._camera_spec = camera
        self._camera: TrackingCamera | None = None
        self._seed = seed
        self._raw_obs: np.ndarray | None = None
        self._info: dict[str, Any] = {}
        self._length = 0

    @property
    def command_ranges(self) -> np.ndarray | None:
        """(3, 2) physical ranges of the walker commands (None under torque control)."""
        return None if self.walker is None else self.walker.config.command_ranges

    @property
    def episode_length(self) -> int:
        """Env steps (500 Hz) taken in the current episode."""
        return self._length

    @property
    def sim(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """The underlying MuJoCo model and data."""
        sim = self.raw_env.unwrapped.sim
        return sim.model._model, sim.data._data

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        super().reset(seed=seed)
        raw_obs, info = self.raw_env.reset(seed=seed, options=options)
        if self.walker is not None:
            self.walker.reset()
        self.rewards.reset(info)
        self._raw_obs, self._info, self._length = raw_obs, info, 0
        if self._camera is not None:
            self._camera.aim(info["robot_quat"])
        info["task"] = self.task.name
        return self.preprocessor.modify_state(raw_obs, info), info

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float32)
        if self.walker is None:
            raw_obs, env_reward, terminated, truncated, info = self.raw_env.step(
                action_function(action)
            )
            self._length += 1
        else:
            raw_obs, env_reward, terminated, truncated, info = self._walker_step(action)
        self._raw_obs, self._info = raw_obs, info
        done = bool(terminated or truncated)
        score = 0.0
        if done:
            info["soccer"] = self.episode_record(info)
            score = info["soccer"]["score"]
        reward = self.rewards.step(
            np.array([env_reward]), info, np.array([done]), np.array([score])
        )
        info["task"] = self.task.name
        obs = self.preprocessor.modify_state(raw_obs, info)
        return obs, float(reward[0]), bool(terminated), bool(truncated), info

    def _walker_step(self, action: np.ndarray):
        assert self.walker is not None
        command = scale_command(action.reshape(1, 3), self.walker.config.command_ranges)
        raw_obs, info, total = self._raw_obs, self._info, 0.0
        terminated = truncated = False
        for _ in range(self.walker.config.decimation):
            torques = self.walker.step(
                raw_obs[:12], raw_obs[12:24], info["robot_quat"], info["robot_gyro"], command
            )
            raw_obs, reward, terminated, truncated, info = self.raw_env.step(torques[0])
            total += float(reward)
            self._length += 1
            if terminated or truncated:
                break
        return raw_obs, total, terminated, truncated, info

    def episode_record(self, info: dict[str, Any]) -> dict[str, Any]:
        """The ``info["soccer"]`` dict for an episode whose last step returned ``info``."""
        terms = info.get("reward_terms", {})
        score, components = episode_score(terms, self.task)
        return {
            "task": self.task.name,
            "score": score,
            "components": components,
            "success": bool(info.get("success", False)),
            "fallen": self._fallen(terms),
            "length": self._length,
        }

    def _fallen(self, terms: dict[str, Any]) -> bool:
        if "robot_fallen" in terms:
            return bool(terms["robot_fallen"])
        env = self.raw_env.unwrapped  # kick_to_target has no fall term: ask the env's own check
        return bool(env.has_robot_fallen(env.sim.data.get_site_xpos(env._root_site)[2]))

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        model, data = self.sim
        if self._camera is None:
            env = self.raw_env.unwrapped
            root = mujoco.mj_name2id(
                model, mujoco.mjtObj.mjOBJ_JOINT, f"{env.robots[0].name_prefix}root"
            )
            self._camera = TrackingCamera(model, int(model.jnt_bodyid[root]), self._camera_spec)
            if self._info:
                self._camera.aim(self._info["robot_quat"])
        return self._camera.render(data)

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        self.raw_env.close()
