"""Observations, info, reward terms, reward and termination for N instances at once.

Every formula mirrors sai-mujoco 0.1.30 operation for operation, so results are bit-identical:
the same float64 subtractions, ``float32`` casts where sai casts, norms summed in the order
numpy's ``norm``/``dot`` sum three terms (sequentially), the reward summed sequentially in
float32 as ``np.sum(list, dtype=float32)`` does, and ``jac @ qvel`` reduced to its non-zero
products in the order the BLAS kernel adds them (see ``layout.calibrate_rot_order``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from soccerlab.envs.soccer.fast.layout import BALL_OBSTACLE, BALL_ROBOT, Layout
from soccerlab.envs.soccer.fast.tasks import FastTask

OBSTACLE_GOAL_RADIUS = 0.3  # ObstaclePenaltyKick_v0.ball_inside_goal threshold
TARGET_RADIUS = 0.4  # KickToTarget_v0._is_success threshold

INFO_VEC3 = (
    "goal_team_0_rel_robot", "goal_team_1_rel_robot", "goal_team_0_rel_ball",
    "goal_team_1_rel_ball", "ball_xpos_rel_robot", "ball_velp_rel_robot", "ball_velr_rel_robot",
)
INFO_KEEPER = (
    "goalkeeper_team_0_xpos_rel_robot", "goalkeeper_team_0_velp_rel_robot",
    "goalkeeper_team_1_xpos_rel_robot", "goalkeeper_team_1_velp_rel_robot",
)
INFO_FIELD = ("length", "width", "goal_width", "goal_height", "goal_depth")
INFO_KEYS = (
    *INFO_FIELD, *INFO_VEC3, "player_team", "robot_accelerometer", "robot_gyro",
    "robot_velocimeter", "robot_quat", *INFO_KEEPER, "target_xpos_rel_robot",
    "target_velp_rel_robot", "defender_xpos", "success",
)
BOOL_TERMS = frozenset({"offside", "robot_fallen", "goal_scored", "ball_blocked", "success"})


@dataclass
class Episodes:
    """Per-slot state sai-mujoco keeps in Python attributes between steps."""

    n: int
    steps: np.ndarray = field(init=False)  # env steps since reset (TimeLimit, keeper clock)
    ball_hits: np.ndarray = field(init=False)  # PenaltyKick_v0.ball_hits_by_robot
    contact_active: np.ndarray = field(init=False)  # PenaltyKick_v0._ball_contact_active
    target_xpos: np.ndarray = field(init=False)  # world position of the static target site
    goal_pos: np.ndarray = field(init=False)  # kick_to_target: KickToTarget_v0.goal_pos
    defender_xpos: np.ndarray = field(init=False)  # obstacle: 3 defender geom positions

    def __post_init__(self) -> None:
        self.steps = np.zeros(self.n, dtype=np.int64)
        self.ball_hits = np.zeros(self.n, dtype=np.int64)
        self.contact_active = np.zeros(self.n, dtype=bool)
        self.target_xpos = np.zeros((self.n, 3))
        self.goal_pos = np.zeros((self.n, 3))
        self.defender_xpos = np.zeros((self.n, 9))


def norm3(v: np.ndarray) -> np.ndarray:
    """``np.linalg.norm`` of each row of an (N, 3) array, summed like numpy sums 3 terms."""
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    return np.sqrt((x * x + y * y) + z * z)


def free_rot_velocity(cdof: np.ndarray, qvel: np.ndarray, dof: int, order: int) -> np.ndarray:
    """``mj_jacSite(jacr) @ qvel`` for a site on a free joint: rotational ``cdof`` axes x qvel."""
    a = cdof[:, dof + 3, :3] * qvel[:, dof + 3, None]
    b = cdof[:, dof + 4, :3] * qvel[:, dof + 4, None]
    c = cdof[:, dof + 5, :3] * qvel[:, dof + 5, None]
    if order == 0:
        return (a + b) + c
    if order == 1:
        return (a + c) + b
    return (b + c) + a


def free_rot_velocity_exact(cdof: np.ndarray, qvel: np.ndarray, dof: int) -> np.ndarray:
    """Fallback for an unknown BLAS summation order: one ``np.dot`` per row (slow, exact)."""
    out = np.empty((len(qvel), 3))
    jac = np.zeros((3, qvel.shape[1]))
    for i in range(len(qvel)):
        jac[:, dof + 3:dof + 6] = cdof[i, dof + 3:dof + 6, :3].T
        out[i] = np.dot(jac, qvel[i])
    return out


def goal_box_inside(ball: np.ndarray, goal: np.ndarray, lay: Layout) -> np.ndarray:
    """FootballEnv_v0.ball_inside_goal: ball inside the box behind the goal line."""
    x = goal[:, 0]
    x_max = np.where(x >= 0, x + lay.goal_depth, x - lay.goal_depth)
    swap = x > x_max
    lo, hi = np.where(swap, x_max, x), np.where(swap, x, x_max)
    bx, by, bz = ball[:, 0], ball[:, 1], ball[:, 2]
    return ((lo <= bx) & (bx <= hi) & (goal[:, 1] - lay.goal_width <= by)
            & (by < goal[:, 1] + lay.goal_width) & (bz < goal[:, 2] + lay.goal_height))


def outside_field(ball: np.ndarray, lay: Layout) -> np.ndarray:
    """The geometric part of FootballEnv_v0.is_outside_field."""
    bx, by = ball[:, 0], ball[:, 1]
    length, width = lay.field_length, lay.field_width
    return (bx < -length) | (bx > length) | (by < -width) | (by > width)


class Kernels:
    """Preallocated outputs and the per-step computations for one task.

    ``observe`` fills ``obs`` and ``info`` from gathered MjData fields; ``score`` fills
    ``terms``, ``reward`` and ``terminated`` (and advances the ball-hit counter).
    """

    def __init__(self, task: FastTask, lay: Layout, n: int, weights: dict[str, float],
                 goal_normal: np.ndarray, rot_order: int | None) -> None:
        self.task, self.lay, self.n = task, lay, n
        self.weights = [(k, float(weights[k])) for k in task.term_names if k in weights]
        self.normal = goal_normal
        self.rot_order = rot_order
        self._log1p = np.zeros(0)
        self.obs = np.zeros((n, task.obs_dim), dtype=np.float32)
        self.reward = np.zeros(n, dtype=np.float32)
        self.terminated = np.zeros(n, dtype=bool)
        info: dict[str, np.ndarray] = {}
        for key, value in zip(INFO_FIELD, (lay.field_length, lay.field_width, lay.goal_width,
                                           lay.goal_height, lay.goal_depth), strict=True):
            info[key] = np.full(n, value, dtype=np.float64)
        for key in INFO_VEC3:
            info[key] = np.zeros((n, 3))
        info["player_team"] = np.tile(np.array([1, 0]), (n, 1))  # team 0 only
        for key in ("robot_accelerometer", "robot_gyro", "robot_velocimeter"):
            info[key] = np.zeros((n, 3), dtype=np.float32)
        info["robot_quat"] = np.zeros((n, 4), dtype=np.float32)
        for key in (*INFO_KEEPER, "target_xpos_rel_robot", "target_velp_rel_robot"):
            info[key] = np.zeros((n, 3))
        info["defender_xpos"] = np.zeros((n, 9))
        info["success"] = np.zeros(n, dtype=bool)
        self.info = {k: info[k] for k in INFO_KEYS}
        self.terms = {k: np.zeros(n, dtype=bool if k in BOOL_TERMS else np.float64)
                      for k in task.term_names}

    def log1p(self, counts: np.ndarray) -> np.ndarray:
        """``np.log1p(count)`` of integer counts, from a table of sai's scalar results."""
        top = int(counts.max(initial=0))
        if top >= len(self._log1p):
            self._log1p = np.array([np.log1p(k) for k in range(2 * top + 64)])
        return self._log1p[counts]

    def _rot(self, cdof: np.ndarray, qvel: np.ndarray, dof: int) -> np.ndarray:
        if self.rot_order is None:
            return free_rot_velocity_exact(cdof, qvel, dof)
        return free_rot_velocity(cdof, qvel, dof, self.rot_order)

    def _success(self, ball: np.ndarray, site: np.ndarray, ep: Episodes) -> np.ndarray:
        lay, task = self.lay, self.task
        if task.goal_box:
            return goal_box_inside(ball, site[:, lay.goal_south_site], lay)
        if task.defenders:  # ObstaclePenaltyKick_v0.ball_inside_goal
            return norm3(ep.target_xpos - ball) < OBSTACLE_GOAL_RADIUS
        return norm3(ball - ep.goal_pos) < TARGET_RADIUS  # KickToTarget_v0._is_success

    def observe(self, f: dict[str, np.ndarray], ep: Episodes) -> None:
        """Fill ``obs`` and ``info`` (sai-mujoco ``_get_obs`` and ``_get_info``)."""
        lay, task, info, obs = self.lay, self.task, self.info, self.obs
        site, qvel, sens, cdof = f["site_xpos"], f["qvel"], f["sensordata"], f["cdof"]
        robot, ball = site[:, lay.imu_site], site[:, lay.ball_site]
        south, north = site[:, lay.goal_south_site], site[:, lay.goal_north_site]
        rd, bd = lay.robot_dof, lay.ball_dof
        robot_velp, ball_velp = qvel[:, rd:rd + 3], qvel[:, bd:bd + 3]
        robot_velr, ball_velr = self._rot(cdof, qvel, rd), self._rot(cdof, qvel, bd)

        np.subtract(south, robot, out=info["goal_team_0_rel_robot"])
        np.subtract(north, robot, out=info["goal_team_1_rel_robot"])
        np.subtract(south, ball, out=info["goal_team_0_rel_ball"])
        np.subtract(north, ball, out=info["goal_team_1_rel_ball"])
        np.subtract(ball, robot, out=info["ball_xpos_rel_robot"])
        np.subtract(ball_velp, robot_velp, out=info["ball_velp_rel_robot"])
        np.subtract(ball_velr, robot_velr, out=info["ball_velr_rel_robot"])
        info["robot_accelerometer"][:] = sens[:, lay.accelerometer]
        info["robot_gyro"][:] = sens[:, lay.gyro]
        info["robot_velocimeter"][:] = sens[:, lay.velocimeter]
        quat = sens[:, lay.quat]
        info["robot_quat"][:, :3] = quat[:, 1:]
        info["robot_quat"][:, 3] = quat[:, 0]

        if task.keeper:
            k0, k1 = lay.keeper_sites
            d0, d1 = lay.keeper_dof
            np.subtract(site[:, k0], robot, out=info["goalkeeper_team_0_xpos_rel_robot"])
            np.subtract(cdof[:, d0, 3:] * qvel[:, d0, None], robot_velp,
                        out=info["goalkeeper_team_0_velp_rel_robot"])
            np.subtract(site[:, k1], robot, out=info["goalkeeper_team_1_xpos_rel_robot"])
            np.subtract(cdof[:, d1, 3:] * qvel[:, d1, None], robot_velp,
                        out=info["goalkeeper_team_1_velp_rel_robot"])
        else:  # sai falls back to the robot's own site: robot - robot
            for key in INFO_KEEPER:
                src = robot if "xpos" in key else robot_velp
                np.subtract(src, src, out=info[key])
        if task.target_site is not None:
            np.subtract(ep.target_xpos, robot, out=info["target_xpos_rel_robot"])
            np.subtract(0.0, robot_velp, out=info["target_velp_rel_robot"])  # static site
        else:
            np.subtract(robot, robot, out=info["target_xpos_rel_robot"])
            np.subtract(robot_velp, robot_velp, out=info["target_velp_rel_robot"])
        if task.defenders:
            info["defender_xpos"][:] = ep.defender_xpos
        else:
            info["defender_xpos"][:] = np.tile(robot, 3)
        info["success"][:] = self._success(ball, site, ep)

        obs[:, 0:12] = f["qpos"][:, lay.joint_qpos]
        obs[:, 12:24] = qvel[:, lay.joint_qvel]
        obs[:, 24:27] = info["ball_xpos_rel_robot"]
        obs[:, 27:30] = info["ball_velp_rel_robot"]
        obs[:, 30:33] = info["ball_velr_rel_robot"]
        if task.name == "kick_to_target":
            obs[:, 33:36] = info["target_xpos_rel_robot"]
            obs[:, 36:39] = info["target_velp_rel_robot"]
            return
        obs[:, 33:36] = info["goal_team_0_rel_robot"]  # team 0 attacks the south goal
        obs[:, 36:39] = info["goal_team_0_rel_ball"]
        if task.keeper:
            obs[:, 39:42] = info["goalkeeper_team_0_xpos_rel_robot"]
            obs[:, 42:45] = info["goalkeeper_team_0_velp_rel_robot"]
        elif task.defenders:
            obs[:, 39:42] = info["target_xpos_rel_robot"]
            obs[:, 42:45] = info["target_velp_rel_robot"]
            obs[:, 45:54] = ep.defender_xpos

    def score(self, f: dict[str, np.ndarray], contact: np.ndarray, ep: Episodes) -> None:
        """Fill ``terms``, ``reward``, ``terminated``; call after ``observe`` (uses success)."""
        lay, task, terms = self.lay, self.task, self.terms
        site, qpos, qvel = f["site_xpos"], f["qpos"], f["qvel"]
        robot, ball = site[:, lay.imu_site], site[:, lay.ball_site]
        inside = self.info["success"]
        outside = outside_field(ball, lay)
        nan = np.isnan(qpos).any(axis=1) | np.isnan(qvel).any(axis=1)
        fallen = ~(lay.min_height < robot[:, 2])
        if task.penalty:
            offside = outside & ~inside
            touching = (contact & BALL_ROBOT) != 0
            ep.ball_hits += touching & ~ep.contact_active
            ep.contact_active[:] = touching
            scaled = 1 - np.tanh(norm3(robot - ball).astype(np.float32))
            w = dict(self.weights)
            v = qvel[:, lay.ball_dof:lay.ball_dof + 3]
            n0, n1, n2 = self.normal
            terms["robot_distance_ball"][:] = np.where(ep.ball_hits > 0, 1.5, scaled)
            terms["ball_vel_twd_goal"][:] = -((v[:, 0] * n0 + v[:, 1] * n1) + v[:, 2] * n2)
            terms["offside"][:] = offside
            terms["ball_hits"][:] = self.log1p(np.maximum(0, ep.ball_hits - 1))
            terms["robot_fallen"][:] = fallen
            terms["goal_scored"][:] = inside
            done = nan | offside | inside
            weighted = {  # the value sai multiplies, in the dtype it multiplies in
                "robot_distance_ball": np.where(ep.ball_hits > 0, w["robot_distance_ball"] * 1.5,
                                                w["robot_distance_ball"] * scaled),
            }
            if task.keeper or task.defenders:
                blocked = (contact & BALL_OBSTACLE) != 0
                terms["ball_blocked"][:] = blocked
                done |= blocked
            if task.defenders:
                terms["ball_distance_target"][:] = 1 - np.tanh(norm3(ep.target_xpos - ball))
        else:
            dist = norm3(ball - ep.goal_pos)
            terms["offside"][:] = outside
            terms["success"][:] = inside
            terms["distance"][:] = np.exp(-dist)
            terms["robot_distance_ball"][:] = 1 - np.tanh(norm3(ball - robot))
            done = nan | outside | inside
            weighted = {}
        self.terminated[:] = done | fallen

        reward = None
        for key, weight in self.weights:
            value = weighted[key] if key in weighted else weight * terms[key]
            value = value.astype(np.float32)
            reward = value if reward is None else reward + value
        self.reward[:] = reward
