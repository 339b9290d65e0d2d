"""SAI submission code: the observation ``Preprocessor`` and the torque ``action_function``.

SAI reads this file's source, strips its import lines and runs it with only ``np`` and ``env`` in
scope. Everything below therefore uses nothing but ``np`` and builtins, and every helper lives
inside the class or function that needs it. The project's own envs call this very code, so a
model sees the same numbers in training and in a submission.
"""

import numpy as np


class Preprocessor:
    """Raw soccer observation + info -> the unified 89-dim observation.

    Layout: joint positions (12), joint velocities (12), projected gravity (3), gyro (3),
    accelerometer (3), velocimeter (3), goal_team_0_rel_robot, goal_team_1_rel_robot,
    goal_team_0_rel_ball, goal_team_1_rel_ball, ball_xpos_rel_robot, ball_velp_rel_robot,
    ball_velr_rel_robot (3 each), player_team (2), goalkeeper_team_0_xpos_rel_robot,
    goalkeeper_team_0_velp_rel_robot, goalkeeper_team_1_xpos_rel_robot,
    goalkeeper_team_1_velp_rel_robot, target_xpos_rel_robot, target_velp_rel_robot (3 each),
    defender_xpos (9) = 86 values, then the task one-hot (3) in competition order
    (goalie, obstacle, kick_to_target).

    Works on one observation (``obs`` of shape (raw,), info values unbatched) and on a batch
    (``obs`` (N, raw), info a dict of arrays with leading N, or a list of N info dicts).
    The one-hot comes from ``info["task_index"]`` when present (an integer, N integers, or a
    one-hot of shape (3,) or (N, 3)); otherwise from ``task_index`` given at construction;
    otherwise from the raw observation size (45 goalie, 54 obstacle, 39 kick_to_target).

    ``frame="world"`` (default) is the competition's unified layout: the relative vectors as
    sai-mujoco gives them, world-frame offsets. ``frame="heading"`` keeps the same 89 entries
    but rotates every relative vector (goals, ball, keepers, target; positions and velocities)
    into the robot's heading frame (x forward, y left, z up; yaw from ``robot_quat``), which a
    policy that steers needs: nothing in the world-frame layout tells it which way it faces.
    ``defender_xpos`` holds absolute positions and stays in the world frame.

    ``hide`` maps a task's one-hot index to names of blocks (``BLOCKS``: the joints, gravity
    and ``INFO_LAYOUT``) that its rows see as zeros, e.g. ``{1: ("target_xpos_rel_robot",
    "defender_xpos")}``: obstacle's raised target and defenders move with the seed, and a
    ground-ball policy that does not see them plays every seed the same way.
    """

    OBS_SIZE = 89
    NUM_TASKS = 3
    RAW_SIZE_TO_TASK = {45: 0, 54: 1, 39: 2}
    INFO_LAYOUT = (
        ("robot_gyro", 3),
        ("robot_accelerometer", 3),
        ("robot_velocimeter", 3),
        ("goal_team_0_rel_robot", 3),
        ("goal_team_1_rel_robot", 3),
        ("goal_team_0_rel_ball", 3),
        ("goal_team_1_rel_ball", 3),
        ("ball_xpos_rel_robot", 3),
        ("ball_velp_rel_robot", 3),
        ("ball_velr_rel_robot", 3),
        ("player_team", 2),
        ("goalkeeper_team_0_xpos_rel_robot", 3),
        ("goalkeeper_team_0_velp_rel_robot", 3),
        ("goalkeeper_team_1_xpos_rel_robot", 3),
        ("goalkeeper_team_1_velp_rel_robot", 3),
        ("target_xpos_rel_robot", 3),
        ("target_velp_rel_robot", 3),
        ("defender_xpos", 9),
    )

    #: Every block before the one-hot, in order: what ``hide`` can name.
    BLOCKS = (("joint_pos", 12), ("joint_vel", 12), ("projected_gravity", 3), *INFO_LAYOUT)

    HEADING_FRAME_KEYS = (
        "goal_team_0_rel_robot",
        "goal_team_1_rel_robot",
        "goal_team_0_rel_ball",
        "goal_team_1_rel_ball",
        "ball_xpos_rel_robot",
        "ball_velp_rel_robot",
        "ball_velr_rel_robot",
        "goalkeeper_team_0_xpos_rel_robot",
        "goalkeeper_team_0_velp_rel_robot",
        "goalkeeper_team_1_xpos_rel_robot",
        "goalkeeper_team_1_velp_rel_robot",
        "target_xpos_rel_robot",
        "target_velp_rel_robot",
    )

    FRAMES = ("world", "heading")

    def __init__(self, task_index=None, frame="world", hide=None):
        if frame not in self.FRAMES:
            raise ValueError(f"frame must be one of {self.FRAMES}, got {frame!r}")
        self.task_index = task_index
        self.frame = frame
        self.hide = {int(k): self.block_columns(names) for k, names in (hide or {}).items()}

    @classmethod
    def block_columns(cls, names):
        """Column indices of the named blocks (``BLOCKS``) in the unified observation."""
        at, starts = 0, {}
        for key, size in cls.BLOCKS:
            starts[key] = (at, size)
            at += size
        unknown = [name for name in names if name not in starts]
        if unknown:
            raise ValueError(f"unknown observation blocks {unknown}: one of {list(starts)}")
        return np.array([starts[name][0] + i for name in names for i in range(starts[name][1])],
                        dtype=np.int64)

    def modify_state(self, obs, info):
        """Return the unified observation: (89,) for one observation, (N, 89) for a batch."""
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        batch = obs.reshape(1, -1) if single else obs
        n = batch.shape[0]
        quat = self.info_array(info, "robot_quat", n, 4)
        parts = [batch[:, :24], self.quat_rotate_inverse(quat, np.array([0.0, 0.0, -1.0]))]
        yaw = self.heading(quat) if self.frame == "heading" else None
        for key, size in self.INFO_LAYOUT:
            value = self.info_array(info, key, n, size)
            if yaw is not None and key in self.HEADING_FRAME_KEYS:
                value = self.rotate_yaw(value, -yaw)
            parts.append(value)
        parts.append(self.task_onehot(info, n, batch.shape[1]))
        out = self.apply_hide(np.concatenate(parts, axis=1).astype(np.float32))
        return out[0] if single else out

    def apply_hide(self, out):
        """Zero the ``hide`` blocks of unified observations (N, 89 or more) in place, on the
        rows of their tasks (read from the one-hot); returns ``out``."""
        onehot = out[:, self.OBS_SIZE - self.NUM_TASKS:self.OBS_SIZE]
        for task, columns in self.hide.items():
            rows = np.flatnonzero(onehot[:, task] > 0.5)
            if rows.size:
                out[np.ix_(rows, columns)] = 0.0
        return out

    @classmethod
    def info_array(cls, info, key, n, size):
        """``info[key]`` as a float32 array of shape (n, size)."""
        if isinstance(info, (list, tuple)):
            value = np.stack([np.asarray(item[key], dtype=np.float32) for item in info])
        else:
            value = np.asarray(info[key], dtype=np.float32)
        if value.size == size:
            return np.broadcast_to(value.reshape(1, size), (n, size))
        return value.reshape(n, size)

    @classmethod
    def quat_rotate_inverse(cls, quat, vec):
        """Rotate ``vec`` by the inverse of ``quat`` (x, y, z, w order, unit norm); batched."""
        quat = np.asarray(quat, dtype=np.float64).reshape(-1, 4)
        vec = np.broadcast_to(np.asarray(vec, dtype=np.float64), (quat.shape[0], 3))
        q_w = quat[:, 3:4]
        q_v = quat[:, :3]
        a = vec * (2.0 * q_w**2 - 1.0)
        b = np.cross(q_v, vec) * (2.0 * q_w)
        c = q_v * (2.0 * np.sum(q_v * vec, axis=1, keepdims=True))
        return (a - b + c).astype(np.float32)

    @classmethod
    def heading(cls, quat):
        """Yaw angle (rad) of each (x, y, z, w) quaternion in a (N, 4) batch."""
        q = np.asarray(quat, dtype=np.float64)
        x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
        return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))

    @classmethod
    def rotate_yaw(cls, vec, angle):
        """Rotate (N, 3) vectors about z by ``angle`` (N,) radians."""
        vec = np.asarray(vec, dtype=np.float64)
        c, s = np.cos(angle), np.sin(angle)
        out = np.empty_like(vec)
        out[:, 0] = c * vec[:, 0] - s * vec[:, 1]
        out[:, 1] = s * vec[:, 0] + c * vec[:, 1]
        out[:, 2] = vec[:, 2]
        return out.astype(np.float32)

    def task_onehot(self, info, n, raw_size):
        """The (n, 3) task one-hot (see the class docstring for where it comes from)."""
        value = None
        if isinstance(info, dict) and "task_index" in info:
            value = np.asarray(info["task_index"])
        elif isinstance(info, (list, tuple)) and len(info) > 0 and "task_index" in info[0]:
            value = np.stack([np.asarray(item["task_index"]) for item in info])
        if value is None:
            index = self.task_index
            if index is None:
                index = self.RAW_SIZE_TO_TASK.get(int(raw_size))
            if index is None:
                raise ValueError(
                    "can't tell the task: no info['task_index'], no task_index given, "
                    f"and raw observation size {raw_size} is not 45, 54 or 39"
                )
            value = np.asarray(index)
        eye = np.eye(self.NUM_TASKS, dtype=np.float32)
        if value.ndim == 0:
            return np.repeat(eye[int(value)][None, :], n, axis=0)
        if value.ndim == 1 and value.shape[0] == n:
            return eye[value.astype(np.int64)]
        if value.shape[-1] == self.NUM_TASKS and value.size in (self.NUM_TASKS, n * self.NUM_TASKS):
            return np.broadcast_to(
                value.reshape(-1, self.NUM_TASKS).astype(np.float32), (n, self.NUM_TASKS)
            )
        raise ValueError(f"task_index of shape {value.shape} does not fit a batch of {n}")


def action_function(policy_output):
    """Map a policy output in [-1, 1] (clipped) linearly onto the T1 torque bounds in N·m.

    Left leg then right leg: hip pitch, hip roll, hip yaw, knee, ankle pitch, ankle roll,
    bounds ±[45, 45, 30, 65, 24, 15]. Works on one action (12,) and on a batch (N, 12).
    """
    limits = np.array([45.0, 45.0, 30.0, 65.0, 24.0, 15.0] * 2, dtype=np.float32)
    return np.clip(np.asarray(policy_output, dtype=np.float32), -1.0, 1.0) * limits
