"""Indices into MjModel/MjData, resolved once from a constructed sai-mujoco env.

sai-mujoco looks every name up on every step; here all of it (joint addresses, sites, sensors,
geoms, the torque controller's clipping constants, field geometry) is read once and frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from soccerlab.envs.soccer.backends.fast.tasks import FastTask

# Contact categories (bit flags) for a (geom1, geom2) pair.
BALL_ROBOT = 1
BALL_OBSTACLE = 2


def as_index(idx: np.ndarray) -> slice | np.ndarray:
    """A slice when ``idx`` is a contiguous ascending run (numpy views, no fancy-index copy)."""
    idx = np.asarray(idx, dtype=np.intp)
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return slice(int(idx[0]), int(idx[0]) + idx.size)
    return idx


@dataclass(frozen=True)
class Layout:
    """Everything a fast step needs to know about the compiled model (see ``resolve_layout``)."""

    nq: int
    nv: int
    nu: int
    joint_qpos: slice | np.ndarray
    joint_qvel: slice | np.ndarray
    act: slice | np.ndarray
    robot_dof: int
    ball_dof: int
    imu_site: int
    ball_site: int
    goal_south_site: int
    goal_north_site: int
    keeper_sites: tuple[int, int] | None
    keeper_qpos: slice | np.ndarray | None
    keeper_dof: tuple[int, int] | None
    target_site: int | None
    target_body: int | None
    defender_geoms: np.ndarray | None
    defender_body: int | None
    gyro: slice
    velocimeter: slice
    accelerometer: slice
    quat: slice
    contact_table: np.ndarray
    ctrl_in_lo: np.ndarray
    ctrl_in_hi: np.ndarray
    ctrl_in_mid: np.ndarray
    ctrl_scale: np.ndarray
    ctrl_out_mid: np.ndarray
    ctrl_tq_lo: np.ndarray
    ctrl_tq_hi: np.ndarray
    ctrl_lo: np.ndarray
    ctrl_hi: np.ndarray
    min_height: float
    field_length: float
    field_width: float
    goal_width: float
    goal_height: float
    goal_depth: float


def _sensor(model: mujoco.MjModel, name: str) -> slice:
    sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, name)
    if sid < 0:
        raise RuntimeError(f"sensor {name!r} not in the model")
    adr = int(model.sensor_adr[sid])
    return slice(adr, adr + int(model.sensor_dim[sid]))


def _id(model: mujoco.MjModel, obj: mujoco.mjtObj, name: str) -> int:
    oid = mujoco.mj_name2id(model, obj, name)
    if oid < 0:
        raise RuntimeError(f"{obj.name} {name!r} not in the model")
    return int(oid)


def _controller_constants(env, model: mujoco.MjModel) -> dict[str, np.ndarray]:
    """The JOINT_TORQUE controllers' clip/scale constants, in action order.

    sai-mujoco: ``ctrl[act] = clip(clip(scale(clip(a, in)), torque_limits), ctrlrange)``.
    """
    robot = env.robots[0]
    cc = robot.composite_controller
    parts = sorted(cc._action_split_indexes.items(), key=lambda kv: kv[1][0])
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "act", "in_lo", "in_hi", "in_mid", "scale", "out_mid", "tq_lo", "tq_hi")}
    for part, (start, end) in parts:
        ctl = cc.part_controllers[part]
        if ctl.name != "JOINT_TORQUE" or ctl.interpolator is not None:
            raise RuntimeError(f"unexpected controller for {part}: {ctl.name}")
        if ctl.use_torque_compensation:
            raise RuntimeError("torque compensation is not replicated")
        n = end - start
        cols["act"].append(np.asarray(robot._ref_actuators_indexes_dict[part], dtype=np.intp))
        cols["in_lo"].append(np.broadcast_to(ctl.input_min, n).astype(np.float64))
        cols["in_hi"].append(np.broadcast_to(ctl.input_max, n).astype(np.float64))
        scale = abs(ctl.output_max - ctl.output_min) / abs(ctl.input_max - ctl.input_min)
        cols["scale"].append(np.broadcast_to(scale, n).astype(np.float64))
        cols["out_mid"].append(
            np.broadcast_to((ctl.output_max + ctl.output_min) / 2.0, n).astype(np.float64))
        cols["in_mid"].append(
            np.broadcast_to((ctl.input_max + ctl.input_min) / 2.0, n).astype(np.float64))
        cols["tq_lo"].append(np.broadcast_to(ctl.torque_limits[0], n).astype(np.float64))
        cols["tq_hi"].append(np.broadcast_to(ctl.torque_limits[1], n).astype(np.float64))
    out = {k: np.concatenate(v) for k, v in cols.items()}
    act = out["act"]
    out["lo"] = model.actuator_ctrlrange[act, 0].copy()
    out["hi"] = model.actuator_ctrlrange[act, 1].copy()
    return out


def _contact_table(model: mujoco.MjModel, ball_geom: int, robot_geoms: list[int],
                   obstacle_geoms: list[int]) -> np.ndarray:
    table = np.zeros((model.ngeom, model.ngeom), dtype=np.uint8)
    for g in robot_geoms:
        table[ball_geom, g] = table[g, ball_geom] = BALL_ROBOT
    for g in obstacle_geoms:
        table[ball_geom, g] = table[g, ball_geom] = BALL_OBSTACLE
    return table


def resolve_layout(env, task: FastTask) -> Layout:
    """Resolve all indices from a constructed (and reset) sai-mujoco env's ``unwrapped``."""
    model: mujoco.MjModel = env.sim.model._model
    site, geom, jnt = mujoco.mjtObj.mjOBJ_SITE, mujoco.mjtObj.mjOBJ_GEOM, mujoco.mjtObj.mjOBJ_JOINT
    robot = env.robots[0]
    prefix = robot.name_prefix
    joints = [_id(model, jnt, n) for n in robot.robot_joints]
    root = _id(model, jnt, f"{prefix}root")
    ball_jnt = _id(model, jnt, "env:ball")
    ball_geom = _id(model, geom, "ball")
    if model.jnt_type[root] != mujoco.mjtJoint.mjJNT_FREE or \
            model.jnt_type[ball_jnt] != mujoco.mjtJoint.mjJNT_FREE:
        raise RuntimeError("robot root and ball must be free joints")

    keeper_sites = keeper_qpos = keeper_dof = None
    obstacle_geoms: list[int] = []
    if task.keeper:
        keeper_sites = (_id(model, site, "goalkeeper_team_0_site"),
                        _id(model, site, "goalkeeper_team_1_site"))
        kj = [_id(model, jnt, f"goalkeeper_team_{t}_joint") for t in (0, 1)]
        keeper_qpos = as_index(model.jnt_qposadr[kj])
        keeper_dof = (int(model.jnt_dofadr[kj[0]]), int(model.jnt_dofadr[kj[1]]))
        obstacle_geoms = [int(env.keeper_id)]
    defender_geoms = defender_body = None
    if task.defenders:
        defender_geoms = np.array([_id(model, geom, f"defender_geom{i}") for i in range(3)])
        defender_body = int(model.geom_bodyid[defender_geoms[0]])
        obstacle_geoms = [int(g) for g in env.goalkeeper_geom_ids]
    target_site = target_body = None
    if task.target_site is not None:
        target_site = _id(model, site, task.target_site)
        target_body = int(model.site_bodyid[target_site])
        if model.body_dofnum[target_body] or model.body_parentid[target_body] != 0:
            raise RuntimeError(f"target site {task.target_site} must sit on a static body")

    ctl = _controller_constants(env, model)
    params = env.parameters_dict["env_parameters"]
    return Layout(
        nq=model.nq, nv=model.nv, nu=model.nu,
        joint_qpos=as_index(model.jnt_qposadr[joints]),
        joint_qvel=as_index(model.jnt_dofadr[joints]),
        act=as_index(ctl["act"]),
        robot_dof=int(model.jnt_dofadr[root]),
        ball_dof=int(model.jnt_dofadr[ball_jnt]),
        imu_site=_id(model, site, env._root_site),
        ball_site=_id(model, site, "ball"),
        goal_south_site=_id(model, site, "goal_post_south"),
        goal_north_site=_id(model, site, "goal_post_north"),
        keeper_sites=keeper_sites, keeper_qpos=keeper_qpos, keeper_dof=keeper_dof,
        target_site=target_site, target_body=target_body,
        defender_geoms=defender_geoms, defender_body=defender_body,
        gyro=_sensor(model, f"{prefix}torso_gyro"),
        velocimeter=_sensor(model, f"{prefix}torso_vel"),
        accelerometer=_sensor(model, f"{prefix}accelerometer"),
        quat=_sensor(model, f"{prefix}torso_quat"),
        contact_table=_contact_table(model, ball_geom, list(env.robot_geom_ids), obstacle_geoms),
        ctrl_in_lo=ctl["in_lo"], ctrl_in_hi=ctl["in_hi"], ctrl_in_mid=ctl["in_mid"],
        ctrl_scale=ctl["scale"], ctrl_out_mid=ctl["out_mid"],
        ctrl_tq_lo=ctl["tq_lo"], ctrl_tq_hi=ctl["tq_hi"], ctrl_lo=ctl["lo"], ctrl_hi=ctl["hi"],
        min_height=float(robot.standing_height[0]),
        field_length=params["field"]["length"], field_width=params["field"]["width"],
        goal_width=params["goal"]["width"], goal_height=params["goal"]["height"],
        goal_depth=params["goal"]["depth"],
    )


