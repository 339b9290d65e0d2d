"""The time feature (``env.time_feature``), demos' ``steps`` column and DAgger (``bc.dagger``).

Tiny test walker, fast backend, short episodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _soccer_fixtures import write_walker
from conftest import read_meta, write_config
from soccerlab.envs.soccer import SoccerSpec, WalkerSpec
from soccerlab.envs.soccer.vec_env import SoccerVecEnv
from soccerlab.errors import UserError
from soccerlab.imitation.demos import load_demos

TASKS = {"goalie_penalty_kick": 1.0, "kick_to_target": 1.0}
LIMIT = 60  # env steps: 6 walker decisions per episode


@pytest.fixture(scope="module")
def walker(tmp_path_factory) -> Path:
    return write_walker(tmp_path_factory.mktemp("walker"))[0]


def spec(walker: Path, **changes) -> SoccerSpec:
    base = dict(control="walker", walker=WalkerSpec(str(walker)), backend="fast",
                max_episode_steps=LIMIT)
    return SoccerSpec(TASKS, **{**base, **changes})


def test_the_time_feature_is_the_elapsed_fraction_of_the_episode(walker):
    plain = SoccerVecEnv(spec(walker), 2, seed=0)
    timed = SoccerVecEnv(spec(walker, time_feature=True), 2, seed=0)
    try:
        assert plain.observation_space.shape == (89,) and timed.observation_space.shape == (90,)
        assert timed.get_attr("time_limit") == [LIMIT, LIMIT]
        a, b = plain.reset(), timed.reset()
        np.testing.assert_array_equal(b[:, :89], a)  # the 89 values are untouched
        np.testing.assert_array_equal(b[:, 89], [0.0, 0.0])
        actions = np.full((2, 3), 0.3, dtype=np.float32)
        for k in range(1, LIMIT // 10 + 1):
            a, _, dones, _ = plain.step(actions)
            b, _, dones_b, infos = timed.step(actions)
            np.testing.assert_array_equal(dones, dones_b)
            np.testing.assert_array_equal(b[:, :89], a)
            if k < LIMIT // 10:
                np.testing.assert_array_equal(b[:, 89], np.float32(10 * k / LIMIT))
        # the episodes hit the time limit: the last observation says 1, the new episode 0
        assert dones.all()
        assert [info["terminal_observation"][89] for info in infos] == [1.0, 1.0]
        np.testing.assert_array_equal(b[:, 89], [0.0, 0.0])
    finally:
        plain.close()
        timed.close()


def record_striker(cli, walker: Path, episodes: int, out: Path) -> Path:
    """``soccerlab demos record striker`` on both tasks, episodes of ``LIMIT`` env steps."""
    res = cli("demos", "record", "striker", "--walker", walker, "--episodes", episodes,
              "--tasks", ",".join(TASKS), "--max-steps", LIMIT, "--out", out)
    assert res.code == 0, res.err
    return out


def test_demos_record_steps_and_the_policy_sees_them_as_time(tmp_path, cli, walker):
    out = record_striker(cli, walker, 2, tmp_path / "striker.npz")
    demos = load_demos(out)
    assert demos.observations.shape[1] == 89
    for e in range(demos.n_episodes):
        rows = demos.episode == e
        np.testing.assert_array_equal(demos.steps[rows], 10 * np.arange(rows.sum()))
    obs = demos.policy_observations(LIMIT)
    assert obs.shape == (demos.n, 90)
    np.testing.assert_array_equal(obs[:, 89], (demos.steps / LIMIT).astype(np.float32))
    nxt = demos.policy_next_observations(LIMIT)
    last = demos.done
    np.testing.assert_array_equal(nxt[~last, 89], obs[np.flatnonzero(~last) + 1, 89])
    np.testing.assert_array_equal(nxt[last, 89], np.float32(1.0))  # episodes ran to the limit
    both = demos.concat(demos)
    assert both.n == 2 * demos.n and both.n_episodes == 2 * demos.n_episodes
    np.testing.assert_array_equal(both.steps[demos.n:], demos.steps)
    assert both.episode[demos.n:].min() == demos.n_episodes
    old = load_demos(out)
    old.steps = None  # a file recorded before the steps column
    with pytest.raises(UserError, match="no 'steps' column"):
        old.policy_observations(LIMIT)


def test_a_labelled_policy_records_the_experts_actions_for_the_states_it_plays(walker):
    from soccerlab.imitation.experts import make_expert
    from soccerlab.imitation.record import ExpertPolicy, LabelledPolicy, record_task

    class Stand:
        def reset(self, mask):
            pass

        def act(self, obs, infos):
            return np.zeros((len(infos), 3), dtype=np.float32)

    task = spec(walker).replace(tasks="goalie_penalty_kick")
    ranges = np.array([[-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0]])
    expert = record_task(task, lambda n: ExpertPolicy(
        make_expert("striker", ["goalie_penalty_kick"] * n, ranges)),
                         episodes=1, seed=0)[0].rows
    labelled = record_task(task, lambda n: LabelledPolicy(
        Stand(), make_expert("striker", ["goalie_penalty_kick"] * n, ranges)), episodes=1,
        seed=0)[0].rows
    # the same first state: the same label as the expert's own first action
    np.testing.assert_array_equal(labelled["observations"][0], expert["observations"][0])
    np.testing.assert_array_equal(labelled["commands"][0], expert["commands"][0])
    # the robot stood (its states differ from the expert's), and the labels still walk
    assert not np.array_equal(labelled["observations"][-1], expert["observations"][-1])
    assert np.abs(np.array(labelled["commands"])).max() > 0.1
    # DAgger's mixture at beta = 1: every decision is the expert's, the expert's own episode
    mixed = record_task(task, lambda n: LabelledPolicy(
        Stand(), make_expert("striker", ["goalie_penalty_kick"] * n, ranges), beta=1.0),
        episodes=1, seed=0)[0].rows
    np.testing.assert_array_equal(np.array(mixed["observations"]),
                                  np.array(expert["observations"]))


def test_bc_with_dagger_and_the_time_feature(tmp_path, cli, walker):
    demos_file = record_striker(cli, walker, 3, tmp_path / "striker.npz")
    demos = load_demos(demos_file)
    cfg = {
        "experiment": {"name": "dg", "seed": 0, "output_dir": str(tmp_path / "runs")},
        "env": {"tasks": TASKS, "n_envs": 2, "backend": "fast", "max_episode_steps": LIMIT,
                "control": "walker", "walker": {"path": str(walker)}, "time_feature": True,
                "normalize": {"obs": True, "reward": False}},
        "algo": {"name": "ppo", "params": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
                 "policy_kwargs": {"net_arch": [32, 32]}},
        "train": {"total_timesteps": 32, "progress_bar": False},
        "eval": {"every": None, "episodes": 1, "seeds": [0]},
        "bc": {"demos": str(demos_file), "epochs": 20, "batch_size": 16, "patience": 5,
               "dagger": {"expert": "striker", "rounds": 2, "episodes": 2, "beta": 0.5,
                          "settings": {"kick_to_target": {"foot": 0.05}}}},
    }
    res = cli("bc", write_config(tmp_path / "bc.yaml", cfg))
    assert res.code == 0, res.err
    run = Path(res.last_line)
    meta = read_meta(run)["bc"]
    rounds = meta["dagger"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    # rounds 0 and 1 label their states (2 episodes of 6 decisions per task); the last only plays
    assert [r["transitions"] for r in rounds] == [24, 24, 0]
    assert meta["transitions"] == demos.n + 48
    best = max(rounds, key=lambda r: r["mean_score"])
    assert meta["kept_round"] == best["round"]
    assert "DAgger: keeping the weights after round" in res.out
    assert f"each round's weights in {run / 'dagger'}/round-R/" in res.out
    # every round's weights stay in the run with what they scored; the kept round's are the run's
    from soccerlab.loading import load_policy

    final = load_policy(run).model.policy.state_dict()
    for r in rounds:
        assert r["model"] == f"dagger/round-{r['round']}/model.zip"
        saved = json.loads((run / r["model"]).with_name("scores.json").read_text())
        assert saved["scores"] == r["scores"] and saved["mean_score"] == r["mean_score"]
        weights = load_policy(run / r["model"]).model.policy.state_dict()
        if r["round"] == meta["kept_round"]:
            assert all(torch.equal(weights[k], final[k]) for k in final)
    stats = np.load(run / "vecnormalize.npz", allow_pickle=False)
    assert stats["obs_mean"].shape == (90,)  # the policy sees the time feature

    # the labels came from the striker with the changed setting, and the dataset says so
    assert "dagger:striker[kick_to_target.foot=0.05]" in load_demos(run / "dagger.npz").source

    for i, (dagger, fragment) in enumerate([
            ({"expert": "nobody"}, "unknown expert 'nobody'"),
            ({"expert": "striker", "settings": {"kick_to_target": {"nope": 1}}},
             "bc.dagger.settings: striker setting kick_to_target.nope: no such setting"),
            ({"expert": "chase", "settings": {"kick_to_target": {"foot": 0}}},
             "expert 'chase' has no settings")]):
        bad = dict(cfg, bc={**cfg["bc"], "dagger": dagger})
        res = cli("bc", write_config(tmp_path / f"bad{i}.yaml", bad))
        assert res.code == 2 and fragment in res.err, res.err
        assert len(res.err.strip().splitlines()) == 1


def test_the_torque_export_counts_steps_per_row_for_the_time_feature():
    import torch

    from soccerlab.export.modules import DeterministicActor, TorqueController

    class LastColumn(torch.nn.Module):  # the "policy" answers the time feature it is given
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, 89:90].expand(-1, 12)

    actor = DeterministicActor(torch.jit.trace(LastColumn(), torch.zeros(16, 90)),
                               torch.zeros(90), torch.ones(90), 1e-8, 10.0, False,
                               -torch.ones(12), torch.ones(12), False)
    module = torch.jit.script(TorqueController(actor, time_limit=100))
    obs = torch.ones(2, 89)
    obs[:, 12:24] = 0.0  # both rows start an episode (robot at rest)
    seen = [module(obs)[:, 0].tolist()]
    obs[:, 12:24] = 0.5
    for k in range(1, 4):
        if k == 3:
            obs[1, 12:24] = 0.0  # row 1 starts a new episode
        seen.append(module(obs)[:, 0].tolist())
    want = (np.array([[0, 0], [1, 1], [2, 2], [3, 0]]) / 100).astype(np.float32)  # as the env
    np.testing.assert_array_equal(np.float32(seen), want)
