"""Reward modes: the shaped return telescopes, falling slowly earns nothing, masked state."""

from __future__ import annotations

import numpy as np
import pytest

from soccerlab.envs.soccer.behaviour.rewards import (
    RewardTracker,
    ShapingConfig,
    ball_target_distance,
    check_reward_mode,
    potential,
)
from soccerlab.envs.soccer.behaviour.tasks import get_task
from soccerlab.errors import UserError

GOALIE, TARGET = get_task("goalie_penalty_kick"), get_task("kick_to_target")
CFG = ShapingConfig(gamma=0.97, robot_ball=1.0, ball_target=3.0, score_weight=2.0)


def state(
    robot_xy, ball_xyz, goal0=(-10.97, 0.0, 0.0), goal1=(10.97, 0.0, 0.0), target=(0, 0, 0), team=0
):
    """One env's info from world positions (the env reports world-frame offsets)."""
    robot = np.array([*robot_xy, 0.7])
    ball, target = np.array(ball_xyz, float), np.array(target, float)
    return {
        "ball_xpos_rel_robot": ball - robot,
        "goal_team_0_rel_ball": np.array(goal0) - ball,
        "goal_team_1_rel_ball": np.array(goal1) - ball,
        "target_xpos_rel_robot": target - robot,
        "player_team": np.array([1, 0]) if team == 0 else np.array([0, 1]),
    }


def batch(*infos):
    return {k: np.stack([i[k] for i in infos]) for k in infos[0]}


def walk_episode(tracker, starts, trajectories, scores):
    """Run N envs through their trajectories (lists of infos) in lockstep; episodes may differ
    in length: a finished env is reset (masked) to its next start. Returns per-episode rewards."""
    n = len(trajectories)
    tracker.reset(batch(*starts))
    rewards = [[] for _ in range(n)]
    for t in range(max(len(tr) for tr in trajectories)):
        infos = [tr[min(t, len(tr) - 1)] for tr in trajectories]
        done = np.array([t == len(tr) - 1 for tr in trajectories])
        r = tracker.step(np.zeros(n), batch(*infos), done, np.array(scores))
        for i in range(n):
            if t < len(trajectories[i]):
                rewards[i].append(r[i])
        if done.any():
            tracker.reset(batch(*starts), mask=done)
    return rewards


def discounted(rewards, gamma):
    return sum(gamma**k * r for k, r in enumerate(rewards))


def test_shaped_return_telescopes_to_score_minus_start_potential():
    tracker = RewardTracker("shaped", [GOALIE, TARGET], CFG)
    starts = [
        state((-6.77, 0.0), (-8.77, 0.0, 0.1)),
        state((2.0, 1.0), (1.0, 2.0, 0.1), target=(-3, 4, 0)),
    ]
    rng = np.random.default_rng(0)
    trajectories = [
        [
            state(rng.uniform(-8, -6, 2), (-8.77 + rng.normal(), rng.normal(), 0.1))
            for _ in range(7)
        ],
        [
            state(rng.uniform(0, 3, 2), (rng.normal(), 2 + rng.normal(), 0.1), target=(-3, 4, 0))
            for _ in range(12)
        ],
    ]
    scores = [-2.488, 1.7]
    rewards = walk_episode(tracker, starts, trajectories, scores)
    for i, (start, task) in enumerate(zip(starts, [GOALIE, TARGET], strict=True)):
        phi0 = potential(batch(start), np.array([task.ball_target == "target"]), CFG)[0]
        expected = CFG.gamma ** (len(trajectories[i]) - 1) * CFG.score_weight * scores[i] - phi0
        assert discounted(rewards[i], CFG.gamma) == pytest.approx(expected, rel=1e-9)


def test_progress_before_a_fall_is_worth_nothing_and_standing_beats_falling_later():
    """Standing 500 steps (score -0.993) beats falling at any time (score -2.488), however much
    progress toward the ball and goal was made before the fall."""
    start = state((-6.77, 0.0), (-8.77, 0.0, 0.1))
    still = state((-6.77, 0.0), (-8.77, 0.0, 0.1))
    tracker = RewardTracker("shaped", [GOALIE], CFG)

    def ret(trajectory, score):
        return discounted(walk_episode(tracker, [start], [trajectory], [score])[0], CFG.gamma)

    def approach(n):  # robot walks onto the ball and pushes it most of the way to the goal
        return [
            state((-6.77 - 2.0 * k / n, 0.0), (-8.77 - 1.5 * k / n, 0.0, 0.1))
            for k in range(1, n + 1)
        ]

    stand = ret([still] * 500, -0.993)
    for fall_at in (5, 50, 200, 499):
        fall_idle = ret([still] * fall_at, -2.488)
        fall_after_progress = ret(approach(fall_at), -2.488)
        assert fall_after_progress == pytest.approx(fall_idle, rel=1e-9)  # progress paid back
        assert stand > fall_after_progress
    # the env's own reward would pay the falling robot; the shaped one only pays the score
    assert ret([still] * 500, 3.0) > stand


