"""The unified 89-dim soccer observation, as pure functions over single observations and batches.

All of it delegates to :class:`soccerlab.envs.soccer.behaviour.submission.Preprocessor`, the class a SAI
submission ships, so training and submission compute the same numbers from the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from soccerlab.envs.soccer.behaviour.submission import Preprocessor

UNIFIED_OBS_SIZE: int = Preprocessor.OBS_SIZE

#: (name, size) of each block of the unified observation, in order.
OBS_LAYOUT: tuple[tuple[str, int], ...] = (*Preprocessor.BLOCKS, ("task_onehot", 3))

Info = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def observation_slices() -> dict[str, slice]:
    """Where each named block sits in the unified observation."""
    slices, start = {}, 0
    for name, size in OBS_LAYOUT:
        slices[name] = slice(start, start + size)
        start += size
    return slices


def unified_observation(
    obs: np.ndarray, info: Info, task_index: int | None = None, frame: str = "world"
) -> np.ndarray:
    """Raw observation + info -> unified observation, (89,) or (N, 89) float32.

    Args:
        obs: Raw env observation, (raw,) or (N, raw).
        info: The env's info dict (values with a leading N for a batch) or a list of N dicts.
        task_index: One-hot slot to use when ``info`` has no ``task_index`` (0 goalie,
            1 obstacle, 2 kick_to_target); inferred from the raw size when None.
        frame: ``"world"`` (the competition's layout) or ``"heading"`` (relative vectors in
            the robot's heading frame; see ``Preprocessor``).
    """
    return Preprocessor(task_index=task_index, frame=frame).modify_state(obs, info)


def quat_rotate_inverse(quat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate world-frame ``vec`` into the body frame of ``quat`` (x, y, z, w); (..., 3).

    Accepts one quaternion (4,) or a batch (N, 4); returns (3,) or (N, 3) accordingly.
    """
    quat = np.asarray(quat)
    out = Preprocessor.quat_rotate_inverse(quat, vec)
    return out[0] if quat.ndim == 1 and np.ndim(vec) == 1 else out


def projected_gravity(quat: np.ndarray) -> np.ndarray:
    """Gravity direction (0, 0, -1) seen in the body frame of ``quat`` (x, y, z, w)."""
    return quat_rotate_inverse(quat, np.array([0.0, 0.0, -1.0]))


def submission_source() -> str:
    """Source text of the SAI submission file (``Preprocessor`` and ``action_function``)."""
    return Path(__file__).with_name("submission.py").read_text(encoding="utf-8")