def check_velocity_structure(model: mujoco.MjModel, data: mujoco.MjData, lay: Layout) -> None:
    """Verify the Jacobian shapes the fast velocity formulas rely on.

    sai-mujoco's ``get_site_xvelp/xvelr`` are ``mj_jacSite(...) @ qvel``. For the sites it
    reads, the Jacobians are structurally simple: ball and IMU sit on their free joint's
    anchor (jacp = identity on the translational dofs, jacr = the rotational ``cdof`` axes),
    keeper sites on a slide joint (jacp = joint axis), target sites on static bodies (zero).
    Raises RuntimeError if a future model breaks that.
    """
    nv = model.nv
    jacp, jacr = np.zeros((3, nv)), np.zeros((3, nv))
    for sid, dof in ((lay.ball_site, lay.ball_dof), (lay.imu_site, lay.robot_dof)):
        mujoco.mj_jacSite(model, data, jacp, jacr, sid)
        want_p = np.zeros((3, nv))
        want_p[:, dof:dof + 3] = np.eye(3)
        want_r = np.zeros((3, nv))
        want_r[:, dof + 3:dof + 6] = data.cdof[dof + 3:dof + 6, :3].T
        if not (np.array_equal(jacp, want_p) and np.array_equal(jacr, want_r)):
            raise RuntimeError(f"site {sid}: Jacobian is not the free-joint-anchor form")
    if lay.keeper_sites is not None:
        for sid, dof in zip(lay.keeper_sites, lay.keeper_dof, strict=True):
            mujoco.mj_jacSite(model, data, jacp, jacr, sid)
            want_p = np.zeros((3, nv))
            want_p[:, dof] = data.cdof[dof, 3:]
            if not (np.array_equal(jacp, want_p) and not jacr.any()):
                raise RuntimeError(f"keeper site {sid}: Jacobian is not a slide-joint axis")
    if lay.target_site is not None:
        mujoco.mj_jacSite(model, data, jacp, jacr, lay.target_site)
        if jacp.any() or jacr.any():
            raise RuntimeError("target site Jacobian is not zero")


