"""Mocap clips as demonstrations: kinematic replay in a task's scene (``demos import-mocap``).

A clip (``booster_lower_t1/*.npz``) holds ``qpos`` (T, 19): root position, root quaternion
(w, x, y, z), 12 joints in the env's order; ``qvel`` (T, 18): root linear velocity (world),
root angular velocity, 12 joint velocities; ``frequency`` (500 Hz). Only these three keys are
read, with ``allow_pickle=False`` (the files also hold object arrays).

Each clip is placed at the task's start pose (a sai-mujoco env reset with ``seed``): rotated so
its first heading is the robot's start heading and moved onto its start position, keeping the
clip's own height. Every 10th frame (50 Hz, one walker decision) the robot's qpos and qvel are
set from the clip, ``mj_forward`` runs, and the unified observation is built from sai's own
observation and info with the same ``Preprocessor`` the envs use. The ball, keeper and
defenders stay where the reset put them: the replay is kinematic, nothing is simulated.

Labels, per transition from decision k to k + 1:

- ``commands``: the walker command that would produce the root's motion: the root's
  displacement per second (vx, vy, in the window's mid-heading frame) and heading change per
  second (yaw rate) over the 0.02 s step widened by ``smooth`` seconds (0.5 s by default, about
  a gait cycle: a walker command is a gait-averaged velocity, and the root sways within each
  step), divided by the walker's command ranges (``command_to_action``) and clipped to [-1, 1].
  Labels come from positions, not ``qvel``, so velocity spikes do not enter them.
- ``actions``: the joint targets of the next decision as walker outputs,
  (q_{k+1} - default_q) / action_scale, clipped to [-1, 1].

Transitions whose (widened) window holds a velocity spike (root speed above ``max_speed`` in ``qvel`` or
in the finite differences of the position) are dropped (kick_ball1 starts with 20 such frames).
Scores are NaN (nothing is scored), rewards 0, ``reward_mode`` ``none``, one episode per clip
whose last kept transition is ``done`` (truncated, not terminated).

Observation caveats: the accelerometer reads what ``mj_forward`` computes for the set state
(no recorded accelerations), and the ball never moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soccerlab.envs.soccer.behaviour.submission import Preprocessor
from soccerlab.envs.soccer.behaviour.tasks import get_task
from soccerlab.envs.soccer.behaviour.walker import command_to_action
from soccerlab.errors import UserError
from soccerlab.imitation.demos import Demos

#: booster_gym T1 default joint angles per leg (used without a walker config).
DEFAULT_Q = np.array([-0.2, 0.0, 0.0, 0.4, -0.25, 0.0] * 2)
DEFAULT_RANGES = np.array([[-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0]])
DECISION_HZ = 50.0


@dataclass
class Clip:
    name: str
    qpos: np.ndarray  # (T, 19)
    qvel: np.ndarray  # (T, 18)
    frequency: float


def load_clip(path: str | Path) -> Clip:
    """Read a mocap clip's qpos, qvel and frequency (never unpickles)."""
    from soccerlab.envs.soccer.behaviour.kick import read_clip_arrays

    path = Path(path)
    arrays = read_clip_arrays(path, ("qpos", "qvel", "frequency"), "mocap clip")
    qpos, qvel, freq = arrays["qpos"], arrays["qvel"], float(arrays["frequency"])
    if qpos.ndim != 2 or qpos.shape[1] != 19 or qvel.shape != (len(qpos), 18):
        raise UserError(f"{path}: expected qpos (T, 19) and qvel (T, 18), got {qpos.shape} "
                        f"and {qvel.shape}")
    if not np.isfinite(freq) or freq <= 0:
        raise UserError(f"{path}: bad frequency {freq}")
    return Clip(path.stem, qpos, qvel, freq)


def quat_yaw_wxyz(q: np.ndarray) -> np.ndarray:
    """Heading of quaternions (..., 4) in w, x, y, z order."""
    w, x, y, z = (q[..., i] for i in range(4))
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def yaw_quat_wxyz(angle: float) -> np.ndarray:
    return np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])


def quat_mul_wxyz(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b, (4,) with (..., 4), w first."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = (b[..., i] for i in range(4))
    return np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                     w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], axis=-1)


