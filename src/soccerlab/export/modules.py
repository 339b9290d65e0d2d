"""The exported models: TorchScript modules that map the preprocessor's (N, 89) batch to torques.

Both reproduce what soccerlab's evaluation computes, operation for operation, so that the SAI
benchmark scores them as ``soccerlab eval`` does:

- observation normalisation as ``VecNormalize.normalize_obs`` (float64, clip, float32);
- the SB3 policy's deterministic action (``policy._predict(obs, deterministic=True)``, traced),
  clipped to the action space or unscaled for squashing policies, as ``policy.predict`` does;
- every policy forward pass on a batch padded with zero rows to a multiple of
  ``POLICY_BATCH_MULTIPLE`` (``soccerlab.batching``), so a row's result does not depend on the
  batch size.

``TorqueController`` (torque control) outputs the policy's action in [-1, 1]; the exported
``action_function.py`` maps it onto the torque bounds as the training env did.

``WalkerController`` (walker control) holds the command policy, the joystick walker and its PD
loop, called once per env step (500 Hz). Per batch row it keeps the tick counter, the gait
phase, the walker's previous actions, the held joint targets and the held command; every
``decimation`` ticks it runs the command policy and the walker, at every tick the PD loop, and it
outputs torques in N·m (the exported ``action_function.py`` passes them through unchanged).

**New episodes.** A row's state restarts when (a) the row's 12 joint velocities
(``obs[:, 12:24]``) are all exactly zero, which is how every sai-mujoco soccer env starts an
episode (the robot is placed at rest) and which no physics step leaves behind (gravity acts
from the first step), or (b) the batch size changes (a new batch of envs). The SAI benchmark
resets all envs of a batch together, so both signs agree there; a loop that resets single rows
is covered by (a).

**Time feature.** A run trained with ``env.time_feature`` sees a 90th observation value, the
env steps its episode has run over the time limit. Both controllers then count env steps per
row (the calls since the row's episode started) and append ``steps / time_limit``, computed as
the training env computes it (float64 division, then float32), to the 89 values they get.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from soccerlab.batching import POLICY_BATCH_MULTIPLE


def _pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``x`` with zero rows appended up to a multiple of ``multiple`` rows (branch-free, so
    tracing for ONNX keeps it general)."""
    pad = (multiple - x.shape[0] % multiple) % multiple
    return torch.cat([x, x.new_zeros((pad, x.shape[1]))], dim=0)


class DeterministicActor(nn.Module):
    """Float32 observations (N, obs) -> the action SB3's ``predict`` returns.

    ``hidden`` (tasks, obs) marks with 1 the observation columns that each task's rows see as
    zeros (``env.hide``), the task read from the one-hot at ``onehot``; applied here, not in
    the preprocessor, because the controllers read the joints, gravity and gyro of the full
    observation (the walker, and the new-episode sign)."""

    def __init__(self, actor: torch.jit.ScriptModule, mean: torch.Tensor, var: torch.Tensor,
                 epsilon: float, clip_obs: float, normalize: bool, low: torch.Tensor,
                 high: torch.Tensor, squash: bool, multiple: int = POLICY_BATCH_MULTIPLE,
                 hidden: torch.Tensor | None = None, onehot: int = 86):
        super().__init__()
        self.actor = actor
        self.register_buffer("hidden", (hidden if hidden is not None
                                        else torch.zeros(0, mean.shape[0])).to(torch.float32))
        self.onehot = int(onehot)
        self.register_buffer("mean", mean.to(torch.float64))
        self.register_buffer("var", var.to(torch.float64))
        self.register_buffer("low", low.to(torch.float32))
        self.register_buffer("high", high.to(torch.float32))
        self.epsilon = float(epsilon)
        self.clip_obs = float(clip_obs)
        self.normalize = bool(normalize)
        self.squash = bool(squash)
        self.multiple = int(multiple)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        tasks = self.hidden.shape[0]
        if tasks > 0:  # as Preprocessor.apply_hide: the rows whose one-hot slot is > 0.5
            rows_task = (obs[:, self.onehot:self.onehot + tasks] > 0.5).to(torch.float32)
            obs = torch.where(rows_task @ self.hidden > 0.5, torch.zeros_like(obs), obs)
        x = obs
        if self.normalize:
            x64 = (obs.to(torch.float64) - self.mean) / torch.sqrt(self.var + self.epsilon)
            x = torch.clamp(x64, -self.clip_obs, self.clip_obs).to(torch.float32)
        rows = x.shape[0]
        out = self.actor(_pad(x.to(torch.float32), self.multiple))[:rows]
        if self.squash:
            return self.low + (0.5 * (out + 1.0) * (self.high - self.low))
        return torch.maximum(torch.minimum(out, self.high), self.low)


