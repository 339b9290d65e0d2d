"""Kick macros: a recorded kick, played open loop by PD from the current stance.

A kick is a window of a mocap clip's 12 joint positions (``booster_lower_t1/*.npz``: ``qpos``
(T, 19) = root 7 + 12 joints in the env's order, ``frequency``), resampled by linear
interpolation to the physics rate (one joint target per env step, 500 Hz; the clips are
recorded at 500 Hz, so with the default rate this is the clip's own frames). ``mirror`` swaps
the legs (a left-footed clip kicks with the right foot): left and right are exchanged and the
roll and yaw joints change sign.

Playback (``kick_targets``), for a kick triggered with the joints at ``q0``:

- ramp in: over the first ``ramp_in`` seconds the target blends linearly from ``q0`` into the
  clip, ``(1 - w) q0 + w clip[k]`` with ``w = k / ramp_steps`` (the clip keeps playing);
- the rest of the clip as recorded;
- ramp out: ``ramp_out`` seconds appended after the clip, blending linearly from its last
  frame to the walker's ``default_q``;
- padded with ``default_q`` up to a whole number of walker decisions (``decimation`` env
  steps each): the kick lasts ``K = ceil(steps / decimation)`` decisions.

Torques are the walker's PD law (same kp, kd, torque limits: ``walker.pd_torques``). While a
kick plays, the policy's actions are ignored; afterwards the walker's state is reset (previous
actions zero, gait phase zero, targets ``default_q``: where the ramp out left the joints' targets)
and it takes back control. ``KickMacro`` holds the per-env playback state for N envs.

``KICK_WINDOWS``: default windows (seconds) of the shipped clips, around the fastest forward
swing of the kicking leg's hip pitch (measured on the clips; see docs/results.md).

Measured (docs/results.md, "Kick macros"): open-loop playback falls in most kicks from
realistic approach states, whatever the clip and window; it is an option to build on, not a
dependable skill.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soccerlab.envs.soccer.behaviour.robot import NUM_JOINTS
from soccerlab.errors import UserError

#: Clip stem -> (start, end) in seconds: about 0.2 s either side of the fastest forward swing of
#: the kicking leg's hip pitch (the swing through the ball, without the clip's run-up and
#: recovery steps, which make open-loop playback fall more often; see docs/results.md).
KICK_WINDOWS: dict[str, tuple[float, float]] = {
    "kick_ball1": (1.4, 1.85),  # right foot
    "kick_ball2": (0.85, 1.3),  # left foot
    "kick_ball3": (1.25, 1.7),  # left foot
    "powerful_kick": (2.3, 2.65),  # left foot
    "goal_kick": (2.05, 2.5),  # right foot
    "pass_ball1": (1.45, 1.9),  # left foot
}

#: Per leg: hip pitch, hip roll, hip yaw, knee, ankle pitch, ankle roll; roll and yaw flip sign
#: when the legs are mirrored.
_MIRROR_SIGN = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0] * 2)
_MIRROR_ORDER = np.r_[6:12, 0:6]
SUPPORTS: tuple[str, ...] = ("clip", "walker")


@dataclass(frozen=True)
class KickSpec:
    """Which kick to play and when (``env.kick`` in the config).

    Attributes:
        clip: Mocap clip ``.npz`` (qpos (T, 19), frequency).
        window: (start, end) seconds of the clip to play; None: ``KICK_WINDOWS`` for the clip's
            name.
        trigger: The kick starts when the 4th action exceeds this.
        mirror: Swap the legs (kick with the other foot).
        ramp_in: Seconds of blending from the current joints into the clip.
        ramp_out: Seconds appended to blend from the clip's last frame to the default pose.
        support: ``"clip"``: the clip drives both legs (open loop); ``"walker"``: the clip drives
            the kicking leg only and the walker (zero command) keeps the support leg.
    """

    clip: str
    window: tuple[float, float] | None = None
    trigger: float = 0.5
    mirror: bool = False
    ramp_in: float = 0.1
    ramp_out: float = 0.2
    support: str = "clip"

    def __post_init__(self) -> None:
        if self.support not in SUPPORTS:
            raise UserError(f"unknown kick support '{self.support}' (choose one of: "
                            f"{', '.join(SUPPORTS)})")
        if self.window is not None:
            start, end = (float(x) for x in self.window)
            if not (np.isfinite(start) and np.isfinite(end) and 0.0 <= start < end):
                raise UserError(f"kick window must be [start, end] seconds with 0 <= start < end, "
                                f"got {list(self.window)}")
            object.__setattr__(self, "window", (start, end))
        if not -1.0 <= self.trigger < 1.0:
            raise UserError(f"kick trigger must be in [-1, 1) (actions are clipped to [-1, 1]), "
                            f"got {self.trigger}")
        for name in ("ramp_in", "ramp_out"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise UserError(f"kick {name} must be a number of seconds >= 0, got {value}")


def read_clip_arrays(path: str | Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """``keys`` of a mocap clip ``.npz`` as float64 arrays (never unpickles; the clips also hold
    object arrays, which are not read); ``what`` names the file in the one-line errors."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise UserError(f"{path} is not a mocap clip: missing {missing}")
            return {k: np.asarray(data[k], dtype=np.float64) for k in keys}
    except UserError:
        raise
    except (ValueError, OSError) as exc:
        raise UserError(f"cannot read {what} {path}: {str(exc).splitlines()[0]}") from None


