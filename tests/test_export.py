"""soccerlab export and submit: the folder SAI accepts, its self-check, and the real SAI SDK
(sai-rl's ModelManager and TaskGymWrapper) scoring it exactly as soccerlab eval does."""

import json
import re
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from _soccer_fixtures import write_walker
from conftest import pendulum_config, run_dirs, write_config
from test_cli import one_line_error

SHOWDOWN = {"goalie_penalty_kick": 1.0, "obstacle_penalty_kick": 1.0, "kick_to_target": 1.0}


def soccer_config(out: Path, name: str, episodes: int, **env) -> dict:
    return {
        "experiment": {"name": name, "seed": 0, "output_dir": str(out)},
        "env": {"tasks": SHOWDOWN, "n_envs": 3, "max_episode_steps": 60, "normalize": True, **env},
        "algo": {"name": "ppo", "params": {"n_steps": 16, "batch_size": 48, "n_epochs": 1},
                 "policy_kwargs": {"net_arch": [32]}},
        "train": {"total_timesteps": 48, "checkpoint_every": 48, "progress_bar": False},
        "eval": {"every": 48, "episodes": episodes, "seeds": [0, 1]},
    }


def _train(out: Path, cfg: dict) -> Path:
    from soccerlab.cli import main

    assert main(["train", str(write_config(out / "c.yaml", cfg))]) == 0
    [run] = run_dirs(out)
    return run


@pytest.fixture(scope="module")
def torque_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("torque")
    # the robot falls after 270-280 steps, at different steps: the SAI loop steps ended envs on
    return _train(out, soccer_config(out, "tq", episodes=1, max_episode_steps=290, backend="fast"))


@pytest.fixture(scope="module")
def walker_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("walker")
    pt, _ = write_walker(out)
    # with the time feature: the exported model counts steps per row as the env does; with
    # kick_to_target's joints and gravity hidden from the policy, which the walker still needs
    hide = {"kick_to_target": ["joint_pos", "joint_vel", "projected_gravity", "robot_gyro"],
            "obstacle_penalty_kick": ["target_xpos_rel_robot", "defender_xpos"]}
    cfg = soccer_config(out, "wk", episodes=2, control="walker", walker={"path": str(pt)},
                        observation="heading", time_feature=True, hide=hide)
    return _train(out, cfg)


@pytest.fixture(scope="module")
def exports(torque_run, walker_run, tmp_path_factory):
    from soccerlab.cli import main

    out = tmp_path_factory.mktemp("exports")
    folders = {}
    for kind, run in (("torque", torque_run), ("walker", walker_run)):
        assert main(["export", str(run), "--out", str(out / kind)]) == 0
        folders[kind] = out / kind
    return folders


def test_export_writes_a_submittable_folder(exports):
    for kind, folder in exports.items():
        assert sorted(p.name for p in folder.iterdir()) == [
            "README.md", "action_function.py", "manifest.json", "model.pt", "preprocessor.py"]
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["control"] == kind and manifest["format"] == "torchscript"
        assert manifest["tasks"] == list(SHOWDOWN) and manifest["source"]["step"] == 48
        assert set(manifest["scores"]["tasks"]) == set(SHOWDOWN)
        assert manifest["versions"]["soccerlab"] and manifest["versions"]["sai_rl"]
        # SAI takes the first class or def after stripping imports: the Preprocessor class
        code = re.sub(r"(?m)^\s*(from\s+\w+\s+import\s+.*|import\s+\w+.*)", "",
                      (folder / "preprocessor.py").read_text())
        first = next(line for line in code.splitlines() if line.startswith(("class ", "def ")))
        assert first.startswith("class Preprocessor")
        assert "soccerlab" not in code.replace("soccerlab's", "")
    # episodes of one batch ended at different steps, so the check stepped ended envs on
    episodes = json.loads((exports["torque"] / "manifest.json").read_text())["scores"]["episodes"]
    lengths = {task: {e["length"] for s in eps.values() for e in s.values()}
               for task, eps in episodes.items()}
    assert any(len(v) > 1 for v in lengths.values()), lengths
    walker_pre = (exports["walker"] / "preprocessor.py").read_text()
    assert 'frame="heading"' in walker_pre  # the run's observation frame is the default
    manifest = json.loads((exports["walker"] / "manifest.json").read_text())
    assert manifest["observation"]["hide"]["kick_to_target"][0] == "joint_pos"


