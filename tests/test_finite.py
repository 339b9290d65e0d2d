"""A NaN or inf from an env ends its episode as truncated, never the run (envs/finite.py)."""

import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import testenvs  # noqa: F401 - registers NonFinitePendulum-v0
from conftest import pendulum_config, read_meta, write_config
from soccerlab.envs.finite import FiniteGuard
from soccerlab.evaluation import run_episodes

NEVER = 10**9  # an `every` no test reaches


def make(**kwargs):
    return lambda: Monitor(gym.make("NonFinitePendulum-v0", **kwargs))


def pair(*env_kwargs, seed=0):
    """The same envs, plain and guarded, seeded alike."""
    plain = DummyVecEnv([make(**kw) for kw in env_kwargs])
    guarded = FiniteGuard(DummyVecEnv([make(**kw) for kw in env_kwargs]))
    plain.seed(seed)
    guarded.seed(seed)
    return plain, guarded


def step_both(plain, guarded, n):
    """n steps with zero actions on both; returns the last step of each and the guarded
    observations before it."""
    zeros = np.zeros((plain.num_envs, 1), dtype=np.float32)
    plain.reset()
    g_obs = guarded.reset()
    for _ in range(n):
        before = g_obs
        p, g = plain.step(zeros), guarded.step(zeros)
        g_obs = g[0]
    return p, g, before


@pytest.mark.parametrize("what, value", [("obs", "nan"), ("both", "-inf")])
def test_nonfinite_observation_truncates_with_the_last_finite_one(what, value, capsys):
    plain, guarded = pair({"every": 1, "at": 5, "what": what, "value": value}, {"every": NEVER})
    (p_obs, p_rew, p_done, _), (obs, rew, done, infos), before = step_both(plain, guarded, 5)
    assert not np.isfinite(p_obs[0]).all() and not p_done[0]  # what the env returned
    assert done.tolist() == [True, False] and rew[0] == 0.0
    assert infos[0]["TimeLimit.truncated"] and infos[0]["nonfinite"]
    np.testing.assert_array_equal(infos[0]["terminal_observation"], before[0])
    assert np.isfinite(obs).all()
    env0 = guarded.venv.envs[0].unwrapped
    assert (env0.episode, env0.t) == (1, 0)  # reset on its own
    # the other env is untouched
    np.testing.assert_array_equal(obs[1], p_obs[1])
    assert rew[1] == p_rew[1] and "terminal_observation" not in infos[1]
    assert guarded.count == 1
    for _ in range(5):  # the next episode is bad too: counted, not reported again
        guarded.step(np.zeros((2, 1), dtype=np.float32))
    assert guarded.count == 2
    assert capsys.readouterr().err.count("warning: training env 0 returned a non-finite") == 1


def test_nonfinite_reward_truncates_with_the_steps_own_observation():
    plain, guarded = pair({"every": 1, "at": 5, "what": "reward", "value": "inf"})
    (p_obs, p_rew, _, _), (_, rew, done, infos), _ = step_both(plain, guarded, 5)
    assert p_rew[0] == np.inf and rew[0] == 0.0 and done[0] and infos[0]["TimeLimit.truncated"]
    np.testing.assert_array_equal(infos[0]["terminal_observation"], p_obs[0])
    assert guarded.count == 1


def test_nonfinite_at_the_episodes_last_step():
    """The env ends the episode itself (time limit) with a NaN terminal observation and reward:
    the terminal observation is replaced, and Monitor's episode record (NaN return) dropped."""
    plain, guarded = pair({"every": 1, "at": 200, "what": "both"})
    (_, _, p_done, p_infos), (obs, rew, done, infos), before = step_both(plain, guarded, 200)
    assert p_done[0] and np.isnan(p_infos[0]["episode"]["r"])
    assert done[0] and rew[0] == 0.0 and infos[0]["TimeLimit.truncated"]
    assert "episode" not in infos[0]
    np.testing.assert_array_equal(infos[0]["terminal_observation"], before[0])
    assert np.isfinite(obs).all() and guarded.count == 1


