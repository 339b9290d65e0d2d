"""Lock-step comparison of the two physics backends, ``FastSoccerSim`` and ``SaiStack`` (N real
sai-mujoco envs), through their common interface (``backends.base.TaskPhysics``).

Row i of both gets the same seed and the same random torques every step; every observation, reward, reward term, info field, ``terminated`` and ``truncated`` is
compared exactly (``==``; +0.0 equals -0.0, NaN equals NaN). Finished episodes are reset
without a seed on both sides, so RNG streams are compared across resets too.

To reach the scoring branches random torques never reach (goals, ball hits, the keeper or a
defender blocking the ball, the ball leaving the field), ``kick_prob`` gives the ball the same
random velocity on both sides at the first step of some episodes, aimed at the goal/target,
at the robot, or anywhere.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from soccerlab.envs.soccer.backends.fast.sim import FastSoccerSim
from soccerlab.envs.soccer.backends.sai import SaiStack


@dataclass
class ParityReport:
    """Outcome of ``run_parity``."""

    task: str
    steps: int = 0
    episodes: int = 0
    terminated: int = 0
    truncated: int = 0
    kicks: int = 0
    events: Counter = field(default_factory=Counter)  # term name -> steps where it fired
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


_EVENTS = ("offside", "ball_hits", "robot_fallen", "goal_scored", "ball_blocked", "success")


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return bool(np.array_equal(a.astype(np.float64), b.astype(np.float64), equal_nan=True))
    return bool(np.array_equal(a, b))


def _compare(rep: ParityReport, where: str, fast_obs, sai_obs, fast_info, sai_info,
             with_dtypes: bool = True) -> None:
    if not _same(fast_obs, sai_obs) or fast_obs.dtype != sai_obs.dtype:
        bad = np.flatnonzero(np.asarray(fast_obs, np.float64) != np.asarray(sai_obs, np.float64))
        rep.mismatches.append(f"{where}: obs differs at {bad[:8]} "
                              f"fast={fast_obs[bad[:3]]} sai={sai_obs[bad[:3]]}")
    keys = list(sai_info)
    if list(fast_info) != keys:
        rep.mismatches.append(f"{where}: info keys {list(fast_info)} != {keys}")
    for key in keys:
        mine, theirs = fast_info.get(key), sai_info[key]
        if not _same(mine, theirs):
            rep.mismatches.append(f"{where}: info[{key}] fast={mine} sai={theirs}")
        elif with_dtypes and isinstance(theirs, np.ndarray) and mine.dtype != theirs.dtype:
            rep.mismatches.append(f"{where}: info[{key}] dtype {mine.dtype} != {theirs.dtype}")


def _kick(rng: np.random.Generator, sim: FastSoccerSim, sai: gym.Env, slot: int) -> None:
    """Give the ball one random velocity in both simulations."""
    lay, u = sim.lay, sai.unwrapped
    data = u.sim.data._data
    ball = data.site_xpos[lay.ball_site].copy()
    choice = rng.integers(3)
    if choice == 0:  # at the goal / target / keeper / defenders
        aim = (sim.kernels.F[slot, sim.kernels.target_cols] if sim.task.target_site
               else data.site_xpos[lay.goal_south_site] + [0.0, rng.uniform(-1.5, 1.5), 0.3])
    elif choice == 1:  # at the robot's feet
        aim = data.site_xpos[lay.imu_site] * [1.0, 1.0, 0.0]
    else:
        aim = ball + rng.normal(size=3) * [6.0, 6.0, 0.0]
    direction = aim - ball
    lob = rng.uniform(0.0, 0.4) if sim.task.defenders or rng.random() < 0.3 else 0.0
    direction[2] = lob * np.linalg.norm(direction[:2])
    speed = rng.uniform(1.0, 6.0) if choice == 1 else rng.uniform(3.0, 16.0)
    vel = direction / max(np.linalg.norm(direction), 1e-9) * speed
    bd = lay.ball_dof
    data.qvel[bd:bd + 3] = vel
    sim.physics.qvel[slot, bd:bd + 3] = vel


def run_parity(task: str, n_slots: int = 2, steps: int = 1000, seed: int = 0,
               max_episode_steps: int | None = None, kick_prob: float = 0.5,
               action_seed: int = 1, action_scales: tuple[float, ...] = (1.0, 0.1),
               reset_mode: str = "replay", max_mismatches: int = 5) -> ParityReport:
    """Step ``FastSoccerSim`` and ``n_slots`` sai envs side by side; report differences.

    Slot i's torques are uniform over ``action_scales[i % len]`` times the action bounds
    (small torques keep the robot up longer, so kicked balls reach it).
    """
    sim = FastSoccerSim(task, n_slots, max_episode_steps=max_episode_steps, n_threads=2,
                        reset_mode=reset_mode)
    stack = SaiStack(sim.task.name, n_slots, max_episode_steps=sim.max_episode_steps)
    rep = ParityReport(task=sim.task.env_id)
    rng = np.random.default_rng(action_seed)
    scales = np.array([action_scales[i % len(action_scales)] for i in range(n_slots)])[:, None]
    low, high = sim.action_space.low * scales, sim.action_space.high * scales
    try:
        obs, info = sim.reset(seeds=seed)
        ref_obs, ref_info = stack.reset(seeds=seed)
        for i in range(n_slots):
            _compare(rep, f"reset slot {i}", obs[i], ref_obs[i], _row(info, i), _row(ref_info, i))
        rep.episodes = n_slots
        kick_now = rng.random(n_slots) < kick_prob
        for t in range(steps):
            for i in np.flatnonzero(kick_now):
                _kick(rng, sim, stack.envs[i], int(i))
                rep.kicks += 1
            kick_now[:] = False
            actions = rng.uniform(low, high).astype(np.float32)
            out = sim.step(actions)
            ref = stack.step(actions)
            for i in range(n_slots):
                where = f"step {t} slot {i} (episode step {sim.ep.steps[i]})"
                _compare(rep, where, out.obs[i], ref.obs[i], _row(out.info, i), _row(ref.info, i))
                if not _same(out.reward[i], ref.reward[i]) or out.reward.dtype != ref.reward.dtype:
                    rep.mismatches.append(f"{where}: reward fast={out.reward[i]} "
                                          f"sai={ref.reward[i]}")
                if list(out.terms) != list(ref.terms):
                    rep.mismatches.append(f"{where}: term keys {list(out.terms)} != "
                                          f"{list(ref.terms)}")
                for key, column in ref.terms.items():
                    value = column[i]
                    if not _same(out.terms[key][i], value):
                        rep.mismatches.append(
                            f"{where}: term {key} fast={out.terms[key][i]} sai={value}")
                    elif key == "robot_distance_ball" and value == 1.5:
                        rep.events["ball_touched"] += 1
                    elif out.terms[key][i] and key in _EVENTS:
                        rep.events[key] += 1
                term, trunc = bool(ref.terminated[i]), bool(ref.truncated[i])
                if bool(out.terminated[i]) != term or bool(out.truncated[i]) != trunc:
                    rep.mismatches.append(f"{where}: terminated/truncated fast="
                                          f"{out.terminated[i]}/{out.truncated[i]} "
                                          f"sai={term}/{trunc}")
                if term or trunc:
                    rep.terminated += int(term)
                    rep.truncated += int(trunc and not term)
                    ref_obs, ref_info = stack.reset([i])
                    obs, info = sim.reset([i])
                    _compare(rep, f"reset after {where}", obs[i], ref_obs[i], _row(info, i),
                             _row(ref_info, i))
                    rep.episodes += 1
                    kick_now[i] = rng.random() < kick_prob
                if len(rep.mismatches) >= max_mismatches:
                    return rep
            rep.steps += n_slots
    finally:
        sim.close()
        stack.close()
    return rep


def _row(info: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    return {k: v[i] for k, v in info.items()}
