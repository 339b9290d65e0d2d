"""The physics-backend interface: N instances of one soccer task, stepped as arrays.

A backend runs the sai-mujoco physics of one task for N rows and hands back sai-mujoco's own
values (raw observation, env reward, reward terms, info fields, terminated, truncated) as
arrays. It knows nothing about soccerlab's behaviour (unified observation, control, rewards,
scores): that is ``soccer.batch.SoccerBatch``, written once over this interface.

Two implementations return the same arrays for the same seeds and torques (bit for bit,
``tests/test_fast_parity.py``):

- ``sai`` (``backends.sai.SaiStack``): N real sai-mujoco envs. The reference; it renders.
- ``fast`` (``backends.fast.FastSoccerSim``): all N rows in one vectorised simulator.

Rules both follow:

- ``reset(rows, seeds)`` starts new episodes in ``rows`` (default: all). A seed s plays like
  ``gym.make(id).reset(seed=s)``; ``None`` continues the row's own random stream. Returns the
  full ``(obs, info)`` buffers, of which only ``rows`` changed.
- ``step(torques)`` applies (N, 12) joint torques for one physics step (500 Hz) to every row
  and returns ``arrays`` (``StepArrays``). Rows are never reset by the backend; a row whose
  episode ended may still be stepped, and its results are then meaningless.
- ``robot_height`` and ``min_height``: the IMU site height and the threshold below which sai
  calls the robot fallen (``not min_height < height``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

BACKENDS: tuple[str, ...] = ("sai", "fast")

#: sai-mujoco 0.1.30's info fields, in its order (every football env has them all).
INFO_FIELD = ("length", "width", "goal_width", "goal_height", "goal_depth")
INFO_DIFF = (  # float64 info vectors, all "a - b"
    "goal_team_0_rel_robot", "goal_team_1_rel_robot", "goal_team_0_rel_ball",
    "goal_team_1_rel_ball", "ball_xpos_rel_robot", "ball_velp_rel_robot", "ball_velr_rel_robot",
    "goalkeeper_team_0_xpos_rel_robot", "goalkeeper_team_0_velp_rel_robot",
    "goalkeeper_team_1_xpos_rel_robot", "goalkeeper_team_1_velp_rel_robot",
    "target_xpos_rel_robot", "target_velp_rel_robot", "defender_xpos",
)
INFO_SENSORS = ("robot_accelerometer", "robot_gyro", "robot_velocimeter", "robot_quat")
INFO_KEYS = (
    *INFO_FIELD, *INFO_DIFF[:7], "player_team", *INFO_SENSORS, *INFO_DIFF[7:], "success",
)
BOOL_TERMS = frozenset({"offside", "robot_fallen", "goal_scored", "ball_blocked", "success"})
# ^ reward_terms sai returns as Python bools; here they are 0.0 / 1.0 float64 columns


@dataclass
class StepArrays:
    """One batched step. The arrays are the backend's buffers: copy what you keep.

    ``reset(rows)`` rewrites the ``obs`` and ``info`` rows of those rows (the new episode's
    first observation) and clears their ``terminated``/``truncated``; ``reward`` and ``terms``
    keep the values of the last step taken until the next step.

    Attributes:
        obs: (N, raw_obs_size) float32 raw observations, as sai-mujoco returns them.
        reward: (N,) float32 env reward.
        terminated: (N,) bool.
        truncated: (N,) bool, the TimeLimit.
        terms: ``reward_terms``, key -> (N,) float64 (flags as 0.0 / 1.0; sai returns bools).
        info: every sai-mujoco info field, key -> (N,) or (N, k), in sai's dtypes.
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    terms: dict[str, np.ndarray]
    info: dict[str, np.ndarray]


class TaskPhysics(Protocol):
    """What ``SoccerBatch`` needs from a backend (see the module docstring)."""

    n: int
    max_episode_steps: int
    min_height: float
    arrays: StepArrays

    def reset(self, indices: Sequence[int] | np.ndarray | None = None,
              seeds: int | Sequence[int | None] | None = None
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...

    def step(self, torques: np.ndarray) -> StepArrays: ...

    @property
    def joint_pos(self) -> np.ndarray: ...

    @property
    def joint_vel(self) -> np.ndarray: ...

    @property
    def robot_quat(self) -> np.ndarray: ...

    @property
    def robot_gyro(self) -> np.ndarray: ...

    @property
    def robot_height(self) -> np.ndarray: ...

    def close(self) -> None: ...


def per_row_seeds(indices: np.ndarray, seeds: int | Sequence[int | None] | None
                  ) -> list[int | None]:
    """One seed-or-None per row of ``indices``: None (continue every stream), an int s (row i
    gets s + i, as SB3's ``VecEnv.seed``), or one entry per index."""
    from soccerlab.errors import UserError

    if seeds is None:
        return [None] * len(indices)
    if isinstance(seeds, (int, np.integer)):
        return [int(seeds) + int(i) for i in indices]
    out = list(seeds)
    if len(out) != len(indices):
        raise UserError(f"got {len(out)} seeds for {len(indices)} rows")
    return out


def registered_time_limit(env_id: str) -> int:
    """The TimeLimit (env steps) sai-mujoco registers for ``env_id``: both backends' default,
    and what an exported model's time feature divides by."""
    import gymnasium as gym
    import sai_mujoco  # noqa: F401 - registers the envs

    return int(gym.spec(env_id).max_episode_steps)


def make_physics(backend: str, task: str, n: int, *, max_episode_steps: int | None = None,
                 env_kwargs: dict | None = None, **options) -> TaskPhysics:
    """Build ``n`` rows of ``task`` on ``backend`` (``options``: backend-specific settings,
    e.g. ``n_threads``/``reset_mode`` for fast, ``camera`` for sai)."""
    if backend == "fast":
        from soccerlab.envs.soccer.backends.fast import FastSoccerSim

        return FastSoccerSim(task, n, max_episode_steps=max_episode_steps,
                             env_kwargs=env_kwargs, **options)
    if backend == "sai":
        from soccerlab.envs.soccer.backends.sai import SaiStack

        return SaiStack(task, n, max_episode_steps=max_episode_steps, env_kwargs=env_kwargs,
                        **options)
    from soccerlab.errors import UserError

    raise UserError(f"unknown soccer backend '{backend}' (choose one of: {', '.join(BACKENDS)})")
