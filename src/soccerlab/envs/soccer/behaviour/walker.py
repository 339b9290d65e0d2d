"""Joystick walker: a pretrained TorchScript policy that turns (vx, vy, yaw rate) into torques.

Hierarchical control for the T1: the walker policy (47 inputs -> 12 joint-target offsets) runs
at 50 Hz (every ``decimation`` = 10 env steps); a PD loop turns its joint targets into torques at
every env step (500 Hz), clipped to the torque bounds. Batched over N envs: state arrays have a
leading N, one policy forward pass serves all envs due at a step, and ``reset(mask)`` restarts
the chosen envs' state (previous actions, gait phase, decimation counter).

Policy inputs, in order: projected gravity (3) * norm.gravity, gyro (3) * norm.ang_vel,
command vx, vy (2) * norm.lin_vel, yaw rate (1) * norm.ang_vel, cos and sin of 2*pi*phase (2;
zero when the command is zero), (q - default_q) (12) * norm.dof_pos, q_dot (12) * norm.dof_vel,
previous actions (12). Outputs are clipped to +-clip_actions; joint targets are
default_q + action_scale * actions. The gait phase advances by dt * gait_frequency per env step
while the command is non-zero (the walker stands still with a frozen phase at zero command),
and wraps at 1. All constants come from the walker's YAML (see :meth:`WalkerConfig.from_yaml`).

Batch invariance: an env's walker actions do not depend on how many envs share the forward
pass. PyTorch's CPU kernels are not batch-invariant by themselves (measured, torch 2.13 with
MKL: a linear layer takes another GEMM path below 4 rows, and vectorised activations such as
ELU compute the elements that do not fill a SIMD register in scalar code, with other
roundings), so every forward pass runs on a batch padded with zero rows to a multiple of
``POLICY_BATCH_MULTIPLE`` rows (``soccerlab.batching``). One env and N batched envs then compute
bit-identical actions (an env's walker actions do not depend on how many envs it runs with);
``batch_invariant`` checks a policy for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from soccerlab.batching import pad_rows
from soccerlab.envs.soccer.behaviour.observation import projected_gravity
from soccerlab.envs.soccer.behaviour.robot import ENV_DT, JOINT_NAMES, NUM_JOINTS, TORQUE_LIMITS
from soccerlab.errors import UserError

WALKER_OBS_SIZE = 47

#: A batch policy: float32 tensor (N, 47) -> tensor (N, 12). TorchScript modules qualify.
Policy = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class WalkerConfig:
    """Constants of a joystick walker (arrays are per joint, in the env's action order).

    ``command_ranges`` is (3, 2): (low, high) of vx [m/s], vy [m/s] and yaw rate [rad/s];
    a normalised command in [-1, 1] maps 0 -> 0, +1 -> high, -1 -> low (see ``scale_command``).
    """

    default_q: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    torque_limits: np.ndarray
    action_scale: float
    clip_actions: float
    decimation: int
    dt: float
    gait_frequency: float
    norm_gravity: float
    norm_ang_vel: float
    norm_lin_vel: float
    norm_dof_pos: float
    norm_dof_vel: float
    command_ranges: np.ndarray

    @classmethod
    def from_dict(
        cls,
        cfg: Mapping[str, Any],
        joint_names: Sequence[str] = JOINT_NAMES,
        torque_limits: np.ndarray = TORQUE_LIMITS,
        source: str = "walker config",
    ) -> WalkerConfig:
        """Build from a booster_gym-style config (keys ``init_state``, ``control``,
        ``normalization``, ``commands``, optional ``sim.dt``).

        Per-joint values are matched by name: the most specific key contained in the joint
        name wins (``Hip_Pitch`` before ``Hip``); ``default`` covers joints no key matches.
        Missing keys raise UserError naming the key and ``source``.
        """

        def get(*path: str) -> Any:
            node: Any = cfg
            for key in path:
                if not isinstance(node, Mapping) or key not in node:
                    raise UserError(f"{source}: missing key '{'.'.join(path)}'")
                node = node[key]
            return node

        def per_joint(table: Mapping[str, Any], what: str) -> np.ndarray:
            values = []
            for joint in joint_names:
                keys = [k for k in table if k != "default" and k in joint]
                if keys:
                    values.append(float(table[max(keys, key=len)]))
                elif "default" in table:
                    values.append(float(table["default"]))
                else:
                    raise UserError(f"{source}: no {what} for joint '{joint}'")
            return np.array(values, dtype=np.float64)

        sim = cfg.get("sim") if isinstance(cfg.get("sim"), Mapping) else {}
        ranges = np.array(
            [get("commands", k) for k in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw")],
            dtype=np.float64,
        )
        return cls(
            default_q=per_joint(get("init_state", "default_joint_angles"), "default angle"),
            kp=per_joint(get("control", "stiffness"), "stiffness"),
            kd=per_joint(get("control", "damping"), "damping"),
            torque_limits=np.asarray(torque_limits, dtype=np.float64),
            action_scale=float(get("control", "action_scale")),
            clip_actions=float(get("normalization", "clip_actions")),
            decimation=int(get("control", "decimation")),
            dt=float(sim.get("dt", ENV_DT)),
            gait_frequency=float(np.mean(get("commands", "gait_frequency"))),
            norm_gravity=float(get("normalization", "gravity")),
            norm_ang_vel=float(get("normalization", "ang_vel")),
            norm_lin_vel=float(get("normalization", "lin_vel")),
            norm_dof_pos=float(get("normalization", "dof_pos")),
            norm_dof_vel=float(get("normalization", "dof_vel")),
            command_ranges=ranges.reshape(3, 2),
        )

    @classmethod
    def from_yaml(cls, path: str | Path, **kwargs: Any) -> WalkerConfig:
        """Read a walker YAML (``yaml.safe_load``) and build the config from it."""
        path = Path(path)
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise UserError(f"can't read walker config {path}: {err.strerror or err}") from err
        except yaml.YAMLError as err:
            raise UserError(f"walker config {path} is not valid YAML: {err}") from err
        if not isinstance(cfg, Mapping):
            raise UserError(f"walker config {path} is not a mapping")
        return cls.from_dict(cfg, source=str(path), **kwargs)


def scale_command(action: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Normalised command(s) in [-1, 1] (..., 3) -> physical (vx, vy, yaw rate).

    Piecewise linear per axis: 0 -> 0, +1 -> high, -1 -> low, so a zero action always means
    "stand still" even for asymmetric ranges. Inputs are clipped to [-1, 1].
    """
    a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    ranges = np.asarray(ranges, dtype=np.float64)
    return np.where(a >= 0, a * ranges[:, 1], -a * ranges[:, 0])


def command_to_action(command: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Inverse of ``scale_command``: physical command (..., 3) -> normalised action in [-1, 1]."""
    c = np.asarray(command, dtype=np.float64)
    ranges = np.asarray(ranges, dtype=np.float64)
    hi = np.where(ranges[:, 1] > 0, ranges[:, 1], np.inf)
    lo = np.where(ranges[:, 0] < 0, ranges[:, 0], -np.inf)
    return np.clip(np.where(c >= 0, c / hi, -c / lo), -1.0, 1.0)


def walker_observation(
    gravity: np.ndarray,
    gyro: np.ndarray,
    command: np.ndarray,
    phase: np.ndarray,
    q: np.ndarray,
    dq: np.ndarray,
    prev_actions: np.ndarray,
    config: WalkerConfig,
) -> np.ndarray:
    """The walker policy's 47 inputs (N, 47) float32 (layout in the module docstring)."""
    moving = np.any(command != 0.0, axis=1, keepdims=True)
    angle = 2.0 * np.pi * phase[:, None]
    clock = np.concatenate([np.cos(angle), np.sin(angle)], axis=1) * moving
    parts = [
        gravity * config.norm_gravity,
        gyro * config.norm_ang_vel,
        command[:, :2] * config.norm_lin_vel,
        command[:, 2:3] * config.norm_ang_vel,
        clock,
        (q - config.default_q) * config.norm_dof_pos,
        dq * config.norm_dof_vel,
        prev_actions,
    ]
    return np.concatenate(parts, axis=1).astype(np.float32)


def pd_torques(
    targets: np.ndarray, q: np.ndarray, dq: np.ndarray, config: WalkerConfig
) -> np.ndarray:
    """PD torques kp (target - q) - kd q_dot, clipped to the torque bounds (N, 12)."""
    torque = config.kp * (targets - q) - config.kd * dq
    return np.clip(torque, -config.torque_limits, config.torque_limits)


def policy_forward(policy: Policy, obs: np.ndarray) -> np.ndarray:
    """Raw policy outputs (M, 12) float64 for inputs (M, 47) float32, on a padded batch."""
    with torch.inference_mode():
        out = policy(torch.from_numpy(pad_rows(np.ascontiguousarray(obs, dtype=np.float32))))
    return out[: obs.shape[0]].detach().cpu().numpy().astype(np.float64)


def batch_invariant(policy: Policy, rows: int, seed: int = 0) -> bool:
    """Whether each row's output of ``policy_forward`` over ``rows`` random inputs equals the
    output for that row alone (i.e. batched and single-env walkers agree bit for bit)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(0.0, 1.0, (max(1, rows), WALKER_OBS_SIZE)).astype(np.float32)
    batched = policy_forward(policy, obs)
    return all(
        np.array_equal(batched[i : i + 1], policy_forward(policy, obs[i : i + 1]), equal_nan=True)
        for i in range(obs.shape[0])
    )


def advance_phase(phase: np.ndarray, command: np.ndarray, config: WalkerConfig) -> np.ndarray:
    """Gait phase after one env step: + dt * gait_frequency where the command is non-zero, mod 1."""
    moving = np.any(command != 0.0, axis=1)
    return np.where(moving, np.mod(phase + config.dt * config.gait_frequency, 1.0), phase)


class JoystickWalker:
    """Batched joystick walker over N envs; call :meth:`step` once per env step (500 Hz).

    Args:
        policy: TorchScript module (or any callable) mapping a float32 tensor (M, 47) to (M, 12).
        config: The walker's constants.
        num_envs: N.
        per_row: Run one (padded) forward pass per env instead of one for all due envs;
            bit-identical to single-env walkers even for a policy that is not
            ``batch_invariant``, at the cost of a forward pass per env.
    """

    def __init__(
        self, policy: Policy, config: WalkerConfig, num_envs: int = 1, per_row: bool = False
    ):
        self.policy = policy
        self.config = config
        self.num_envs = int(num_envs)
        self.per_row = per_row
        self.counter = np.zeros(self.num_envs, dtype=np.int64)
        self.phase = np.zeros(self.num_envs)
        self.actions = np.zeros((self.num_envs, NUM_JOINTS))
        self.targets = np.tile(config.default_q, (self.num_envs, 1))

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Restart the state of the envs in ``mask`` (bool (N,); all when None)."""
        mask = np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.counter[mask] = 0
        self.phase[mask] = 0.0
        self.actions[mask] = 0.0
        self.targets[mask] = self.config.default_q

    def step(
        self, q: np.ndarray, dq: np.ndarray, quat: np.ndarray, gyro: np.ndarray, command: np.ndarray
    ) -> np.ndarray:
        """Torques (N, 12) for one env step.

        Args:
            q, dq: Joint positions and velocities (N, 12) (the raw observation's first 24).
            quat: Base orientation (N, 4), x, y, z, w (``info["robot_quat"]``).
            gyro: Base angular velocity (N, 3) (``info["robot_gyro"]``).
            command: Physical commands (N, 3): vx, vy [m/s], yaw rate [rad/s].
        """
        n, cfg = self.num_envs, self.config
        q = np.asarray(q, dtype=np.float64).reshape(n, NUM_JOINTS)
        dq = np.asarray(dq, dtype=np.float64).reshape(n, NUM_JOINTS)
        command = np.asarray(command, dtype=np.float64).reshape(n, 3)
        due = np.flatnonzero(self.counter % cfg.decimation == 0)
        if due.size:
            obs = walker_observation(
                np.asarray(projected_gravity(np.asarray(quat).reshape(n, 4)[due])),
                np.asarray(gyro, dtype=np.float64).reshape(n, 3)[due],
                command[due],
                self.phase[due],
                q[due],
                dq[due],
                self.actions[due],
                cfg,
            )
            if self.per_row:
                out = np.concatenate([policy_forward(self.policy, row[None]) for row in obs])
            else:
                out = policy_forward(self.policy, obs)
            actions = np.clip(out, -cfg.clip_actions, cfg.clip_actions)
            self.actions[due] = actions
            self.targets[due] = cfg.default_q + cfg.action_scale * actions
        torques = pd_torques(self.targets, q, dq, cfg)
        self.counter += 1
        self.phase = advance_phase(self.phase, command, cfg)
        return torques.astype(np.float32)