def calibrate_rot_order(nv: int, dofs: list[int], trials: int = 2000, seed: int = 0) -> int | None:
    """Which grouping of three terms reproduces ``np.dot(jacr, qvel)`` bit for bit.

    ``jacr @ qvel`` for a free joint has three non-zero products per row (a, b, c for the
    three rotational dofs in order). numpy hands it to BLAS ``dgemv``, whose summation order
    depends on the BLAS kernel. Returns 0 for ``(a + b) + c``, 1 for ``(a + c) + b``,
    2 for ``(b + c) + a``, or None when none of them matches (the caller then uses an exact
    per-row ``np.dot``).
    """
    rng = np.random.default_rng(seed)
    ok = [True, True, True]
    jac = np.zeros((3, nv))
    for dof in dofs:
        for _ in range(trials):
            jac[:] = 0.0
            jac[:, dof + 3:dof + 6] = rng.normal(size=(3, 3)) * 10.0 ** rng.uniform(-3, 1, (3, 3))
            qvel = rng.normal(size=nv) * 10.0 ** rng.uniform(-2, 1.5, nv)
            ref = np.dot(jac, qvel)
            a, b, c = (jac[:, dof + 3 + k] * qvel[dof + 3 + k] for k in range(3))
            for k, cand in enumerate(((a + b) + c, (a + c) + b, (b + c) + a)):
                ok[k] = ok[k] and np.array_equal(cand, ref)
    for k in range(3):
        if ok[k]:
            return k
    return None
