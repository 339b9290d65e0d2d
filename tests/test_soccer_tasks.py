"""Task registry: order, indices, scoring weights, errors, the table."""

from __future__ import annotations

import pytest

from soccerlab.envs.soccer.behaviour.tasks import (
    COMPETITION_TASKS,
    TASKS,
    available_tasks,
    format_task_table,
    get_task,
)
from soccerlab.errors import UserError


def test_competition_tasks_in_sai_order():
    assert COMPETITION_TASKS == ("goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target")
    for index, name in enumerate(COMPETITION_TASKS):
        task = get_task(name)
        assert task.competition_index == index
        assert task.onehot_index == index
        assert task.unified_obs_size == 89
    assert [get_task(n).raw_obs_size for n in COMPETITION_TASKS] == [45, 54, 39]


def test_the_task_table_shows_the_time_limits_the_envs_use():
    from soccerlab.envs.soccer.backends.base import registered_time_limit

    for name in (*COMPETITION_TASKS, "penalty_kick"):
        task = get_task(name)
        assert task.max_episode_steps == registered_time_limit(task.env_id), name


def test_penalty_kick_uses_goalie_onehot_and_weights():
    pk, goalie = get_task("penalty_kick"), get_task("goalie_penalty_kick")
    assert pk.competition_index is None
    assert pk.onehot_index == 0
    assert dict(pk.score_weights) == dict(goalie.score_weights)
    assert pk.max_episode_steps == 1000


def test_scoring_weights_match_the_website_table():
    goalie = dict(get_task("goalie_penalty_kick").score_weights)
    assert goalie == {
        "robot_distance_ball": 0.25, "ball_vel_twd_goal": 1.5, "goal_scored": 2.5,
        "offside": -3.0, "ball_hits": -0.2, "robot_fallen": -1.5, "ball_blocked": -0.5,
        "steps": -1.0,
    }  # fmt: skip
    assert dict(get_task("kick_to_target").score_weights) == {
        "success": 2.0, "distance": 0.5, "offside": -1.0, "steps": -0.3
    }  # fmt: skip


def test_env_id_lookup():
    assert get_task("LowerT1KickToTarget-v0").name == "kick_to_target"


def test_goalkeeper_unavailable_with_reason():
    assert "goalkeeper" in TASKS and not TASKS["goalkeeper"].available
    assert "goalkeeper" not in available_tasks()
    with pytest.raises(UserError, match="unavailable.*crashes at construction"):
        get_task("goalkeeper")


def test_unknown_task_suggests_closest():
    with pytest.raises(UserError, match="did you mean 'kick_to_target'"):
        get_task("kick_to_targt")
    with pytest.raises(UserError, match="unknown soccer task 'zzz'") as err:
        get_task("zzz")
    assert "did you mean" not in str(err.value)


def test_task_table_lists_every_task_and_weights():
    table = format_task_table()
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["task", "env", "id"]
    for task in TASKS.values():
        assert task.env_id in table
    row = next(line for line in lines if line.startswith("obstacle_penalty_kick "))
    assert "54->89" in row and "5000" in row and row.rstrip().endswith("yes")
    assert "kick_to_target: success=2 distance=0.5 offside=-1 steps=-0.3" in table
    assert "goalkeeper: LowerT1GoalKeeper-v0 crashes" in table
    assert "goalkeeper" not in format_task_table(include_unavailable=False)