def read_clip_joints(path: str | Path) -> tuple[np.ndarray, float]:
    """A mocap clip's joint positions (T, 12) and frequency (never unpickles)."""
    arrays = read_clip_arrays(path, ("qpos", "frequency"), "kick clip")
    qpos, freq = arrays["qpos"], float(arrays["frequency"])
    if qpos.ndim != 2 or qpos.shape[1] != 7 + NUM_JOINTS or len(qpos) < 2:
        raise UserError(f"kick clip {path}: expected qpos (T, 19) with T >= 2, got {qpos.shape}")
    if not (np.isfinite(freq) and freq > 0) or not np.all(np.isfinite(qpos[:, 7:])):
        raise UserError(f"kick clip {path}: bad frequency or non-finite joint positions")
    return qpos[:, 7:], freq


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Joint positions (..., 12) with the legs swapped (roll and yaw negated)."""
    return joints[..., _MIRROR_ORDER] * _MIRROR_SIGN


def resample(joints: np.ndarray, frequency: float, start: float, end: float, dt: float
             ) -> np.ndarray:
    """Joint positions at ``start, start + dt, ...`` up to ``end`` (inclusive where it falls on
    the grid), linearly interpolated between the clip's frames (``frequency`` Hz)."""
    times = start + dt * np.arange(int(np.floor((end - start) / dt + 1e-9)) + 1)
    frames = np.arange(len(joints)) / frequency
    return np.stack([np.interp(times, frames, joints[:, j]) for j in range(joints.shape[1])],
                    axis=1)


def extract_kick(joints: np.ndarray, frequency: float, window: tuple[float, float], dt: float,
                 mirror: bool = False, source: str = "kick clip") -> np.ndarray:
    """The clip's joint trajectory (L, 12) over ``window`` seconds at one target per ``dt``."""
    start, end = window
    length = (len(joints) - 1) / frequency
    if end > length + 1e-9:
        raise UserError(f"{source}: kick window [{start}, {end}] s ends after the clip "
                        f"({length:.3f} s long)")
    traj = resample(joints, frequency, start, end, dt)
    return mirror_joints(traj) if mirror else traj


def kick_targets(clip: np.ndarray, q0: np.ndarray, default_q: np.ndarray, ramp_in: int,
                 ramp_out: int, decimation: int) -> np.ndarray:
    """Joint targets (K * decimation, 12) of one kick from joints ``q0`` (module docstring)."""
    clip = np.asarray(clip, dtype=np.float64)
    steps = np.arange(len(clip))
    w = np.clip(steps / ramp_in, 0.0, 1.0)[:, None] if ramp_in > 0 else np.ones((len(clip), 1))
    played = (1.0 - w) * np.asarray(q0, dtype=np.float64) + w * clip
    parts = [played]
    if ramp_out > 0:
        v = (np.arange(ramp_out)[:, None] + 1.0) / ramp_out
        parts.append((1.0 - v) * clip[-1] + v * default_q)
    total = len(played) + ramp_out
    pad = -total % decimation
    parts.append(np.tile(default_q, (pad, 1)))
    return np.concatenate(parts)


