"""Booster Soccer Showdown envs: one spec, one behaviour, two physics backends.

- ``spec.SoccerSpec``: what a soccer env is (tasks, control, walker, reward, observation
  frame, backend, limits, camera), built once from the config and passed whole.
- ``behaviour/``: the soccer behaviour as pure batched functions: tasks, unified observation
  (the submission's ``Preprocessor``), competition scoring, reward modes, joystick walker,
  scripted policies.
- ``backends/``: the physics of one task for N rows behind one small interface
  (``backends.base.TaskPhysics``): ``sai`` (real sai-mujoco envs; renders) and ``fast``.
- ``batch.SoccerBatch``: the behaviour composed over a backend, for N envs.
- ``vec_env``: the SB3 ``SoccerVecEnv`` and the single-env ``SoccerGymEnv`` over the batch.

Importing this package does not import ``sai_mujoco``; building an env does.
"""

from soccerlab.envs.soccer.backends.render import CameraSpec
from soccerlab.envs.soccer.behaviour.observation import (
    OBS_LAYOUT,
    UNIFIED_OBS_SIZE,
    projected_gravity,
    quat_rotate_inverse,
    submission_source,
    unified_observation,
)
from soccerlab.envs.soccer.behaviour.rewards import REWARD_MODES, RewardTracker, ShapingConfig
from soccerlab.envs.soccer.behaviour.scoring import (
    aggregate_episodes,
    batch_scores,
    episode_score,
)
from soccerlab.envs.soccer.behaviour.scripted import chase_action, chase_command
from soccerlab.envs.soccer.behaviour.submission import Preprocessor, action_function
from soccerlab.envs.soccer.behaviour.tasks import (
    COMPETITION_TASKS,
    TASKS,
    SoccerTask,
    available_tasks,
    format_task_table,
    get_task,
)
from soccerlab.envs.soccer.behaviour.walker import JoystickWalker, WalkerConfig, scale_command
from soccerlab.envs.soccer.behaviour.walker_load import WalkerSpec, load_walker
from soccerlab.envs.soccer.spec import CONTROLS, SoccerSpec, normalize_weights, plan_slots

__all__ = [
    "COMPETITION_TASKS", "CONTROLS", "OBS_LAYOUT", "REWARD_MODES", "TASKS", "UNIFIED_OBS_SIZE",
    "CameraSpec", "JoystickWalker", "Preprocessor", "RewardTracker", "ShapingConfig",
    "SoccerGymEnv", "SoccerSpec", "SoccerTask", "SoccerVecEnv", "WalkerConfig", "WalkerSpec",
    "action_function", "aggregate_episodes", "available_tasks", "batch_scores", "chase_action",
    "chase_command", "episode_score", "format_task_table", "get_task", "load_walker",
    "normalize_weights", "plan_slots", "projected_gravity", "quat_rotate_inverse",
    "scale_command", "submission_source", "unified_observation",
]  # fmt: skip


def __getattr__(name: str):
    """The adapters import stable-baselines3 (and torch): only on first use."""
    if name in ("SoccerVecEnv", "SoccerGymEnv"):
        from soccerlab.envs.soccer import vec_env

        return getattr(vec_env, name)
    raise AttributeError(name)
