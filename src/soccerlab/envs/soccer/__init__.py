"""Booster Soccer Showdown building blocks: tasks, unified observation, scoring, rewards,
joystick walker, the ``SoccerEnv`` wrapper and its multi-task factory.

Importing this package does not import ``sai_mujoco``; building an env does.
"""

from soccerlab.envs.soccer.env import CONTROLS, SoccerEnv
from soccerlab.envs.soccer.multitask import (
    MultiTaskSoccerEnv,
    make_soccer_env,
    make_soccer_env_fns,
    plan_slots,
)
from soccerlab.envs.soccer.observation import (
    OBS_LAYOUT,
    UNIFIED_OBS_SIZE,
    projected_gravity,
    quat_rotate_inverse,
    submission_source,
    unified_observation,
)
from soccerlab.envs.soccer.render import CameraSpec
from soccerlab.envs.soccer.rewards import REWARD_MODES, RewardTracker, ShapingConfig
from soccerlab.envs.soccer.scoring import aggregate_episodes, batch_scores, episode_score
from soccerlab.envs.soccer.scripted import chase_action, chase_command
from soccerlab.envs.soccer.submission import Preprocessor, action_function
from soccerlab.envs.soccer.tasks import (
    COMPETITION_TASKS,
    TASKS,
    SoccerTask,
    available_tasks,
    format_task_table,
    get_task,
)
from soccerlab.envs.soccer.walker import JoystickWalker, WalkerConfig, scale_command
from soccerlab.envs.soccer.walker_load import WalkerSpec, load_walker

__all__ = [
    "COMPETITION_TASKS", "CONTROLS", "OBS_LAYOUT", "REWARD_MODES", "TASKS", "UNIFIED_OBS_SIZE",
    "CameraSpec", "JoystickWalker", "MultiTaskSoccerEnv", "Preprocessor", "RewardTracker",
    "ShapingConfig", "SoccerEnv", "SoccerTask", "WalkerConfig", "WalkerSpec", "action_function",
    "aggregate_episodes", "available_tasks", "batch_scores", "chase_action", "chase_command",
    "episode_score", "format_task_table", "get_task", "load_walker", "make_soccer_env",
    "make_soccer_env_fns", "plan_slots", "projected_gravity", "quat_rotate_inverse",
    "scale_command", "submission_source", "unified_observation",
]  # fmt: skip
