"""Observations, info, reward terms, reward and termination for N instances at once.

Every formula mirrors sai-mujoco 0.1.30 operation for operation, so results are bit-identical:
the same float64 subtractions, ``float32`` casts where sai casts, norms summed in the order
numpy's ``norm``/``dot`` sum three terms (sequentially), the reward summed sequentially in
float32 as ``np.sum(list, dtype=float32)`` does, and ``jac @ qvel`` reduced to its non-zero
products in the order the BLAS kernel adds them (see ``layout.calibrate_rot_order``).

Most of sai's info vectors are differences ``a - b`` of MjData values. All of them are taken
at once: with the gathered fields in one matrix ``F`` (``physics.BatchPhysics``), two
column gathers and one subtraction give every info vector and the observation's sources.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from soccerlab.envs.soccer.backends.base import (  # noqa: F401 - re-exported
    BOOL_TERMS,
    INFO_FIELD,
    INFO_KEYS,
    INFO_SENSORS,
)
from soccerlab.envs.soccer.backends.fast.layout import BALL_OBSTACLE, BALL_ROBOT, Layout
from soccerlab.envs.soccer.backends.fast.tasks import FastTask

OBSTACLE_GOAL_RADIUS = 0.3  # ObstaclePenaltyKick_v0.ball_inside_goal threshold
TARGET_RADIUS = 0.4  # KickToTarget_v0._is_success threshold

ROT_ORDERS = ((0, 1, 2), (0, 2, 1), (1, 2, 0))  # (a + b) + c, (a + c) + b, (b + c) + a


@dataclass
class Episodes:
    """Per-slot state sai-mujoco keeps in Python attributes between steps."""

    n: int
    steps: np.ndarray = field(init=False)  # env steps since reset (TimeLimit, keeper clock)
    ball_hits: np.ndarray = field(init=False)  # PenaltyKick_v0.ball_hits_by_robot
    contact_active: np.ndarray = field(init=False)  # PenaltyKick_v0._ball_contact_active
    goal_pos: np.ndarray = field(init=False)  # kick_to_target: KickToTarget_v0.goal_pos

    def __post_init__(self) -> None:
        self.steps = np.zeros(self.n, dtype=np.int64)
        self.ball_hits = np.zeros(self.n, dtype=np.int64)
        self.contact_active = np.zeros(self.n, dtype=bool)
        self.goal_pos = np.zeros((self.n, 3))


@functools.cache
def blas_dot3_is_sequential(trials: int = 4000, seed: int = 0) -> bool:
    """Whether BLAS ``ddot`` of two 3-vectors (``np.dot``, ``np.linalg.norm``) is the plain
    sequential ``(a0*b0 + a1*b1) + a2*b2`` on this machine.

    It depends on the OpenBLAS kernel chosen for the CPU: some sum sequentially, others use
    fused multiply-adds (measured on an AVX-512 AMD EPYC: ``fma(a2, b2, fma(a1, b1, a0*b0))``),
    which numpy cannot express. ``dot3`` then falls back to one ``np.dot`` per row.
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(trials, 3)) * 10.0 ** rng.uniform(-3, 2, (trials, 3))
    b = rng.normal(size=(trials, 3)) * 10.0 ** rng.uniform(-3, 2, (trials, 3))
    ref = np.array([np.dot(x, y) for x, y in zip(a, b, strict=True)])
    p = a * b
    return bool(np.array_equal((p[:, 0] + p[:, 1]) + p[:, 2], ref))


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.dot`` of each row pair of (N, 3) arrays (``b`` may be one (3,) vector), bit for bit
    as numpy computes it for one pair of 3-vectors (see ``blas_dot3_is_sequential``)."""
    if blas_dot3_is_sequential():
        p = a * b
        return (p[:, 0] + p[:, 1]) + p[:, 2]
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(np.broadcast_to(b, a.shape), dtype=np.float64)
    return np.array([np.dot(x, y) for x, y in zip(a, b, strict=True)], dtype=np.float64)


def norm3(v: np.ndarray) -> np.ndarray:
    """``np.linalg.norm(row)`` of each row of an (N, 3) array: ``sqrt(dot(row, row))``."""
    return np.sqrt(dot3(v, v))


def norm3_axis(v: np.ndarray) -> np.ndarray:
    """``np.linalg.norm(v, axis=-1)`` of an (N, 3) array: numpy then sums the squares with
    ``add.reduce`` (sequential for 3 terms), not with BLAS."""
    sq = v * v
    return np.sqrt((sq[:, 0] + sq[:, 1]) + sq[:, 2])


def goal_box(goal: np.ndarray, lay: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of FootballEnv_v0.ball_inside_goal for a goal site at ``goal`` (a static site).

    sai tests ``x <= bx <= x_max and y0 - w <= by < y0 + w and bz < z0 + h``, with the same
    float operations as here. Returns ``(low, high)`` such that the test is
    ``all(ball[:2] >= low) and all(ball < high)``; ``bx <= x_max`` is ``bx < nextafter(x_max)``.
    """
    x = float(goal[0])
    x_max = x + lay.goal_depth if x >= 0 else x - lay.goal_depth
    if x > x_max:
        x, x_max = x_max, x
    low = np.array([x, goal[1] - lay.goal_width])
    high = np.array([np.nextafter(x_max, np.inf), goal[1] + lay.goal_width,
                     goal[2] + lay.goal_height])
    return low, high