def test_the_walker_model_restarts_exactly_the_rows_whose_episode_starts(exports):
    import torch

    path = str(exports["walker"] / "model.pt")
    rng = np.random.default_rng(0)
    obs = rng.normal(0.0, 0.3, (25, 3, 89)).astype(np.float32)  # 25 env steps of 3 envs
    obs[:, :, 86:] = np.eye(3, dtype=np.float32)[0]
    obs[0, :, 12:24] = 0.0  # every env starts an episode (robot at rest)
    restarted = obs.copy()
    restarted[13, 1, 12:24] = 0.0  # env 1 starts a new one at step 13

    def play(model, steps):
        return np.stack([model(torch.from_numpy(np.ascontiguousarray(o))).numpy() for o in steps])

    both = play(torch.jit.load(path), restarted)
    alone = play(torch.jit.load(path), restarted[13:, 1:2])  # a fresh model on env 1 from there
    np.testing.assert_array_equal(both[13:, 1], alone[:, 0])
    untouched = play(torch.jit.load(path), obs)
    np.testing.assert_array_equal(both[:, [0, 2]], untouched[:, [0, 2]])
    assert not np.array_equal(both[13:, 1], untouched[13:, 1])


def _sdk_scores(folder: Path, seeds: list[int], episodes: int) -> dict[str, list[float]]:
    """Per-task scores with sai-rl's own ModelManager and TaskGymWrapper in the SAI loop."""
    import sai_mujoco  # noqa: F401
    from sai_rl.env.environment import TaskGymWrapper
    from sai_rl.model import ModelManager

    from soccerlab.envs.soccer import episode_score, get_task

    manifest = json.loads((folder / "manifest.json").read_text())
    steps = manifest["check"]["max_episode_steps"]
    manager = None
    scores: dict[str, list[float]] = {}
    for task in manifest["tasks"]:
        spec = get_task(task)
        onehot = np.eye(3, dtype=np.float32)[spec.onehot_index]

        def make(spec=spec, onehot=onehot):
            return TaskGymWrapper(gym.make(spec.env_id, max_episode_steps=steps), onehot)

        if manager is None:  # one model object for every task and batch, as the benchmark
            manager = ModelManager(make(), str(folder / "model.pt"), model_type="pytorch",
                                   preprocessor_class=str(folder / "preprocessor.py"),
                                   action_function=str(folder / "action_function.py"))
        # as sai_rl.benchmark.run_benchmark on Linux (SyncVectorEnv refuses to step ended envs)
        envs = gym.vector.AsyncVectorEnv([make for _ in seeds], shared_memory=True, copy=False,
                                         context="fork",
                                         autoreset_mode=gym.vector.AutoresetMode.DISABLED)
        per_seed = {s: [] for s in seeds}
        for batch in range(episodes):
            obs, info = envs.reset(seed=seeds if batch == 0 else None)
            done = np.zeros(len(seeds), dtype=bool)
            while not done.all():
                obs, _, term, trunc, info = envs.step(manager.get_action(obs, info))
                for i in np.flatnonzero((term | trunc) & ~done):
                    terms = {k: np.asarray(v)[i] for k, v in info["reward_terms"].items()
                             if not k.startswith("_")}
                    per_seed[seeds[i]].append(episode_score(terms, task)[0])
                done |= term | trunc
        envs.close()
        scores[task] = [s for seed in seeds for s in per_seed[seed]]
    return scores