def test_nonfinite_first_observation_resets_again():
    # every 2nd episode starts with a NaN observation: the auto-reset after episode 0
    plain, guarded = pair({"every": 2, "at": 0})
    (_, _, _, p_infos), (obs, rew, done, infos), _ = step_both(plain, guarded, 200)
    assert done[0] and np.isfinite(obs).all() and np.isfinite(rew).all()
    episode = {k: infos[0]["episode"][k] for k in "rl"}  # episode 0 itself was fine
    assert episode == {k: p_infos[0]["episode"][k] for k in "rl"}
    assert guarded.venv.envs[0].unwrapped.episode == 2 and guarded.count == 1
    # and at an explicit reset: episode 3 is bad as well
    assert np.isfinite(guarded.reset()).all() and guarded.count == 2


def test_env_that_never_recovers_raises():
    guarded = FiniteGuard(DummyVecEnv([make(every=1, at=0)]), max_resets=3)
    with pytest.raises(RuntimeError, match="non-finite first observation 3 times"):
        guarded.reset()


def test_vecnormalize_statistics_stay_finite():
    venv = VecNormalize(FiniteGuard(DummyVecEnv([make(every=2, at=30, what="both"),
                                                 make(every=3, at=0)])))
    venv.seed(0)
    obs = venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(700):
        obs, rew, _, infos = venv.step(rng.uniform(-2, 2, (2, 1)).astype(np.float32))
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert all(np.isfinite(i.get("terminal_observation", 0.0)).all() for i in infos)
    for stat in (venv.obs_rms.mean, venv.obs_rms.var, venv.ret_rms.mean, venv.ret_rms.var):
        assert np.isfinite(stat).all()
    assert venv.venv.count >= 4


def test_guard_is_transparent_to_evaluation_seeds():
    def predict(obs):
        return np.zeros((len(obs), 1), dtype=np.float32)

    runs = []
    for venv in (DummyVecEnv([make(every=NEVER)] * 2),
                 FiniteGuard(DummyVecEnv([make(every=NEVER)] * 2), "evaluation")):
        runs.append([(e.seed, e.ret) for e in run_episodes(predict, venv, [3, 4], 1, "g")])
    assert runs[0] == runs[1] and runs[0][0][1] != runs[0][1][1]


def _finite(x) -> bool:
    if isinstance(x, torch.Tensor):
        return bool(torch.isfinite(x).all())
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.inexact):
        return bool(np.isfinite(x).all())
    return True


@pytest.mark.slow
@pytest.mark.parametrize("algo, what", [("sac", "obs"), ("ppo", "reward")])
def test_training_survives_nonfinite_values(tmp_path, cli, monkeypatch, algo, what):
    """Every 3rd episode returns NaN at its 50th step: each training env hits it once (at its
    step 450 of 512), the evaluation once (its 3rd episode, at step 512). The run finishes;
    nothing non-finite reaches a buffer or the normaliser."""
    from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer

    added = []
    for cls in (ReplayBuffer, RolloutBuffer):
        def add(self, *args, _add=cls.add, **kwargs):
            added.append(all(_finite(a) for a in (*args, *kwargs.values())))
            return _add(self, *args, **kwargs)

        monkeypatch.setattr(cls, "add", add)
    cfg = pendulum_config(tmp_path, algo, env={
        "id": "testenvs:NonFinitePendulum-v0", "normalize": True,
        "kwargs": {"every": 3, "at": 50, "what": what}},
        train={"total_timesteps": 1024, "checkpoint_every": 512})
    res = cli("train", write_config(tmp_path / "c.yaml", cfg))
    assert res.code == 0, res.err
    run = Path(res.last_line)
    meta = read_meta(run)
    assert meta["status"] == "finished" and meta["timesteps"] == 1024
    assert len(added) == 1024 // 2 and all(added)
    with open(run / "vecnormalize.pkl", "rb") as f:
        norm = pickle.load(f)
    for stat in (norm.obs_rms.mean, norm.obs_rms.var, norm.ret_rms.mean, norm.ret_rms.var):
        assert np.isfinite(stat).all()
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    counts = [e.value for e in acc.Scalars("rollout/nonfinite_episodes")]
    assert counts[-1] == 2 and counts == sorted(counts)
    assert np.isfinite([e.value for e in acc.Scalars("rollout/ep_rew_mean")]).all()
    assert res.err.count("warning: training env") == 1
    assert res.err.count("warning: evaluation env") == 1
    lengths = [e.value for e in acc.Scalars("eval/mean_ep_length")]
    assert lengths == [200, 50, 200, 200]  # the evaluation's bad episode ended at its step 50
