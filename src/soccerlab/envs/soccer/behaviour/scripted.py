"""Scripted command policies for walker control (baselines, smoke tests, demonstrations).

The env's ``*_rel_robot`` vectors are world-frame offsets; anything that steers must rotate them
into the robot's frame by the inverse of ``robot_quat`` first, as done here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from soccerlab.envs.soccer.behaviour.observation import quat_rotate_inverse
from soccerlab.envs.soccer.behaviour.walker import command_to_action


def ball_in_robot_frame(info: Mapping[str, Any]) -> np.ndarray:
    """The ball's offset from the robot in the robot's frame, (3,) or (N, 3)."""
    return quat_rotate_inverse(
        np.asarray(info["robot_quat"]), np.asarray(info["ball_xpos_rel_robot"])
    )


def chase_command(
    info: Mapping[str, Any],
    speed: float = 0.5,
    max_yaw_rate: float = 1.0,
    turn_gain: float = 2.0,
    align_angle: float = 0.6,
) -> np.ndarray:
    """Turn toward the ball and walk into it: physical command (vx, vy, yaw rate).

    The yaw rate is proportional to the ball's bearing (clipped to ``max_yaw_rate``); forward
    speed fades linearly from ``speed`` when the ball is straight ahead to 0 when it is
    ``align_angle`` radians or more off the heading, so the robot turns before it walks.
    Works on one info dict ((3,) out) or batched info ((N, 3) out).
    """
    ball = np.asarray(ball_in_robot_frame(info), dtype=np.float64)
    bearing = np.arctan2(ball[..., 1], ball[..., 0])
    vx = speed * np.clip(1.0 - np.abs(bearing) / align_angle, 0.0, 1.0)
    yaw = np.clip(turn_gain * bearing, -max_yaw_rate, max_yaw_rate)
    return np.stack([vx, np.zeros_like(vx), yaw], axis=-1)


def chase_action(info: Mapping[str, Any], command_ranges: np.ndarray, **kwargs: Any) -> np.ndarray:
    """``chase_command`` as a normalised walker-control action in [-1, 1]."""
    return command_to_action(chase_command(info, **kwargs), command_ranges).astype(np.float32)