def _with_time(obs: torch.Tensor, steps: torch.Tensor, time_limit: int) -> torch.Tensor:
    """``obs`` (N, 89) with the time feature ``steps / time_limit`` (N,) appended."""
    frac = (steps.to(torch.float64) / float(time_limit)).to(torch.float32)
    return torch.cat([obs, frac.unsqueeze(1)], dim=1)


class TorqueController(nn.Module):
    """Torque control: (N, 89) -> the policy's action (N, 12) in [-1, 1]. With a time feature
    (``time_limit`` > 0) it counts calls per row, restarting with each episode (see above)."""

    def __init__(self, actor: DeterministicActor, time_limit: int = 0):
        super().__init__()
        self.actor = actor
        self.time_limit = int(time_limit)
        self.register_buffer("counter", torch.zeros(0, dtype=torch.int64))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            obs = obs.to(torch.float32)
            if self.time_limit <= 0:
                return self.actor(obs)
            fresh = torch.all(obs[:, 12:24] == 0.0, dim=1)
            if self.counter.shape[0] != obs.shape[0]:
                self.counter = torch.zeros(obs.shape[0], dtype=torch.int64)
            self.counter = torch.where(fresh, torch.zeros_like(self.counter), self.counter)
            action = self.actor(_with_time(obs, self.counter, self.time_limit))
            self.counter = self.counter + 1
            return action