def test_competition_mode_pays_only_the_score_at_the_end():
    tracker = RewardTracker("competition", [GOALIE, GOALIE])
    info = batch(state((0, 0), (1, 0, 0)), state((0, 0), (2, 0, 0)))
    r = tracker.step(np.array([5.0, 5.0]), info, np.array([False, True]), np.array([9.0, -2.5]))
    np.testing.assert_array_equal(r, [0.0, -2.5])
    env_tracker = RewardTracker("env", [GOALIE, GOALIE])
    np.testing.assert_array_equal(
        env_tracker.step(np.array([5.0, 1.5]), info, np.array([True, True]), np.zeros(2)),
        [5.0, 1.5],
    )


def test_ball_target_follows_the_attacked_goal_and_the_target():
    info = batch(
        state((0, 0), (-8.0, 0.0, 0.0), team=0),
        state((0, 0), (8.0, 0.0, 0.0), team=1),
        state((0, 0), (1.0, 1.0, 0.0), target=(4.0, 5.0, 0.0)),
    )
    np.testing.assert_allclose(
        ball_target_distance(info, np.array([False, False, True])), [2.97, 2.97, 5.0]
    )


def test_masked_reset_only_touches_masked_envs():
    tracker = RewardTracker("shaped", [GOALIE, GOALIE], CFG)
    starts = batch(state((0, 0), (1, 0, 0)), state((0, 0), (2, 0, 0)))
    tracker.reset(starts)
    tracker.step(
        np.zeros(2),
        batch(state((0, 0), (3, 0, 0)), state((0, 0), (4, 0, 0))),
        np.zeros(2, bool),
        np.zeros(2),
    )
    moved = tracker.phi.copy()
    tracker.reset(starts, mask=np.array([True, False]))
    start_phi = potential(starts, np.array([False, False]), CFG)
    assert tracker.phi[0] == pytest.approx(start_phi[0]) and tracker.phi[0] != pytest.approx(
        moved[0]
    )
    assert tracker.phi[1] == moved[1]


def test_unknown_mode():
    with pytest.raises(UserError, match="unknown reward mode 'dense'"):
        check_reward_mode("dense")


def test_progress_return_is_final_minus_start_potential_plus_score():
    """Undiscounted: progress pays Phi(s_T) - Phi(s_0) + w * score, whatever the path; with no
    per-step bonus, an idle robot earns the same whether it falls early or late."""
    tracker = RewardTracker("progress", [GOALIE], CFG)
    start = state((-6.77, 0.0), (-8.77, 0.0, 0.1))
    rng = np.random.default_rng(1)
    path = [state(rng.uniform(-9, -6, 2), (-8.77 - k * 0.3, rng.normal(), 0.1)) for k in range(9)]
    [rewards] = walk_episode(tracker, [start], [path], [1.5])
    phi = [potential(batch(s), np.array([False]), CFG)[0] for s in (start, path[-1])]
    assert sum(rewards) == pytest.approx(phi[1] - phi[0] + CFG.score_weight * 1.5, rel=1e-9)
    idle = [start] * 10
    early = sum(walk_episode(tracker, [start], [idle[:3]], [-2.488])[0])
    late = sum(walk_episode(tracker, [start], [idle], [-2.488])[0])
    assert early == pytest.approx(late) == pytest.approx(CFG.score_weight * -2.488)
    # moving the ball toward the goal pays now: the first step's reward is the progress made
    toward = state((-7.27, 0.0), (-9.27, 0.0, 0.1))  # robot and ball 0.5 m nearer the goal
    [first] = walk_episode(tracker, [start], [[toward] * 2], [0.0])
    gained = potential(batch(toward), np.array([False]), CFG) - potential(batch(start), np.array([False]), CFG)
    assert first[0] == pytest.approx(gained[0]) and first[0] == pytest.approx(1.5, abs=0.01)