@pytest.mark.parametrize("kind", ["torque", "walker"])
def test_the_sai_sdk_scores_the_export_as_soccerlab_eval(kind, exports, walker_run, cli, tmp_path):
    manifest = json.loads((exports[kind] / "manifest.json").read_text())
    assert manifest["check"]["episodes"] == 2  # the check plays a second batch, same model object
    # soccerlab's evaluation at export time (the torque run's is on the fast backend)
    reference = manifest["scores"]["episodes"]
    episodes = 1 if kind == "torque" else 2  # the torque episodes are long: one batch here
    expected = {task: [reference[task][str(seed)][str(k)]["score"] for seed in (0, 1)
                       for k in range(episodes)] for task in SHOWDOWN}
    assert _sdk_scores(exports[kind], [0, 1], episodes) == expected
    if kind == "walker":  # and the same as the eval command
        res = cli("eval", walker_run, "--episodes", 2, "--json", tmp_path / "eval.json")
        assert res.code == 0, res.err
        report = json.loads((tmp_path / "eval.json").read_text())
        got = {task: [e["extra"]["soccer"]["score"] for seed in (0, 1) for e in report["episodes"]
                      if e["group"] == task and e["seed"] == seed] for task in SHOWDOWN}
        assert got == expected
        for task, score in manifest["scores"]["tasks"].items():
            assert score == report["competition"]["tasks"][task]["mean_score"]


def test_an_onnx_torque_export_runs_in_the_sai_sdk(torque_run, cli, tmp_path):
    res = cli("export", torque_run, "--format", "onnx", "--out", tmp_path / "onnx")
    assert res.code == 0, res.err
    folder = tmp_path / "onnx"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"] == "model.onnx" and manifest["check"]["tolerance"]["score"] == 1e-3
    from sai_rl.model import ModelManager

    from soccerlab.envs.soccer import get_task

    env = gym.make(get_task("goalie_penalty_kick").env_id, max_episode_steps=60)
    manager = ModelManager(env, str(folder / "model.onnx"), model_type="onnx",
                           preprocessor_class=str(folder / "preprocessor.py"),
                           action_function=str(folder / "action_function.py"))
    obs, info = env.reset(seed=0)
    info["task_index"] = np.eye(3, dtype=np.float32)[0]
    action = manager.get_action(obs[None], {k: np.asarray(v)[None] for k, v in info.items()})
    assert action.shape == (1, 12) and np.all(np.abs(action) <= 45.0)
    env.close()


def test_a_check_that_fails_writes_nothing(walker_run, cli, tmp_path, monkeypatch):
    from soccerlab.export import build

    original = build.action_function_source
    monkeypatch.setattr(build, "action_function_source", lambda control: original(control).replace(
        "dtype=np.float32)", "dtype=np.float32) * 0.999"))
    res = cli("export", walker_run, "--out", tmp_path / "sub")
    assert res.code == 1, res.err
    assert "check failed, nothing written" in res.err and "soccerlab eval" in res.err
    assert len(res.err.strip().splitlines()) == 1
    assert not (tmp_path / "sub").exists() and list(tmp_path.iterdir()) == []


def test_bad_export_input_is_one_line(tmp_path, cli, torque_run, walker_run):
    pendulum = tmp_path / "pendulum"
    pendulum.mkdir()
    write_config(pendulum / "config.yaml", pendulum_config(tmp_path))
    one_line_error(cli("export", pendulum), "soccer", "Pendulum-v1")
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(torque_run / "config.yaml", empty / "config.yaml")
    one_line_error(cli("export", empty), "no model")
    (tmp_path / "taken").mkdir()
    one_line_error(cli("export", torque_run, "--out", tmp_path / "taken"), "--force")
    one_line_error(cli("export", torque_run, "--format", "tflite"), "invalid choice", "torchscript")
    one_line_error(cli("export", walker_run, "--format", "onnx"), "torchscript")
    one_line_error(cli("export", tmp_path / "nope"), "not found")


def test_submit_without_sai_key_network_or_extra_is_one_line(tmp_path, cli, exports, monkeypatch):
    import sys

    one_line_error(cli("submit", tmp_path, "--name", "x"), "not a soccerlab export")
    monkeypatch.delenv("SAI_API_KEY", raising=False)
    from sai_rl.utils import config as sai_config

    monkeypatch.setitem(sai_config.config["api"], "token", "")
    one_line_error(cli("submit", exports["torque"], "--name", "x"), "API key")
    monkeypatch.setenv("SAI_API_KEY", "not-a-key")
    monkeypatch.setitem(sai_config.config["api"], "api_url", "https://127.0.0.1:9")
    one_line_error(cli("submit", exports["torque"], "--name", "x"), "cannot reach", "offline")
    monkeypatch.setitem(sys.modules, "sai_rl", None)  # as without the extra
    one_line_error(cli("submit", exports["torque"], "--name", "x"), "soccerlab[sai]")
