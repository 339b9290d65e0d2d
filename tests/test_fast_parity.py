"""The two physics backends, fast and sai (sai-mujoco 0.1.30 itself), bit for bit.

Every step of every slot compares the observation, reward, every reward term, every info
field, ``terminated`` and ``truncated`` with ``==`` (no tolerance; +0.0 == -0.0 and NaN == NaN
are the only allowances), across falls, truncations (a short TimeLimit on both sides) and
seedless resets that continue each slot's RNG stream. Kicks give the ball the same velocity on
both sides so goals, touches, blocks and balls out of the field happen too.

``SOCCERLAB_LONG_PARITY=1`` (or ``-m slow``) adds a long run per task; the standalone
``benchmarks/parity_long.py`` runs any length.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest

from parity import run_parity
from soccerlab.envs.soccer.backends.fast import FAST_TASKS, FastSoccerSim
from soccerlab.errors import UserError

TASK_IDS = sorted(FAST_TASKS)
LONG = os.environ.get("SOCCERLAB_LONG_PARITY") == "1"


def _check(rep, need_events=()):
    assert rep.ok, "\n".join(rep.mismatches)
    assert rep.terminated >= 1, "no episode ended by termination"
    assert rep.truncated >= 1, "no episode ended by truncation"
    for event in need_events:
        assert rep.events[event] >= 1, f"{event} never happened: {dict(rep.events)}"


# Events that these seeds reach (deterministic): the scoring branches beyond falling.
_EVENTS = {
    "LowerT1GoaliePenaltyKick-v0": ("robot_fallen", "goal_scored", "ball_blocked"),
    "LowerT1ObstaclePenaltyKick-v0": ("robot_fallen", "offside", "ball_touched", "ball_hits",
                                      "goal_scored"),
    "LowerT1KickToTarget-v0": ("success",),
    "LowerT1PenaltyKick-v0": ("robot_fallen", "goal_scored", "ball_touched"),
}


@pytest.mark.parametrize("task", TASK_IDS)
def test_parity_with_sai_mujoco(task):
    rep = run_parity(task, n_slots=2, steps=1000, max_episode_steps=200, kick_prob=1.0)
    _check(rep, _EVENTS[task])
    assert rep.steps == 2000


@pytest.mark.parametrize("task", ["LowerT1ObstaclePenaltyKick-v0", "LowerT1KickToTarget-v0"])
def test_parity_with_sai_resets(task):
    """The slower reset mode (a real sai-mujoco reset per episode) is exact too."""
    rep = run_parity(task, n_slots=2, steps=400, max_episode_steps=120, kick_prob=1.0,
                     reset_mode="sai")
    _check(rep)


@pytest.mark.slow
@pytest.mark.skipif(not LONG, reason="set SOCCERLAB_LONG_PARITY=1 for the long parity run")
@pytest.mark.parametrize("task", TASK_IDS)
def test_parity_long(task):
    rep = run_parity(task, n_slots=3, steps=6000, max_episode_steps=1500, kick_prob=0.7,
                     action_scales=(1.0, 0.1, 0.0))
    _check(rep, _EVENTS[task])


def test_explicit_seed_mid_run_and_streams():
    """Slot reset with seed s == gym.make(id).reset(seed=s); seedless resets continue it."""
    task = "LowerT1KickToTarget-v0"  # its starts depend on the seed
    sim = FastSoccerSim(task, 3)
    env = gym.make(task)
    try:
        sim.reset(seeds=[None, None, None])
        obs, info = sim.reset([1], seeds=[1234])
        ref_obs, ref_info = env.reset(seed=1234)
        assert np.array_equal(obs[1], ref_obs)
        assert np.array_equal(info["target_xpos_rel_robot"][1], ref_info["target_xpos_rel_robot"])
        for _ in range(3):
            obs, _ = sim.reset([1])
            ref_obs, _ = env.reset()
            assert np.array_equal(obs[1], ref_obs)
        assert not np.array_equal(obs[0], obs[1])  # other slots have their own streams
    finally:
        sim.close()
        env.close()


def test_sai_stack_is_its_envs():
    """The reference backend returns what the sai-mujoco envs it stacks return."""
    from soccerlab.envs.soccer.backends.sai import SaiStack

    task, n, limit = "LowerT1GoaliePenaltyKick-v0", 2, 60
    stack = SaiStack("goalie_penalty_kick", n, max_episode_steps=limit)
    refs = [gym.make(task, max_episode_steps=limit) for _ in range(n)]
    try:
        obs, info = stack.reset(seeds=7)
        for i, env in enumerate(refs):
            o, inf = env.reset(seed=7 + i)
            assert np.array_equal(obs[i], o)
            assert all(np.array_equal(info[k][i], v) for k, v in inf.items())
        rng = np.random.default_rng(0)
        ends = 0
        for _ in range(150):
            a = (rng.uniform(-1, 1, (n, 12)) * 9.0).astype(np.float32)
            out = stack.step(a)
            for i, env in enumerate(refs):
                o, r, term, trunc, inf = env.step(a[i])
                assert np.array_equal(out.obs[i], o) and out.reward[i] == r
                assert (out.terminated[i], out.truncated[i]) == (term, trunc)
                assert {k: v[i] for k, v in out.terms.items()} == inf["reward_terms"]
                if term or trunc:
                    ends += 1
                    assert np.array_equal(stack.reset([i])[0][i], env.reset()[0])
        assert ends >= n
        assert stack.min_height == 0.4 and stack.robot_height.shape == (n,)
    finally:
        stack.close()
        for env in refs:
            env.close()


def test_unsupported_things_say_so():
    with pytest.raises(UserError, match="does not support"):
        FastSoccerSim("LowerT1GoalKeeper-v0", 1)
    with pytest.raises(UserError, match="registered kwargs only"):
        FastSoccerSim("goalie_penalty_kick", 1, env_kwargs={"team": 1})