def extra_columns(task: FastTask) -> dict[str, tuple[int, int]]:
    """Caller-owned columns of ``F`` (offset from ``physics.extra``, width)."""
    widths = {"zero": 1, "prod": 18 + (6 if task.keeper else 0), "velr": 6, "target": 3,
              "defender": 9}
    out, at = {}, 0
    for name, width in widths.items():
        out[name] = (at, width)
        at += width
    return out


class Kernels:
    """Preallocated outputs and the per-step computations for one task.

    ``observe`` fills ``obs`` and ``info`` from ``F``; ``score`` fills ``terms``, ``reward``
    and ``terminated`` (and advances the ball-hit counter). Per-episode constants (target site
    and defender positions) live in ``F``'s extra columns, written by ``set_episode``.
    """

    def __init__(self, task: FastTask, lay: Layout, F: np.ndarray, col: dict[str, int],
                 extra: int, weights: dict[str, float], goal_normal: np.ndarray,
                 goal_xpos: np.ndarray, rot_order: int | None) -> None:
        self.task, self.lay, self.F = task, lay, F
        n = self.n = F.shape[0]
        self.weights = [(k, float(weights[k])) for k in task.term_names if k in weights]
        w = weights.get("robot_distance_ball") if task.penalty else None
        if w is not None and float(np.float32(w)) != w:  # see the end of score()
            raise RuntimeError("robot_distance_ball weight is not exact in float32")
        self.normal = goal_normal
        self.rot_order = rot_order
        self._log1p = np.zeros(0)
        self._hits_stale = False
        self._box_low, self._box_high = goal_box(goal_xpos, lay)
        self._field = np.array([lay.field_length, lay.field_width])
        self._index(col, extra)

        self.obs = np.zeros((n, task.obs_dim), dtype=np.float32)
        self.reward = np.zeros(n, dtype=np.float32)
        self.terminated = np.zeros(n, dtype=bool)
        self.D = np.zeros((n, len(self._a)))
        self._ta, self._tb = np.zeros_like(self.D), np.zeros_like(self.D)
        self.S = np.zeros((n, len(self._sens)), dtype=np.float32)
        info: dict[str, np.ndarray] = {}
        for key, value in zip(INFO_FIELD, (lay.field_length, lay.field_width, lay.goal_width,
                                           lay.goal_height, lay.goal_depth), strict=True):
            info[key] = np.full(n, value, dtype=np.float64)
        for key, sl in self._diff_slices.items():
            info[key] = self.D[:, sl]
        for key, sl in zip(INFO_SENSORS, (slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 13)),
                           strict=True):
            info[key] = self.S[:, sl]
        info["player_team"] = np.tile(np.array([1, 0]), (n, 1))  # team 0 only
        info["success"] = np.zeros(n, dtype=bool)
        self.info = {k: info[k] for k in INFO_KEYS}
        # reward terms, one float64 column each (flags as 0.0 / 1.0), in sai's dict order
        self.T = np.zeros((n, len(task.term_names)))
        self._tcol = {k: j for j, k in enumerate(task.term_names)}
        self.terms = {k: self.T[:, j] for k, j in self._tcol.items()}
        self._widx = np.array([self._tcol[k] for k, _ in self.weights])
        self._wvec = np.array([w for _, w in self.weights])
        self._weighted = np.zeros((n, len(self.weights)), dtype=np.float32)

    # ------------------------------------------------------------------------- index plan
    def _index(self, col: dict[str, int], extra: int) -> None:
        lay, task = self.lay, self.task
        ex = {k: (extra + off, w) for k, (off, w) in extra_columns(task).items()}
        q0, v0, s0, c0, e0 = (col[k] for k in ("qpos", "qvel", "site_xpos", "cdof",
                                               "sensordata"))

        def site(s: int) -> list[int]:
            return [s0 + 3 * s + r for r in range(3)]

        def qvel(d: int, k: int = 3) -> list[int]:
            return [v0 + d + r for r in range(k)]

        def cols(name: str) -> list[int]:
            at, w = ex[name]
            return list(range(at, at + w))

        zero = cols("zero")
        self.zero_col = zero[0]
        rd, bd = lay.robot_dof, lay.ball_dof
        # products for jacr @ qvel (ball, robot) and keeper jacp @ qvel
        p1, p2 = [], []
        for k in range(3):  # blocks by rotational dof k: [ball rows 0-2, robot rows 0-2]
            for dof in (bd, rd):
                p1 += [c0 + 6 * (dof + 3 + k) + r for r in range(3)]
                p2 += [v0 + dof + 3 + k] * 3
        if task.keeper:
            for dof in lay.keeper_dof:
                p1 += [c0 + 6 * dof + 3 + r for r in range(3)]
                p2 += [v0 + dof] * 3
        self._p1, self._p2 = np.array(p1), np.array(p2)
        self._p12 = np.concatenate([self._p1, self._p2])
        self._prod = slice(ex["prod"][0], ex["prod"][0] + len(p1))
        self._velr = slice(ex["velr"][0], ex["velr"][0] + 6)
        self.target_cols = slice(ex["target"][0], ex["target"][0] + 3)
        self.defender_cols = slice(ex["defender"][0], ex["defender"][0] + 9)
        prod = cols("prod")  # keeper products, if any, follow the 18 rotational ones
        velr_ball, velr_robot = cols("velr")[:3], cols("velr")[3:]

        imu, ball = site(lay.imu_site), site(lay.ball_site)
        south, north = site(lay.goal_south_site), site(lay.goal_north_site)
        rvel, bvel = qvel(rd), qvel(bd)
        pairs: dict[str, tuple[list[int], list[int]]] = {
            "goal_team_0_rel_robot": (south, imu),
            "goal_team_1_rel_robot": (north, imu),
            "goal_team_0_rel_ball": (south, ball),
            "goal_team_1_rel_ball": (north, ball),
            "ball_xpos_rel_robot": (ball, imu),
            "ball_velp_rel_robot": (bvel, rvel),
            "ball_velr_rel_robot": (velr_ball, velr_robot),
        }
        if task.keeper:  # sai reads the keeper sites; their jacp is the slide axis
            k0, k1 = (site(s) for s in lay.keeper_sites)
            pairs.update({
                "goalkeeper_team_0_xpos_rel_robot": (k0, imu),
                "goalkeeper_team_0_velp_rel_robot": (prod[18:21], rvel),
                "goalkeeper_team_1_xpos_rel_robot": (k1, imu),
                "goalkeeper_team_1_velp_rel_robot": (prod[21:24], rvel),
            })
        else:  # sai falls back to the robot's own site: robot - robot
            for t in (0, 1):
                pairs[f"goalkeeper_team_{t}_xpos_rel_robot"] = (imu, imu)
                pairs[f"goalkeeper_team_{t}_velp_rel_robot"] = (rvel, rvel)
        if task.target_site is not None:  # a static site: jacp = 0
            pairs["target_xpos_rel_robot"] = (cols("target"), imu)
            pairs["target_velp_rel_robot"] = (zero * 3, rvel)
        else:
            pairs["target_xpos_rel_robot"] = (imu, imu)
            pairs["target_velp_rel_robot"] = (rvel, rvel)
        pairs["defender_xpos"] = (cols("defender") if task.defenders else imu * 3, zero * 9)
        jq = np.arange(lay.nq)[lay.joint_qpos] + q0
        jv = np.arange(lay.nv)[lay.joint_qvel] + v0
        pairs["joint_qpos"] = (list(jq), zero * len(jq))
        pairs["joint_qvel"] = (list(jv), zero * len(jv))

        a, b, self._diff_slices = [], [], {}
        for key, (ca, cb) in pairs.items():
            self._diff_slices[key] = slice(len(a), len(a) + len(ca))
            a += ca
            b += cb
        self._a, self._b = np.array(a), np.array(b)

        quat = [e0 + lay.quat.start + r for r in (1, 2, 3, 0)]  # x y z w
        self._sens = np.array([e0 + i for sl in (lay.accelerometer, lay.gyro, lay.velocimeter)
                               for i in range(sl.start, sl.stop)] + quat)

        obs_keys = ["joint_qpos", "joint_qvel", "ball_xpos_rel_robot", "ball_velp_rel_robot",
                    "ball_velr_rel_robot"]
        if task.name == "kick_to_target":
            obs_keys += ["target_xpos_rel_robot", "target_velp_rel_robot"]
        else:  # team 0 attacks the south goal
            obs_keys += ["goal_team_0_rel_robot", "goal_team_0_rel_ball"]
            if task.keeper:
                obs_keys += ["goalkeeper_team_0_xpos_rel_robot",
                             "goalkeeper_team_0_velp_rel_robot"]
            elif task.defenders:
                obs_keys += ["target_xpos_rel_robot", "target_velp_rel_robot", "defender_xpos"]
        self._obs_idx = np.concatenate(
            [np.arange(self._diff_slices[k].start, self._diff_slices[k].stop) for k in obs_keys])
        if len(self._obs_idx) != task.obs_dim:
            raise RuntimeError(f"observation layout has {len(self._obs_idx)} values, "
                               f"expected {task.obs_dim}")
        self._nan_cols = np.r_[q0:q0 + lay.nq, v0:v0 + lay.nv]
        self._ball_cols = slice(ball[0], ball[0] + 3)
        self._robot_cols = slice(imu[0], imu[0] + 3)
        self._bvel_cols = slice(bvel[0], bvel[0] + 3)

    # ---------------------------------------------------------------------------- episodes
    def set_episode(self, i: int, target_xpos: np.ndarray, defender_xpos: np.ndarray) -> None:
        """Store slot i's per-episode constants (static site and geom positions)."""
        self.F[i, self.target_cols] = target_xpos
        self.F[i, self.defender_cols] = defender_xpos

    def log1p(self, counts: np.ndarray) -> np.ndarray:
        """``np.log1p(count)`` of integer counts, from a table of sai's scalar results."""
        top = int(counts.max(initial=0))
        if top >= len(self._log1p):
            self._log1p = np.array([np.log1p(k) for k in range(2 * top + 64)])
        return self._log1p[counts]

    # -------------------------------------------------------------------------------- step
    def _velocities(self) -> None:
        """``jac @ qvel`` products and sums into ``F``'s ``prod``/``velr`` columns."""
        F, m = self.F, len(self._p1)
        ab = F[:, self._p12]
        prod = F[:, self._prod]
        np.multiply(ab[:, :m], ab[:, m:], out=prod)
        velr = F[:, self._velr]  # ball x y z, robot x y z
        if self.rot_order is None:
            self._velocities_exact(velr.reshape(self.n, 2, 3))
            return
        i0, i1, i2 = ROT_ORDERS[self.rot_order]
        np.add(prod[:, 6 * i0:6 * i0 + 6], prod[:, 6 * i1:6 * i1 + 6], out=velr)
        np.add(velr, prod[:, 6 * i2:6 * i2 + 6], out=velr)

    def _velocities_exact(self, velr: np.ndarray) -> None:
        """Fallback for an unknown BLAS summation order: one ``np.dot`` per row (slow)."""
        F, lay = self.F, self.lay
        c0, v0 = self._p1[0] - 6 * (lay.ball_dof + 3), self._p2[0] - (lay.ball_dof + 3)
        velr = velr.copy()
        jac = np.zeros((3, lay.nv))
        for i in range(self.n):
            qv = F[i, v0:v0 + lay.nv]
            cdof = F[i, c0:c0 + 6 * lay.nv].reshape(lay.nv, 6)
            for b, dof in enumerate((lay.ball_dof, lay.robot_dof)):
                jac[:] = 0.0
                jac[:, dof + 3:dof + 6] = cdof[dof + 3:dof + 6, :3].T
                velr[i, b] = np.dot(jac, qv)
        F[:, self._velr] = velr.reshape(self.n, 6)

    def _success(self, ep: Episodes) -> np.ndarray:
        F, task = self.F, self.task
        ball = F[:, self._ball_cols]
        if task.goal_box:  # the goal site is static: its box is precomputed
            return (ball[:, :2] >= self._box_low).all(axis=1) & (ball < self._box_high).all(axis=1)
        if task.defenders:  # ObstaclePenaltyKick_v0.ball_inside_goal
            return norm3(F[:, self.target_cols] - ball) < OBSTACLE_GOAL_RADIUS
        return norm3_axis(ball - ep.goal_pos) < TARGET_RADIUS  # KickToTarget_v0._is_success

    def observe(self, ep: Episodes) -> None:
        """Fill ``obs`` and ``info`` (sai-mujoco ``_get_obs`` and ``_get_info``)."""
        F = self.F
        self._velocities()
        np.take(F, self._a, axis=1, out=self._ta)
        np.take(F, self._b, axis=1, out=self._tb)
        np.subtract(self._ta, self._tb, out=self.D)
        self.S[:] = F[:, self._sens]
        self.obs[:] = self.D[:, self._obs_idx]
        self.info["success"][:] = self._success(ep)

    def score(self, contact: np.ndarray, ep: Episodes) -> None:
        """Fill ``terms``, ``reward``, ``terminated``; call after ``observe`` (uses success)."""
        F, lay, task, T, c = self.F, self.lay, self.task, self.T, self._tcol
        ball = F[:, self._ball_cols]
        inside = self.info["success"]
        outside = (np.abs(ball[:, :2]) > self._field).any(axis=1)
        nan = np.isnan(F[:, self._nan_cols]).any(axis=1)
        fallen = ~(lay.min_height < F[:, self._robot_cols.start + 2])
        if task.penalty:
            offside = outside & ~inside
            touching = (contact & BALL_ROBOT).astype(bool)
            new = touching & ~ep.contact_active
            ep.contact_active[:] = touching
            if new.any() or self._hits_stale:  # PenaltyKick_v0.count_robot_ball_contacts
                ep.ball_hits += new
                T[:, c["ball_hits"]] = self.log1p(np.maximum(0, ep.ball_hits - 1))
                self._hits_stale = False
            dist = norm3(self.D[:, self._diff_slices["ball_xpos_rel_robot"]])
            scaled = 1 - np.tanh(dist.astype(np.float32))
            T[:, c["robot_distance_ball"]] = np.where(ep.ball_hits > 0, 1.5, scaled)
            vel = dot3(F[:, self._bvel_cols], self.normal)  # sai: -np.dot(ball_velp, normal)
            # not np.negative(..., out=strided column): numpy 2.4.6 computes that wrongly
            # for a 64-byte stride (T has 8 columns in the obstacle task)
            T[:, c["ball_vel_twd_goal"]] = -vel
            T[:, c["offside"]] = offside
            T[:, c["robot_fallen"]] = fallen
            T[:, c["goal_scored"]] = inside
            done = nan | offside | inside
            if task.keeper or task.defenders:
                blocked = (contact & BALL_OBSTACLE).astype(bool)
                T[:, c["ball_blocked"]] = blocked
                done |= blocked
            if task.defenders:
                T[:, c["ball_distance_target"]] = 1 - np.tanh(
                    norm3(F[:, self.target_cols] - ball))
        else:
            T[:, c["offside"]] = outside
            T[:, c["success"]] = inside
            T[:, c["distance"]] = np.exp(-norm3_axis(ball - ep.goal_pos))
            T[:, c["robot_distance_ball"]] = 1 - np.tanh(
                norm3(self.D[:, self._diff_slices["ball_xpos_rel_robot"]]))
            done = nan | outside | inside
        np.logical_or(done, fallen, out=self.terminated)
        # sai: np.sum([w * term ...], dtype=float32): each product rounded to float32, summed
        # in order (for < 8 terms numpy's reduction is sequential). sai multiplies the
        # float32 robot_distance_ball in float32; a product of two float32 values is exact in
        # float64, so one float64 product rounded to float32 is the same number.
        self._weighted[:] = T[:, self._widx] * self._wvec
        np.add.reduce(self._weighted, axis=1, out=self.reward)

    def reset_rows(self, idx: np.ndarray) -> None:
        """Slots ``idx`` start new episodes: their terms keep describing the last step taken
        until the next ``score`` (so terminal terms stay readable), which then recomputes the
        per-episode ``ball_hits`` column."""
        self._hits_stale = True
