"""``SoccerVecEnv`` on the fast backend against the same on the sai backend, value for value.

Same spec, same seeds, same random actions; observations, rewards, dones, every info value (sai's fields,
``reward_terms``, ``soccer`` records, ``task``, ``TimeLimit.truncated``,
``terminal_observation``, Monitor's return and length) and reset infos must be equal with
``==`` (no tolerance) over many steps across terminations, truncations, seedless resets that
continue each env's stream, and a mid-run reseed. Every showdown task and penalty_kick, one
and three tasks per VecEnv, torque and walker control (the tiny TorchScript walker; episodes
ending inside a 10-step walker tick included), reward modes env, competition, shaped and
progress, world- and heading-frame observations.
"""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor

from _soccer_fixtures import write_walker
from soccer_parity import run_soccer_parity
from soccerlab.envs.soccer import SoccerSpec, WalkerSpec
from soccerlab.envs.soccer.vec_env import SoccerVecEnv
from soccerlab.errors import UserError

SHOWDOWN = {"goalie_penalty_kick": 1.0, "obstacle_penalty_kick": 1.0, "kick_to_target": 1.0}


@pytest.fixture(scope="module")
def walker(tmp_path_factory) -> str:
    pt, _ = write_walker(tmp_path_factory.mktemp("walker"))
    return str(pt)


def _check(rep, tasks, mid_step_ends: bool = False) -> None:
    assert rep.ok, "\n".join(rep.mismatches)
    assert rep.terminated >= 1, "no episode ended by termination"
    assert rep.truncated >= 1, "no episode ended by truncation"
    assert set(rep.tasks) == set(tasks), f"episodes per task: {dict(rep.tasks)}"
    assert rep.outcomes["fallen"] >= 1
    if mid_step_ends:
        assert rep.mid_step_ends >= 1, "no episode ended inside a walker tick"


@pytest.mark.parametrize(("tasks", "n_envs", "reward", "observation"), [
    (SHOWDOWN, 4, "env", "world"),
    (SHOWDOWN, 3, "shaped", "heading"),
    ({"penalty_kick": 1.0}, 2, "competition", "world"),
])
def test_torque_control_matches_sai(tasks, n_envs, reward, observation):
    rep = run_soccer_parity(tasks, n_envs, 360, control="torque", reward=reward,
                            observation=observation, max_episode_steps=170, reseed_at=180)
    _check(rep, tasks)


@pytest.mark.parametrize(("tasks", "n_envs", "reward", "observation"), [
    (SHOWDOWN, 3, "progress", "heading"),
    (SHOWDOWN, 4, "competition", "world"),
    ({"penalty_kick": 1.0}, 2, "env", "heading"),
])
def test_walker_control_matches_sai(walker, tasks, n_envs, reward, observation):
    rep = run_soccer_parity(tasks, n_envs, 75, control="walker", reward=reward, walker=walker,
                            observation=observation, max_episode_steps=250, reseed_at=50)
    _check(rep, tasks, mid_step_ends=True)


def test_bad_specs_are_user_errors(walker):
    with pytest.raises(UserError, match="need at least 3 envs"):
        SoccerVecEnv(SoccerSpec(SHOWDOWN, backend="fast"), 2)
    with pytest.raises(UserError, match="env.kwargs"):
        SoccerSpec("kick_to_target", backend="fast", env_kwargs={"team": 1})
    with pytest.raises(UserError, match="needs a walker"):
        SoccerSpec("kick_to_target", control="walker")
    with pytest.raises(UserError, match="unavailable"):
        SoccerSpec("goalkeeper")
    with pytest.raises(UserError, match="backend"):
        SoccerSpec("kick_to_target", backend="gpu")


@pytest.mark.parametrize("backend", ["fast", "sai"])
def test_vec_env_plumbing(walker, backend):
    spec = SoccerSpec("penalty_kick", control="walker", walker=WalkerSpec(walker),
                      backend=backend, max_episode_steps=20)
    venv = SoccerVecEnv(spec, 2)
    try:
        assert venv.get_attr("render_mode") == [None, None]
        assert venv.get_attr("task", 1)[0].name == "penalty_kick"
        assert venv.env_is_wrapped(Monitor) == [True, True]
        np.testing.assert_array_equal(venv.get_attr("command_ranges")[0][1], [-0.5, 0.5])
        calls = [lambda: venv.env_method("close"), lambda: venv.set_attr("x", 1)]
        if backend == "fast":
            calls += [venv.render, venv.get_images]
        for call in calls:
            with pytest.raises(UserError):
                call()
        venv.set_options({"anything": 1})
        with pytest.raises(UserError, match="reset options"):
            venv.reset()
    finally:
        venv.close()


@pytest.mark.parametrize("backend", ["fast", "sai"])
def test_one_env_resets_alone_and_the_finite_guard_uses_it(backend):
    """env_method("reset", indices=[i]) restarts env i only (as a fresh VecEnv seeded so would);
    FiniteGuard then turns a NaN reward on a soccer env into a truncated episode."""
    from soccerlab.envs.finite import FiniteGuard

    spec = SoccerSpec(SHOWDOWN, backend=backend, max_episode_steps=40)
    venv, fresh = SoccerVecEnv(spec, 3, seed=0), SoccerVecEnv(spec, 3, seed=0)
    try:
        venv.reset()
        zero = np.zeros((3, 12), dtype=np.float32)
        before, *_ = venv.step(zero)
        [(first, info)] = venv.env_method("reset", seed=11, indices=[1])
        fresh._seeds = [0, 11, 2]  # noqa: SLF001 - env 1 seeded 11 at the next reset
        assert np.array_equal(first, fresh.reset()[1]) and info["task"] == "obstacle_penalty_kick"
        after, *_ = venv.step(zero)
        assert venv.get_attr("episode_length") == [2, 1, 2]  # env steps, torque control
        assert not np.array_equal(after[0], before[0])  # env 0 carried on from where it was

        guarded = FiniteGuard(venv)
        guarded.reset()
        real_step = venv.batch.step

        def nan_once(actions):
            out = real_step(actions)
            out.reward[2] = np.nan
            venv.batch.step = real_step
            return out

        venv.batch.step = nan_once
        obs, rewards, dones, infos = guarded.step(zero)
        assert dones.tolist() == [False, False, True] and rewards[2] == 0.0
        assert infos[2]["TimeLimit.truncated"] and infos[2]["nonfinite"]
        assert guarded.count == 1 and np.isfinite(obs).all()
    finally:
        venv.close()
        fresh.close()
