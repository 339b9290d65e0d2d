"""Booster T1 (lower body) constants shared by the soccer envs, the walker and the scripted policies.

Measured on sai-mujoco 0.1.30: the 12 actuators are raw joint torques, left leg then right leg,
each leg ordered hip pitch, hip roll, hip yaw, knee, ankle pitch, ankle roll.
"""

from __future__ import annotations

import numpy as np

#: Joint (and actuator) names in the env's action order, without the ``robot_0:`` prefix.
JOINT_NAMES: tuple[str, ...] = tuple(
    f"{side}_{joint}"
    for side in ("Left", "Right")
    for joint in ("Hip_Pitch", "Hip_Roll", "Hip_Yaw", "Knee_Pitch", "Ankle_Pitch", "Ankle_Roll")
)

#: Symmetric torque bounds in N·m, in action order (the env's action space is ``±TORQUE_LIMITS``).
TORQUE_LIMITS: np.ndarray = np.array([45, 45, 30, 65, 24, 15] * 2, dtype=np.float32)

#: Number of actuated joints.
NUM_JOINTS: int = 12

#: Physics step of every football env (one ``env.step`` is one physics step).
ENV_DT: float = 0.002
