"""Behaviour cloning (``soccerlab bc``), warm starts from it, and demos in the replay buffer.

The demonstrations are the scripted chase under walker control (tiny test walker, fast
backend, short episodes), recorded here through ``SoccerVecEnv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _soccer_fixtures import write_walker
from conftest import read_meta, write_config
from soccerlab.envs.soccer import SoccerSpec, WalkerSpec, chase_action
from soccerlab.envs.soccer.vec_env import SoccerVecEnv
from soccerlab.imitation.demos import Demos, load_demos

TASKS = {"goalie_penalty_kick": 1.0, "kick_to_target": 1.0}


def record_chase(walker: Path, seed: int, steps: int, reward: str = "shaped") -> Demos:
    """The chase expert on two envs (one per task) for ``steps`` agent steps."""
    spec = SoccerSpec(TASKS, control="walker", walker=WalkerSpec(str(walker)), reward=reward,
                      backend="fast", max_episode_steps=200)
    venv = SoccerVecEnv(spec, 2, seed=seed)
    ranges = venv.batch.walker.config.command_ranges
    rows: dict[str, list] = {k: [] for k in ("observations", "commands", "done", "next",
                                             "rewards", "terminated", "task", "episode")}
    episodes: list[dict] = []
    current = [0, 1]
    obs = venv.reset()
    infos = list(venv.reset_infos)
    try:
        for _ in range(steps):
            actions = np.stack([chase_action(info, ranges) for info in infos])
            next_obs, rewards, dones, new_infos = venv.step(actions)
            for i in range(2):
                rows["observations"].append(obs[i])
                rows["commands"].append(actions[i])
                rows["done"].append(dones[i])
                rows["next"].append(new_infos[i]["terminal_observation"] if dones[i] else next_obs[i])
                rows["rewards"].append(rewards[i])
                rows["terminated"].append(dones[i] and not new_infos[i]["TimeLimit.truncated"])
                rows["task"].append(i)
                rows["episode"].append(current[i])
                if dones[i]:
                    episodes.append({"id": current[i], **new_infos[i]["soccer"]})
                    current[i] = max(current) + 1
            infos = [venv.reset_infos[i] if dones[i] else new_infos[i] for i in range(2)]
            obs = next_obs
    finally:
        venv.close()
    finished = {e["id"]: e for e in episodes}
    keep = np.isin(rows["episode"], list(finished))  # only whole episodes
    ids = sorted(finished)
    renumber = {old: new for new, old in enumerate(ids)}
    n = int(keep.sum())
    return Demos(
        observations=np.array(rows["observations"])[keep],
        actions=np.zeros((n, 12)), done=np.array(rows["done"])[keep],
        commands=np.array(rows["commands"])[keep],
        next_observations=np.array(rows["next"])[keep],
        rewards=np.array(rows["rewards"])[keep], terminated=np.array(rows["terminated"])[keep],
        task_index=np.array(rows["task"])[keep],
        episode=np.array([renumber[e] for e in np.array(rows["episode"])[keep]]),
        tasks=tuple(TASKS), episode_task=[list(TASKS).index(finished[i]["task"]) for i in ids],
        episode_score=[finished[i]["score"] for i in ids],
        episode_success=[finished[i]["success"] for i in ids],
        episode_fallen=[finished[i]["fallen"] for i in ids],
        episode_length=[finished[i]["length"] for i in ids],
        control="walker", frame="world", reward_mode=reward, source="chase",
        command_ranges=ranges)


@pytest.fixture(scope="module")
def walker(tmp_path_factory) -> Path:
    return write_walker(tmp_path_factory.mktemp("walker"))[0]


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory, walker) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("demos")
    train = record_chase(walker, seed=0, steps=160).save(folder / "chase.npz")
    held_out = record_chase(walker, seed=1000, steps=60).save(folder / "held_out.npz")
    return train, held_out


def config(out: Path, walker: Path, demos: Path, algo_name: str = "ppo", **sections) -> dict:
    params = ({"n_steps": 16, "batch_size": 32, "n_epochs": 1} if algo_name == "ppo" else
              {"learning_starts": 0, "buffer_size": 2000, "batch_size": 32})
    cfg = {
        "experiment": {"name": "bc", "seed": 0, "output_dir": str(out)},
        "env": {"tasks": TASKS, "n_envs": 2, "backend": "fast", "max_episode_steps": 200,
                "control": "walker", "walker": {"path": str(walker)}, "reward": "shaped",
                "normalize": {"obs": True, "reward": False}},
        "algo": {"name": algo_name, "params": params, "policy_kwargs": {"net_arch": [64, 64]}},
        "train": {"total_timesteps": 64, "checkpoint_every": 32, "progress_bar": False},
        "eval": {"every": None, "episodes": 1, "seeds": [0]},
        "bc": {"demos": str(demos), "epochs": 150, "batch_size": 64, "patience": 30},
    }
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def test_demos_round_trip_without_pickle(demo_files):
    demos = load_demos(demo_files[0])
    assert demos.n > 100 and demos.n_episodes >= 4 and demos.control == "walker"
    assert set(np.unique(demos.task_index)) == {0, 1}
    assert np.all(demos.episode_score <= 10) and demos.observations.shape[1] == 89
    with np.load(demo_files[0], allow_pickle=False) as data:  # plain arrays only
        assert {"observations", "actions", "done"} <= set(data.files)
    kept = demos.select_episodes(demos.episode_score > np.median(demos.episode_score))
    assert 0 < kept.n_episodes < demos.n_episodes and kept.episode.max() == kept.n_episodes - 1


def test_a_policy_reads_demos_with_the_configs_hidden_blocks(demo_files):
    """``env.hide`` applies to stored demos as to the env: kick_to_target rows lose their
    target, goalie rows keep everything; the stored arrays are untouched."""
    from soccerlab.envs.soccer.behaviour.observation import observation_slices

    demos = load_demos(demo_files[0])
    hide = {"kick_to_target": ["target_xpos_rel_robot"]}
    block = observation_slices()["target_xpos_rel_robot"]
    kick = np.array(demos.tasks)[demos.task_index] == "kick_to_target"
    assert kick.any() and (~kick).any()
    assert np.abs(demos.observations[kick, block]).max() > 1.0
    for seen, stored in ((demos.policy_observations(None, hide), demos.observations),
                         (demos.policy_next_observations(None, hide), demos.next_observations)):
        np.testing.assert_array_equal(seen[kick, block], 0.0)
        np.testing.assert_array_equal(seen[~kick], stored[~kick])
        np.testing.assert_array_equal(np.delete(seen[kick], block, axis=1),
                                      np.delete(stored[kick], block, axis=1))
    assert np.abs(demos.observations[kick, block]).max() > 1.0


def test_bc_imitates_and_rl_warm_starts_with_its_normalizer(tmp_path, cli, walker, demo_files):
    from soccerlab.algos import build_model
    from soccerlab.envs.factory import make_training_env
    from soccerlab.loading import load_policy

    cfg_file = write_config(tmp_path / "bc.yaml", config(tmp_path / "runs", walker, demo_files[0]))
    res = cli("bc", cfg_file)
    assert res.code == 0, res.err
    run = Path(res.last_line)
    assert run.name.startswith("bc-bc-") and (run / "model.zip").is_file()
    meta = read_meta(run)
    assert meta["kind"] == "bc" and meta["status"] == "finished"
    assert meta["bc"]["best_epoch"] > 0 and meta["bc"]["val_rows"] > 0
    assert "competition score" in res.out  # the final evaluation ran
    demos = load_demos(demo_files[0])
    stats = np.load(run / "vecnormalize.npz", allow_pickle=False)
    np.testing.assert_allclose(stats["obs_mean"], demos.observations.astype(np.float64).mean(0),
                               rtol=1e-9, atol=1e-12)

    # on states it never saw, the clone acts more like the expert than an untrained policy
    held = load_demos(demo_files[1])
    loaded = load_policy(run)
    obs = loaded.vecnorm.normalize_obs(held.observations)
    bc_error = np.mean((loaded.model.predict(obs, deterministic=True)[0] - held.commands) ** 2)
    from soccerlab.config import load_config

    rl_cfg = load_config(cfg_file)
    venv = make_training_env(rl_cfg, seed=0)
    try:
        fresh = build_model(rl_cfg, venv, "cpu")
        fresh_error = np.mean((fresh.predict(obs, deterministic=True)[0] - held.commands) ** 2)
    finally:
        venv.close()
    assert bc_error < 0.5 * fresh_error, (bc_error, fresh_error)

    # RL from the clone: its weights and its normaliser statistics
    res = cli("train", cfg_file, f"algo.init.path={run}")
    assert res.code == 0, res.err
    assert "warm start: loaded" in res.out and "normaliser statistics from" in res.out
    rl_run = Path(res.last_line)
    after = np.load(rl_run / "vecnormalize.npz", allow_pickle=False)
    assert float(after["obs_count"]) >= demos.n + 64  # started from the demos' count
    res = cli("train", "--resume", run, "train.total_timesteps=128")
    assert res.code == 2 and "behaviour-cloning run" in res.err

    # env.normalize.freeze_obs: RL keeps the clone's observation statistics as they are
    res = cli("train", cfg_file, f"algo.init.path={run}", "env.normalize.freeze_obs=true")
    assert res.code == 0, res.err
    frozen = np.load(Path(res.last_line) / "vecnormalize.npz", allow_pickle=False)
    for key in ("obs_mean", "obs_var", "obs_count"):
        np.testing.assert_array_equal(frozen[key], stats[key])


def test_demos_in_the_replay_buffer_survive_resume(tmp_path, cli, walker, demo_files):
    import pickle

    demos = load_demos(demo_files[0])
    cfg = config(tmp_path / "runs", walker, demo_files[0], algo_name="sac",
                 algo={"demos": {"path": str(demo_files[0]), "batch_share": 0.5}})
    cfg_file = write_config(tmp_path / "sac.yaml", cfg)
    res = cli("train", cfg_file)
    assert res.code == 0, res.err
    assert f"demos: loaded {demos.n} of {demos.n} transitions" in res.out
    run = Path(res.last_line)
    with open(run / "checkpoints" / "64" / "replay_buffer.pkl", "rb") as f:
        buffer = pickle.load(f)  # noqa: S301 - the run this test just wrote
    assert buffer.demo_size == demos.n and buffer.batch_share == 0.5
    batch = buffer.sample(32)
    assert batch.observations.shape == (32, 89)
    res = cli("train", "--resume", run, "train.total_timesteps=96")
    assert res.code == 0, res.err
    with open(run / "checkpoints" / "96" / "replay_buffer.pkl", "rb") as f:
        assert pickle.load(f).demo_size == demos.n  # noqa: S301


def test_bad_bc_and_demo_configs_are_one_line_errors(tmp_path, cli, walker, demo_files):
    out = tmp_path / "runs"
    cases = [
        (config(out, walker, demo_files[0], bc={"demos": str(tmp_path / "none.npz")}),
         "bc", "demos file not found"),
        (config(out, walker, demo_files[0], env={"control": "torque", "walker": None}),
         "bc", "recorded under walker control"),
        (config(out, walker, demo_files[0], env={"observation": "heading"}), "bc",
         "world-frame observations"),
        (config(out, walker, demo_files[0], algo={"demos": {"path": str(demo_files[0])}}),
         "train", "warm-start on-policy algorithms"),
        (config(out, walker, demo_files[0], env={"walker": {
            "path": str(walker), "command_ranges": {"vx": [-0.2, 0.2]}}}), "bc",
         "walker command ranges"),
        (config(out, walker, demo_files[0], algo_name="sac", env={"reward": "progress"},
                algo={"demos": {"path": str(demo_files[0])}}), "train", "env.reward: shaped"),
    ]
    for i, (cfg, command, fragment) in enumerate(cases):
        res = cli(command, write_config(tmp_path / f"c{i}.yaml", cfg))
        assert res.code == 2 and fragment in res.err, (i, res.err)
        assert len(res.err.strip().splitlines()) == 1, res.err
    no_bc = config(out, walker, demo_files[0])
    del no_bc["bc"]
    res = cli("bc", write_config(tmp_path / "nobc.yaml", no_bc))
    assert res.code == 2 and "no bc: section" in res.err
    assert not out.exists()


def test_a_decaying_bc_term_keeps_ppo_near_the_demos(tmp_path, cli, walker, demo_files):
    from soccerlab.imitation.bc_term import BCTerm
    from soccerlab.loading import load_policy

    demos = load_demos(demo_files[0])
    errors = {}
    for name, algo in (("plain", {}), ("term", {"bc_term": {
            "demos": str(demo_files[0]), "learning_rate": 3e-3, "until": 1000, "steps": 50}})):
        cfg = config(tmp_path / name, walker, demo_files[0], algo=algo)
        res = cli("train", write_config(tmp_path / f"{name}.yaml", cfg))
        assert res.code == 0, res.err
        assert ("bc term: " in res.out) == (name == "term")
        loaded = load_policy(Path(res.last_line) / "model.zip")
        obs = loaded.vecnorm.normalize_obs(demos.observations)
        errors[name] = np.mean((loaded.model.predict(obs, deterministic=True)[0]
                                - demos.commands) ** 2)
    assert errors["term"] < 0.25 * errors["plain"], errors
    term = BCTerm(demos.observations, demos.commands, 1e-3, 1000, 8, None, 0)
    assert term.rate(0) == 1e-3 and term.rate(500) == 5e-4 and term.rate(1000) == 0.0