class WalkerController(nn.Module):
    """Walker control: (N, 89) -> torques (N, 12) in N·m, one call per env step (see above)."""

    def __init__(self, actor: DeterministicActor, walker: torch.jit.ScriptModule, config,
                 multiple: int = POLICY_BATCH_MULTIPLE, time_limit: int = 0):
        super().__init__()
        self.actor = actor
        self.time_limit = int(time_limit)
        self.walker = walker
        for p in walker.parameters():  # SAI calls the model without no_grad: keep state out of
            p.requires_grad_(False)    # autograd, or its graph would grow with every call
        f64 = torch.float64
        self.register_buffer("default_q", torch.as_tensor(config.default_q, dtype=f64))
        self.register_buffer("kp", torch.as_tensor(config.kp, dtype=f64))
        self.register_buffer("kd", torch.as_tensor(config.kd, dtype=f64))
        self.register_buffer("torque_limits", torch.as_tensor(config.torque_limits, dtype=f64))
        self.register_buffer("ranges", torch.as_tensor(config.command_ranges, dtype=f64))
        self.action_scale = float(config.action_scale)
        self.clip_actions = float(config.clip_actions)
        self.decimation = int(config.decimation)
        self.phase_step = float(config.dt * config.gait_frequency)
        self.two_pi = float(2.0 * math.pi)
        self.norm_gravity = float(config.norm_gravity)
        self.norm_ang_vel = float(config.norm_ang_vel)
        self.norm_lin_vel = float(config.norm_lin_vel)
        self.norm_dof_pos = float(config.norm_dof_pos)
        self.norm_dof_vel = float(config.norm_dof_vel)
        self.multiple = int(multiple)
        # per-row state (resized on the first call)
        self.register_buffer("counter", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("phase", torch.zeros(0, dtype=f64))
        self.register_buffer("actions", torch.zeros(0, 12, dtype=f64))
        self.register_buffer("targets", torch.zeros(0, 12, dtype=f64))
        self.register_buffer("command", torch.zeros(0, 3, dtype=f64))

    def _restart(self, rows: torch.Tensor) -> None:
        n = rows.shape[0]
        if self.counter.shape[0] != n:
            f64 = torch.float64
            self.counter = torch.zeros(n, dtype=torch.int64)
            self.phase = torch.zeros(n, dtype=f64)
            self.actions = torch.zeros(n, 12, dtype=f64)
            self.targets = self.default_q.repeat(n, 1)
            self.command = torch.zeros(n, 3, dtype=f64)
            return
        self.counter = torch.where(rows, torch.zeros_like(self.counter), self.counter)
        self.phase = torch.where(rows, torch.zeros_like(self.phase), self.phase)
        keep = rows.unsqueeze(1)
        self.actions = torch.where(keep, torch.zeros_like(self.actions), self.actions)
        self.targets = torch.where(keep, self.default_q.expand_as(self.targets), self.targets)
        self.command = torch.where(keep, torch.zeros_like(self.command), self.command)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # SAI calls the model without it
            return self._step(obs.to(torch.float32))

    def _step(self, obs: torch.Tensor) -> torch.Tensor:
        self._restart(torch.all(obs[:, 12:24] == 0.0, dim=1))
        q = obs[:, 0:12].to(torch.float64)
        dq = obs[:, 12:24].to(torch.float64)
        due = torch.nonzero(torch.remainder(self.counter, self.decimation) == 0).flatten()
        if due.shape[0] > 0:
            self._decide(obs, due, q, dq)
        torque = self.kp * (self.targets - q) - self.kd * dq
        torque = torch.maximum(torch.minimum(torque, self.torque_limits), -self.torque_limits)
        moving = torch.any(self.command != 0.0, dim=1)
        self.counter = self.counter + 1
        self.phase = torch.where(moving, torch.remainder(self.phase + self.phase_step, 1.0),
                                 self.phase)
        return torque.to(torch.float32)

    def _decide(self, obs: torch.Tensor, due: torch.Tensor, q: torch.Tensor,
                dq: torch.Tensor) -> None:
        sub = obs.index_select(0, due)
        if self.time_limit > 0:
            action = self.actor(_with_time(sub, self.counter.index_select(0, due),
                                           self.time_limit)).to(torch.float64)
        else:
            action = self.actor(sub).to(torch.float64)
        a = torch.clamp(action, -1.0, 1.0)
        command = torch.where(a >= 0, a * self.ranges[:, 1], -a * self.ranges[:, 0])
        self.command = self.command.index_copy(0, due, command)
        gravity = (sub[:, 24:27] * self.norm_gravity).to(torch.float64)
        gyro = sub[:, 27:30].to(torch.float64) * self.norm_ang_vel
        phase = self.phase.index_select(0, due)
        moving = torch.any(command != 0.0, dim=1, keepdim=True).to(torch.float64)
        angle = self.two_pi * phase.unsqueeze(1)
        clock = torch.cat([torch.cos(angle), torch.sin(angle)], dim=1) * moving
        walker_obs = torch.cat([
            gravity,
            gyro,
            command[:, 0:2] * self.norm_lin_vel,
            command[:, 2:3] * self.norm_ang_vel,
            clock,
            (q.index_select(0, due) - self.default_q) * self.norm_dof_pos,
            dq.index_select(0, due) * self.norm_dof_vel,
            self.actions.index_select(0, due),
        ], dim=1).to(torch.float32)
        rows = walker_obs.shape[0]
        out = self.walker(_pad(walker_obs, self.multiple))[:rows].to(torch.float64)
        actions = torch.clamp(out, -self.clip_actions, self.clip_actions)
        self.actions = self.actions.index_copy(0, due, actions)
        self.targets = self.targets.index_copy(0, due, self.default_q + self.action_scale * actions)
