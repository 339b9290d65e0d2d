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
    return _train(out, soccer_config(out, "tq", episodes=1))


@pytest.fixture(scope="module")
def walker_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("walker")
    pt, _ = write_walker(out)
    # two episodes per seed: the exported model is reused for a second batch of episodes
    cfg = soccer_config(out, "wk", episodes=2, control="walker", walker={"path": str(pt)},
                        observation="heading")
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
    walker_pre = (exports["walker"] / "preprocessor.py").read_text()
    assert 'frame="heading"' in walker_pre  # the run's observation frame is the default


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
        envs = gym.vector.SyncVectorEnv([make for _ in seeds],
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
def test_the_sai_sdk_scores_the_export_as_soccerlab_eval(kind, exports, torque_run, walker_run,
                                                         cli, tmp_path):
    run = {"torque": torque_run, "walker": walker_run}[kind]
    episodes = 1 if kind == "torque" else 2
    res = cli("eval", run, "--json", tmp_path / "eval.json")
    assert res.code == 0, res.err
    report = json.loads((tmp_path / "eval.json").read_text())
    expected = {task: [] for task in SHOWDOWN}
    for seed in (0, 1):
        for ep in report["episodes"]:
            if ep["seed"] == seed:
                expected[ep["group"]].append(ep["extra"]["soccer"]["score"])
    assert _sdk_scores(exports[kind], [0, 1], episodes) == expected
    manifest = json.loads((exports[kind] / "manifest.json").read_text())
    for task, score in manifest["scores"]["tasks"].items():
        assert score == report["competition"]["tasks"][task]["mean_score"]


def test_a_check_that_fails_writes_nothing(torque_run, cli, tmp_path, monkeypatch):
    from soccerlab.export import build

    original = build.action_function_source
    monkeypatch.setattr(build, "action_function_source",
                        lambda control: original(control).replace("* limits", "* limits * 0.999"))
    res = cli("export", torque_run, "--out", tmp_path / "sub")
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