@dataclass(frozen=True)
class KickClip:
    """A kick ready to play: the clip's targets at the env rate and the playback constants."""

    name: str
    joints: np.ndarray  # (L, 12) clip joint positions, one row per env step
    ramp_in: int  # env steps
    ramp_out: int  # env steps
    trigger: float
    decimation: int
    support: str = "clip"

    @property
    def kicking_leg(self) -> int:
        """0 (left) or 1 (right): the leg whose hip pitch swings forward fastest."""
        swing = np.diff(self.joints[:, [0, 6]], axis=0).min(axis=0) if len(self.joints) > 1 \
            else np.zeros(2)
        return int(np.argmin(swing))

    @property
    def steps(self) -> int:
        """Env steps of one kick (a multiple of ``decimation``)."""
        total = len(self.joints) + self.ramp_out
        return total + (-total % self.decimation)

    @property
    def decisions(self) -> int:
        """K: walker decisions one kick lasts."""
        return self.steps // self.decimation


def load_kick(spec: KickSpec, dt: float, decimation: int) -> KickClip:
    """Read and cut ``spec``'s clip for playback at one target per ``dt`` seconds."""
    joints, freq = read_clip_joints(spec.clip)
    name = Path(spec.clip).stem
    window = spec.window
    if window is None:
        if name not in KICK_WINDOWS:
            raise UserError(f"kick clip '{name}' has no default window: give env.kick.window "
                            f"[start, end] in seconds (defaults exist for "
                            f"{', '.join(KICK_WINDOWS)})")
        window = KICK_WINDOWS[name]
    traj = extract_kick(joints, freq, window, dt, spec.mirror, source=f"kick clip {spec.clip}")
    return KickClip(name, traj, int(round(spec.ramp_in / dt)), int(round(spec.ramp_out / dt)),
                    float(spec.trigger), int(decimation), spec.support)


class KickMacro:
    """Per-env kick playback for N envs: ``start`` kicks, ``targets`` once per env step."""

    def __init__(self, kick: KickClip, default_q: np.ndarray, num_envs: int) -> None:
        self.kick = kick
        self.default_q = np.asarray(default_q, dtype=np.float64)
        self.n = int(num_envs)
        self.plan = np.zeros((self.n, kick.steps, NUM_JOINTS))
        self.pos = np.full(self.n, -1, dtype=np.int64)  # next env step of the kick; -1: idle
        #: (12,) bool: the joints the kick drives (the rest stay with the walker).
        self.joint_mask = np.ones(NUM_JOINTS, dtype=bool)
        if kick.support == "walker":
            self.joint_mask[:] = False
            self.joint_mask[6 * kick.kicking_leg:6 * kick.kicking_leg + 6] = True

    @property
    def active(self) -> np.ndarray:
        """(N,) bool: a kick is playing."""
        return self.pos >= 0

    def triggered(self, actions: np.ndarray) -> np.ndarray:
        """(N,) bool: idle envs whose 4th action exceeds the trigger."""
        return ~self.active & (np.asarray(actions)[:, 3] > self.kick.trigger)

    def start(self, mask: np.ndarray, q: np.ndarray) -> None:
        """Start a kick in the envs ``mask`` from joint positions ``q`` (N, 12)."""
        k = self.kick
        for i in np.flatnonzero(mask):
            self.plan[i] = kick_targets(k.joints, q[i], self.default_q, k.ramp_in, k.ramp_out,
                                        k.decimation)
            self.pos[i] = 0

    def targets(self) -> tuple[np.ndarray, np.ndarray]:
        """This env step's targets (N, 12) (rows of idle envs: ``default_q``) and (N,) bool:
        the kick ended with this step. Advances the playing envs."""
        rows = np.flatnonzero(self.active)
        out = np.tile(self.default_q, (self.n, 1))
        out[rows] = self.plan[rows, self.pos[rows]]
        self.pos[rows] += 1
        done = rows[self.pos[rows] >= self.kick.steps]
        self.pos[done] = -1
        finished = np.zeros(self.n, dtype=bool)
        finished[done] = True
        return out, finished

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Stop the kicks of the envs in ``mask`` (all when None)."""
        mask = np.ones(self.n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.pos[mask] = -1
