"""``FastSoccerSim``: N instances of one showdown task, stepped and scored as arrays."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import mujoco
import numpy as np

from soccerlab.envs.soccer.backends.base import StepArrays, per_row_seeds, registered_time_limit
from soccerlab.envs.soccer.backends.fast.compute import Episodes, Kernels, extra_columns
from soccerlab.envs.soccer.backends.fast.layout import (
    calibrate_rot_order,
    check_velocity_structure,
    resolve_layout,
)
from soccerlab.envs.soccer.backends.fast.physics import BatchPhysics
from soccerlab.envs.soccer.backends.fast.resets import SaiResetter
from soccerlab.envs.soccer.backends.fast.tasks import FastTask, get_fast_task
from soccerlab.errors import UserError

KEEPER_FREQ = 0.3  # GoaliePenaltyKick_v0.move_goalkeeper default


def keeper_schedule(lay, timestep: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """GoaliePenaltyKick_v0.move_goalkeeper before env step k, for k = 0..steps-1.

    sai evaluates it at ``data.time``, which MuJoCo advances by ``timestep`` per step from 0;
    the scalar expressions below are sai's, so the table is bit-identical.
    """
    amp = lay.goal_width - 0.6
    freq = KEEPER_FREQ
    pos, vel = np.empty(steps), np.empty(steps)
    t = 0.0
    for k in range(steps):
        pos[k] = amp * np.sin(2 * np.pi * freq * t)
        vel[k] = 2 * np.pi * freq * amp * np.cos(2 * np.pi * freq * t)
        t += timestep
    return pos, vel


class FastSoccerSim:
    """N instances of one showdown task in one process, bit-identical to sai-mujoco 0.1.30.

    Args:
        task: env id (``LowerT1GoaliePenaltyKick-v0``...) or short name (``goalie_penalty_kick``).
        n_envs: number of instances.
        seed: if given, a slot's first reset without an explicit seed uses ``seed + slot``.
        max_episode_steps: TimeLimit; default: the registered one.
        n_threads: physics threads. Default: up to ``os.cpu_count()``, and each step uses
            either all of them or one, whichever has been faster lately (adaptive); an
            explicit number is used as given.
        reset_mode: ``"replay"`` (sai's random draws replayed on a captured start state) or
            ``"sai"`` (a real sai-mujoco reset per episode, ~50x slower); see ``resets``.
        env_kwargs: ``gym.make`` kwargs; any is refused with ``UserError`` (not replicated).

    Slot i reset with seed s behaves exactly like ``gym.make(id).reset(seed=s)``; later resets
    without a seed continue that slot's RNG stream. ``step(torques)`` applies (N, 12) joint
    torques (clipped like sai) for one physics step and returns ``StepArrays``. No auto-reset:
    call ``reset(indices)`` for finished slots. Implements ``backends.base.TaskPhysics``.
    """

    def __init__(self, task: str, n_envs: int, seed: int | None = None, *,
                 max_episode_steps: int | None = None, n_threads: int | None = None,
                 reset_mode: str = "replay", env_kwargs: dict | None = None) -> None:
        self.task: FastTask = get_fast_task(task)
        if env_kwargs:
            raise UserError(f"the fast soccer backend replicates {self.task.env_id} with its "
                            f"registered kwargs only; got {sorted(env_kwargs)} (use the "
                            "sai-mujoco backend for other options)")
        if int(n_envs) < 1:
            raise UserError(f"n_envs must be at least 1, got {n_envs}")
        self.n = int(n_envs)
        self.seed = seed
        self._resetter = SaiResetter(self.task, self.n, reset_mode)
        registered = registered_time_limit(self.task.env_id)
        self.max_episode_steps = int(registered if max_episode_steps is None
                                     else max_episode_steps)
        if self.max_episode_steps < 1:
            raise UserError(f"max_episode_steps must be positive, got {max_episode_steps}")
        u = self._resetter.u
        self.observation_space = self._resetter.env.observation_space
        self.action_space = self._resetter.env.action_space
        self.lay = lay = resolve_layout(u, self.task)
        self.min_height = lay.min_height  # sai's has_robot_fallen threshold
        self._resetter.bind(lay)
        model: mujoco.MjModel = copy.copy(u.sim.model._model)
        self.timestep = float(model.opt.timestep)
        threads = n_threads or min(self.n, os.cpu_count() or 1)
        adaptive = n_threads is None
        n_extra = sum(w for _, w in extra_columns(self.task).values())
        self.physics = phys = BatchPhysics(
            model, self.n, lay, threads,
            geom_ids=lay.defender_geoms if self.task.defenders else None, n_extra=n_extra,
            adaptive=adaptive)
        check_velocity_structure(u.sim.model._model, u.sim.data._data, lay)

        goal_site = "goalarea_site" if self.task.defenders else "goal_post_south"
        goal_xpos = u.sim.data.get_site_xpos(goal_site).copy()
        normal = -np.array([u.velocity_toward_goal(e, goal_xpos) for e in np.eye(3)]) \
            if self.task.penalty else np.zeros(3)
        self.kernels = Kernels(self.task, lay, phys.F, phys.col, phys.extra,
                               dict(u.reward_config), normal,
                               u.sim.data.get_site_xpos("goal_post_south").copy(),
                               calibrate_rot_order(lay.nv, [lay.robot_dof, lay.ball_dof]))
        self.ep = Episodes(self.n)
        self.truncated = np.zeros(self.n, dtype=bool)
        if self.task.keeper:
            self._keeper_pos, self._keeper_vel = keeper_schedule(
                lay, self.timestep, self.max_episode_steps + 1)
        self._identity_ctrl = bool(
            np.all(lay.ctrl_in_mid == 0) and np.all(lay.ctrl_scale == 1)
            and np.all(lay.ctrl_out_mid == 0)
            and all(np.array_equal(lo, lay.ctrl_in_lo) and np.array_equal(hi, lay.ctrl_in_hi)
                    for lo, hi in ((lay.ctrl_tq_lo, lay.ctrl_tq_hi), (lay.ctrl_lo, lay.ctrl_hi))))
        self._started = False
        self._fresh = np.ones(self.n, dtype=bool)  # never reset yet
        self._geom_keys: dict[bytes, int] = {}
        self.arrays = StepArrays(self.kernels.obs, self.kernels.reward, self.kernels.terminated,
                                 self.truncated, self.kernels.terms, self.kernels.info)

    # ------------------------------------------------------------------------------- resets
    def reset(self, indices: Sequence[int] | np.ndarray | None = None,
              seeds: int | Sequence[int | None] | None = None
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Start new episodes in slots ``indices`` (default: all).

        ``seeds``: None (continue each slot's stream), an int s (slot i gets s + i, as SB3's
        ``VecEnv.seed``), or one seed-or-None per index. A slot's first reset without a seed
        uses the constructor's ``seed + slot`` if one was given (else a random stream).
        Returns the full ``(obs, info)`` buffers; only the listed rows changed.
        """
        idx = np.arange(self.n) if indices is None else np.asarray(indices, dtype=np.intp)
        per_slot = per_row_seeds(idx, seeds)
        if self.seed is not None:
            per_slot = [int(self.seed) + int(i) if s is None and self._fresh[i] else s
                        for i, s in zip(idx, per_slot, strict=True)]
        self._fresh[idx] = False
        self._started = True
        lay, ep, phys = self.lay, self.ep, self.physics
        for i, s in zip(idx, per_slot, strict=True):
            start = self._resetter.reset(int(i), s)
            key = 0
            if start.geom_pos is not None:
                key = self._geom_keys.setdefault(start.geom_pos.tobytes(), len(self._geom_keys))
            d = phys.set_state(int(i), start.state, start.geom_pos, key, lay.target_site,
                               start.site_pos)
            self.kernels.set_episode(
                int(i),
                d.site_xpos[lay.target_site] if lay.target_site is not None else np.zeros(3),
                d.geom_xpos[lay.defender_geoms].ravel() if self.task.defenders else np.zeros(9))
            ep.goal_pos[i] = start.goal_pos
        ep.steps[idx] = 0
        ep.ball_hits[idx] = 0
        ep.contact_active[idx] = False
        self.truncated[idx] = False
        self.kernels.terminated[idx] = False
        self.kernels.reset_rows(idx)
        self.kernels.observe(ep)
        return self.kernels.obs, self.kernels.info

    # -------------------------------------------------------------------------------- steps
    def set_torques(self, torques: np.ndarray) -> None:
        """Write (N, 12) torques into the controls, clipped exactly like sai-mujoco.

        sai: ``clip(clip((clip(a, in) - in_mid) * scale + out_mid, torque_limits), ctrlrange)``
        (``np.clip`` is ``minimum(maximum(.))`` here, NaN passes through both). With the
        LowerT1 constants (identity scaling, equal bounds) that is one clip plus ``+ 0.0``,
        which turns -0.0 into +0.0 exactly as ``(x - 0.0) * 1.0 + 0.0`` does.
        """
        a = np.asarray(torques, dtype=np.float64)
        out = self.physics.ctrl
        if a.shape != out.shape:
            raise ValueError(f"torques must have shape {out.shape}, got {a.shape}")
        lay = self.lay
        np.maximum(a, lay.ctrl_in_lo, out=out)
        np.minimum(out, lay.ctrl_in_hi, out=out)
        if self._identity_ctrl:
            np.add(out, 0.0, out=out)
            return
        np.subtract(out, lay.ctrl_in_mid, out=out)
        np.multiply(out, lay.ctrl_scale, out=out)
        np.add(out, lay.ctrl_out_mid, out=out)
        for lo, hi in ((lay.ctrl_tq_lo, lay.ctrl_tq_hi), (lay.ctrl_lo, lay.ctrl_hi)):
            np.maximum(out, lo, out=out)
            np.minimum(out, hi, out=out)

    def step(self, torques: np.ndarray) -> StepArrays:
        """One env step (= one physics step) of every slot. Slots are not auto-reset."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        self.set_torques(torques)
        ep, phys = self.ep, self.physics
        if self.task.keeper:
            if ep.steps.max() >= len(self._keeper_pos):  # stepping past the TimeLimit
                self._keeper_pos, self._keeper_vel = keeper_schedule(
                    self.lay, self.timestep, 2 * int(ep.steps.max()) + 1)
            phys.keeper_qpos[:] = self._keeper_pos[ep.steps][:, None]
            phys.keeper_qvel[:] = self._keeper_vel[ep.steps][:, None]
        phys.step()
        ep.steps += 1
        self.kernels.observe(ep)
        self.kernels.score(phys.contact_flags(), ep)
        np.greater_equal(ep.steps, self.max_episode_steps, out=self.truncated)
        return self.arrays

    # --------------------------------------------------------------- walker-facing state
    @property
    def joint_pos(self) -> np.ndarray:
        """(N, 12) joint positions as in the observation (float32 view)."""
        return self.kernels.obs[:, 0:12]

    @property
    def joint_vel(self) -> np.ndarray:
        """(N, 12) joint velocities as in the observation (float32 view)."""
        return self.kernels.obs[:, 12:24]

    @property
    def robot_quat(self) -> np.ndarray:
        """(N, 4) IMU orientation, x y z w, float32 (info ``robot_quat``)."""
        return self.kernels.info["robot_quat"]

    @property
    def robot_gyro(self) -> np.ndarray:
        """(N, 3) IMU angular velocity, float32 (info ``robot_gyro``)."""
        return self.kernels.info["robot_gyro"]

    @property
    def robot_height(self) -> np.ndarray:
        """(N,) IMU site height after the last step or reset (sai's ``has_robot_fallen`` input:
        fallen is ``not lay.min_height < height``)."""
        k = self.kernels
        return k.F[:, k._robot_cols.start + 2]

    @property
    def episode_steps(self) -> np.ndarray:
        """(N,) env steps since each slot's reset."""
        return self.ep.steps

    @property
    def np_random(self) -> list[np.random.Generator | None]:
        """Each slot's RNG stream (the generator sai-mujoco's reset draws from)."""
        return self._resetter.rngs

    def close(self) -> None:
        """Stop physics threads and close the private sai env."""
        self.physics.close()
        self._resetter.close()
