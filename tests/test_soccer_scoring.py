"""Competition score on known terms, batched scoring, the report, and the real-env reference."""

from __future__ import annotations

import numpy as np
import pytest

from soccerlab.envs.soccer.behaviour.scoring import aggregate_episodes, batch_scores, episode_score

FALL_TERMS = {  # the goalie env's last step after a zero-torque fall (measured)
    "robot_distance_ball": np.float32(0.046022117), "ball_vel_twd_goal": -2.24e-09,
    "offside": np.False_, "ball_hits": 0.0, "robot_fallen": True, "goal_scored": False,
    "ball_blocked": False,
}  # fmt: skip
GOAL_TERMS = {
    "robot_distance_ball": 0.5, "ball_vel_twd_goal": 2.0, "offside": False,
    "ball_hits": np.log1p(1.0), "robot_fallen": False, "goal_scored": True, "ball_blocked": False,
}  # fmt: skip
TARGET_TERMS = {
    "offside": False,
    "success": True,
    "distance": np.exp(-0.3),
    "robot_distance_ball": 0.9,
}


def test_fall_scores_minus_2_488():
    score, parts = episode_score(FALL_TERMS, "goalie_penalty_kick")
    assert score == pytest.approx(0.25 * 0.046022117 - 1.5 - 1.0, abs=1e-7)
    assert score == pytest.approx(-2.4885, abs=1e-4)
    assert parts["robot_fallen"] == -1.5 and parts["steps"] == -1.0
    assert sum(parts.values()) == pytest.approx(score)


def test_goal_and_target_scores():
    score, parts = episode_score(GOAL_TERMS, "obstacle_penalty_kick")
    assert score == pytest.approx(0.125 + 3.0 + 2.5 - 0.2 * np.log(2.0) - 1.0)
    assert parts["goal_scored"] == 2.5 and parts["ball_vel_twd_goal"] == 3.0
    score, parts = episode_score(TARGET_TERMS, "kick_to_target")
    assert score == pytest.approx(2.0 + 0.5 * np.exp(-0.3) - 0.3)
    assert "robot_distance_ball" not in parts  # kick_to_target does not weigh it


def test_missing_terms_count_zero_and_steps_is_constant():
    terms = {k: v for k, v in FALL_TERMS.items() if k != "ball_blocked"}
    assert episode_score(terms, "penalty_kick")[0] == pytest.approx(
        episode_score(FALL_TERMS, "goalie_penalty_kick")[0]
    )
    assert episode_score({**FALL_TERMS, "steps": 123.0}, "goalie_penalty_kick")[0] == pytest.approx(
        -2.4885, abs=1e-4
    )
    assert episode_score({}, "kick_to_target")[0] == pytest.approx(-0.3)


def test_batch_scores_mixed_tasks_equal_singles():
    rows = [FALL_TERMS, GOAL_TERMS, TARGET_TERMS]
    tasks = ["goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"]
    scores, parts = batch_scores(rows, tasks)
    singles = [episode_score(r, t)[0] for r, t in zip(rows, tasks, strict=True)]
    np.testing.assert_allclose(scores, singles)
    np.testing.assert_allclose(sum(parts.values()), scores)
    arrays = {k: np.array([float(r.get(k, 0.0)) for r in rows]) for k in set().union(*rows)}
    np.testing.assert_allclose(batch_scores(arrays, tasks)[0], singles)
    same_task = batch_scores({"robot_fallen": np.array([True, False])}, "goalie_penalty_kick")[0]
    np.testing.assert_allclose(same_task, [-2.5, -1.0])
    with pytest.raises(ValueError, match="2 tasks for 3 episodes"):
        batch_scores(rows, tasks[:2])


def record(task, score, success=False, fallen=False, length=100):
    return {"task": task, "score": score, "components": {"steps": -1.0}, "success": success,
            "fallen": fallen, "length": length}  # fmt: skip


def test_report_per_task_and_overall():
    episodes = [
        record("goalie_penalty_kick", -2.0, fallen=True, length=278),
        record("goalie_penalty_kick", 4.0, success=True, length=1000),
        record("kick_to_target", -0.3, length=5000),
    ]
    report = aggregate_episodes(episodes)
    goalie = report["tasks"]["goalie_penalty_kick"]
    assert goalie["n_episodes"] == 2
    assert goalie["mean_score"] == pytest.approx(1.0) and goalie["std_score"] == pytest.approx(3.0)
    assert goalie["success_rate"] == 0.5 and goalie["fall_rate"] == 0.5
    assert goalie["mean_length"] == 639.0
    assert goalie["mean_components"] == {"steps": -1.0}
    assert report["overall"]["score"] == pytest.approx((1.0 - 0.3) / 2)  # equal task weights
    assert report["overall"]["n_episodes"] == 3
    weighted = aggregate_episodes(episodes, {"goalie_penalty_kick": 3.0, "kick_to_target": 1.0})
    assert weighted["overall"]["score"] == pytest.approx(0.75 * 1.0 + 0.25 * -0.3)
    only_goalie = aggregate_episodes(
        episodes, {"goalie_penalty_kick": 1.0, "obstacle_penalty_kick": 1.0}
    )
    assert only_goalie["overall"]["score"] == pytest.approx(1.0)
    assert only_goalie["overall"]["weights"] == {"goalie_penalty_kick": 1.0, "kick_to_target": 0.0}


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("goalie_penalty_kick", -2.4885),
        ("obstacle_penalty_kick", -2.4885),
        ("kick_to_target", -0.3),
    ],
)
def test_zero_torque_episode_reproduces_reference(task, expected):
    from soccerlab.envs.soccer import SoccerSpec
    from soccerlab.envs.soccer.vec_env import SoccerGymEnv

    env = SoccerGymEnv(SoccerSpec(task))
    env.reset(seed=0)
    done, info = False, {}
    while not done:
        _, _, terminated, truncated, info = env.step(np.zeros(12, dtype=np.float32))
        done = terminated or truncated
    env.close()
    episode = info["soccer"]
    assert episode["score"] == pytest.approx(expected, abs=1e-3)
    assert episode["fallen"] is True and episode["success"] is False
    assert 250 < episode["length"] < 320