def place_clip(clip: Clip, start_xy: np.ndarray, start_yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """The clip's qpos and qvel moved so that it starts at ``start_xy`` facing ``start_yaw``."""
    turn = start_yaw - float(quat_yaw_wxyz(clip.qpos[0, 3:7]))
    c, s = np.cos(turn), np.sin(turn)
    rot = np.array([[c, -s], [s, c]])
    qpos, qvel = clip.qpos.copy(), clip.qvel.copy()
    qpos[:, :2] = (clip.qpos[:, :2] - clip.qpos[0, :2]) @ rot.T + start_xy
    qpos[:, 3:7] = quat_mul_wxyz(yaw_quat_wxyz(turn), clip.qpos[:, 3:7])
    qvel[:, :2] = clip.qvel[:, :2] @ rot.T  # world-frame linear velocity; angular is local
    return qpos, qvel


def command_labels(qpos: np.ndarray, lo: np.ndarray, hi: np.ndarray, frequency: float
                   ) -> np.ndarray:
    """Physical commands (K, 3) over the frame windows ``lo[k]..hi[k]`` of ``qpos`` (T, 19):
    the root's displacement per second in the window's mid-heading frame, and its heading
    change per second."""
    yaw = np.unwrap(quat_yaw_wxyz(qpos[:, 3:7]))
    dt = np.maximum(hi - lo, 1) / frequency
    dyaw = yaw[hi] - yaw[lo]
    mid = yaw[lo] + 0.5 * dyaw
    d = qpos[hi, :2] - qpos[lo, :2]
    c, s = np.cos(mid), np.sin(mid)
    vx = (c * d[:, 0] + s * d[:, 1]) / dt
    vy = (-s * d[:, 0] + c * d[:, 1]) / dt
    return np.stack([vx, vy, dyaw / dt], axis=1)


def spike_frames(clip: Clip, max_speed: float) -> np.ndarray:
    """(T,) bool: root speed above ``max_speed`` in qvel or in position differences."""
    speed = np.linalg.norm(clip.qvel[:, :3], axis=1)
    fd = np.zeros(len(clip.qpos))
    fd[1:] = np.linalg.norm(np.diff(clip.qpos[:, :3], axis=0), axis=1) * clip.frequency
    return (speed > max_speed) | (fd > max_speed)


class MocapScene:
    """One sai-mujoco env of a task, reset once, for kinematic replays."""

    def __init__(self, task: str, seed: int = 0, frame: str = "world") -> None:
        import mujoco

        from soccerlab.envs.soccer.backends.sai import make_sai_env

        self.task = get_task(task)
        self.env = make_sai_env(self.task.env_id)
        self.env.reset(seed=seed)
        u = self.u = self.env.unwrapped
        self.mujoco = mujoco
        self.model, self.data = u.sim.model._model, u.sim.data._data
        jid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT,
                                f"{u.robots[0].name_prefix}root")
        if jid < 0:
            raise UserError(f"{self.task.env_id}: no robot root joint found")
        self.qadr, self.vadr = int(self.model.jnt_qposadr[jid]), int(self.model.jnt_dofadr[jid])
        self.start_qpos = self.data.qpos.copy()
        self.start_qvel = self.data.qvel.copy()
        root = self.start_qpos[self.qadr:self.qadr + 7]
        self.start_xy = root[:2].copy()
        self.start_yaw = float(quat_yaw_wxyz(root[3:7]))
        self.preprocessor = Preprocessor(task_index=self.task.onehot_index, frame=frame)

    def observe(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """The unified observation (89,) with the robot at ``qpos`` (19,) / ``qvel`` (18,)."""
        d = self.data
        d.qpos[:] = self.start_qpos
        d.qvel[:] = self.start_qvel
        d.qpos[self.qadr:self.qadr + 19] = qpos
        d.qvel[self.vadr:self.vadr + 18] = qvel
        self.mujoco.mj_forward(self.model, d)
        raw = np.asarray(self.u._get_obs(), dtype=np.float32)
        if not np.allclose(raw[:12], qpos[7:], atol=1e-5):
            raise UserError(f"{self.task.env_id}: the robot's joints are not laid out as the "
                            "clip's (root, then 12 joints in the env's order)")
        info = self.u._get_info()
        batched = {k: np.asarray(v)[None] for k, v in info.items()
                   if k == "robot_quat" or k in dict(Preprocessor.INFO_LAYOUT)}
        return self.preprocessor.modify_state(raw[None], batched)[0]

    def close(self) -> None:
        self.env.close()


def import_mocap(paths: Sequence[str | Path], task: str, *, command_ranges: np.ndarray | None = None,
                 default_q: np.ndarray | None = None, action_scale: float = 1.0,
                 frame: str = "world", seed: int = 0, max_speed: float = 5.0,
                 smooth: float = 0.5) -> tuple[Demos, list[dict[str, float]]]:
    """Replay ``paths`` in ``task``'s scene (see the module docstring). Returns the dataset
    and one summary per clip (frames, transitions kept and dropped, command statistics)."""
    ranges = DEFAULT_RANGES if command_ranges is None else np.asarray(command_ranges)
    default_q = DEFAULT_Q if default_q is None else np.asarray(default_q)
    clips = [load_clip(p) for p in paths]
    scene = MocapScene(task, seed=seed, frame=frame)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", "next_observations",
                                                         "commands", "actions", "episode")}
    lengths, stats = [], []
    try:
        for e, clip in enumerate(clips):
            stride = max(1, int(round(clip.frequency / DECISION_HZ)))
            qpos, qvel = place_clip(clip, scene.start_xy, scene.start_yaw)
            idx = np.arange(0, len(qpos), stride)
            half = int(round(smooth * clip.frequency / 2))
            lo = np.maximum(idx[:-1] - half, 0)
            hi = np.minimum(idx[1:] + half, len(qpos) - 1)
            spikes = spike_frames(clip, max_speed)
            keep = np.array([not spikes[a:b + 1].any() for a, b in zip(lo, hi, strict=True)],
                            dtype=bool)
            physical = command_labels(qpos, lo, hi, clip.frequency)
            commands = command_to_action(physical, ranges)
            obs = np.stack([scene.observe(qpos[i], qvel[i]) for i in idx]) if len(idx) \
                else np.zeros((0, 89), np.float32)
            targets = np.clip((qpos[idx[1:], 7:] - default_q) / action_scale, -1.0, 1.0)
            k = np.flatnonzero(keep)
            cols["observations"].append(obs[k])
            cols["next_observations"].append(obs[k + 1])
            cols["commands"].append(commands[k])
            cols["actions"].append(targets[k])
            cols["episode"].append(np.full(len(k), e))
            lengths.append(len(k) * stride)
            kept = physical[k]
            stats.append({"clip": clip.name, "frames": len(qpos), "transitions": int(len(k)),
                          "dropped": int((~keep).sum()),
                          "vx_mean": float(kept[:, 0].mean()) if len(k) else 0.0,
                          "vx_min": float(kept[:, 0].min()) if len(k) else 0.0,
                          "vx_max": float(kept[:, 0].max()) if len(k) else 0.0,
                          "vy_absmax": float(np.abs(kept[:, 1]).max()) if len(k) else 0.0,
                          "yaw_absmax": float(np.abs(kept[:, 2]).max()) if len(k) else 0.0,
                          "saturated": float(np.mean(np.any(np.abs(commands[k]) >= 1.0,
                                                            axis=1))) if len(k) else 0.0})
    finally:
        scene.close()
    episode = np.concatenate(cols["episode"]).astype(np.int32)
    n = len(episode)
    done = np.zeros(n, dtype=bool)
    for e in range(len(clips)):
        rows = np.flatnonzero(episode == e)
        if rows.size:
            done[rows[-1]] = True
    demos = Demos(
        observations=np.concatenate(cols["observations"]),
        actions=np.concatenate(cols["actions"]),
        done=done,
        commands=np.concatenate(cols["commands"]),
        next_observations=np.concatenate(cols["next_observations"]),
        rewards=np.zeros(n),
        terminated=np.zeros(n, dtype=bool),
        task_index=np.zeros(n, dtype=np.int8),
        episode=episode,
        tasks=(scene.task.name,),
        episode_task=np.zeros(len(clips)),
        episode_score=np.full(len(clips), np.nan),
        episode_success=np.zeros(len(clips), dtype=bool),
        episode_fallen=np.zeros(len(clips), dtype=bool),
        episode_length=np.array(lengths),
        control="walker", frame=frame, reward_mode="none",
        source="mocap:" + ",".join(c.name for c in clips), command_ranges=ranges,
    )
    return demos, stats
