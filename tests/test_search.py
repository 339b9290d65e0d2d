"""``soccerlab search``: random search of a run's deterministic score, written as a new run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _soccer_fixtures import write_walker
from conftest import one_line_error, pendulum_config, write_config

TASKS = {"goalie_penalty_kick": 1.0, "kick_to_target": 1.0}


def eval_json(cli, run: Path, path: Path) -> dict:
    res = cli("eval", run, "--json", path)
    assert res.code == 0, res.err
    return json.loads(path.read_text())


def test_last_layer_search_improves_the_score_and_the_copy_keeps_it(tmp_path, cli):
    cfg = write_config(tmp_path / "p.yaml", pendulum_config(
        tmp_path / "runs", eval={"every": None, "episodes": 1, "seeds": [0, 1]}))
    res = cli("train", cfg, "train.total_timesteps=256")
    assert res.code == 0, res.err
    run = Path(res.last_line)
    out = tmp_path / "searched"
    res = cli("search", run, "--out", out, "--seeds", "0,1", "--iterations", "3",
              "--noise", "0.3", "--step", "0.1")
    assert res.code == 0, res.err
    assert res.last_line == str(out)
    result = json.loads((out / "search.json").read_text())
    # the search scored on the eval seeds here, so the report is the search's own best
    assert result["after"]["score"] > result["before"]["score"]
    assert result["after"]["score"] == pytest.approx(result["searches"]["all"]["best"])
    # `soccerlab eval` of the copy plays the searched weights; the source run is untouched
    searched = eval_json(cli, out, tmp_path / "a.json")["score"]
    source = eval_json(cli, run, tmp_path / "b.json")["score"]
    assert searched == pytest.approx(result["after"]["score"])
    assert source == pytest.approx(result["before"]["score"])
    assert not (out / "checkpoints").exists() and (run / "checkpoints").is_dir()
    # its curves: TensorBoard in the copy, drawn by `soccerlab report`
    from soccerlab.report import read_scalars

    steps, best = read_scalars(out / "tb")["search/all/best"]
    assert steps.tolist() == [0, 1, 2, 3] and best[-1] == pytest.approx(result["after"]["score"])
    assert np.all(np.diff(best) >= 0) and best[0] == pytest.approx(result["before"]["score"])
    res = cli("report", out, "--out", tmp_path / "report")
    assert res.code == 0, res.err
    assert (tmp_path / "report" / "search.png").is_file()

    # check seeds: a new best must also beat the kept one on them; search.json and the curves
    # hold what the kept candidates scored there
    checked = tmp_path / "checked"
    res = cli("search", run, "--out", checked, "--seeds", "0,1", "--check-seeds", "2-3",
              "--iterations", "2", "--noise", "0.3", "--step", "0.1")
    assert res.code == 0, res.err
    found = json.loads((checked / "search.json").read_text())["searches"]["all"]
    assert found["history"][0]["check"] == found["start_check"]
    played = [c[2] for row in found["history"][1:] for c in row["checked"]]
    assert found["best_check"] == max([found["start_check"], *played])  # the best one played
    assert "search/all/best_check" in read_scalars(checked / "tb")
    one_line_error(cli("search", run, "--out", tmp_path / "v", "--seeds", "0,1",
                       "--check-seeds", "1,2"), "--check-seeds", "differ")
    assert not (tmp_path / "v").exists()

    # a run stopped before its final model: the search starts from its latest checkpoint and the
    # copy holds the searched model as its final one
    import shutil

    crashed = tmp_path / "crashed"
    shutil.copytree(run, crashed)
    shutil.rmtree(crashed / "best", ignore_errors=True)
    for name in ("model.zip", "vecnormalize.npz", "vecnormalize.pkl"):
        (crashed / name).unlink(missing_ok=True)
    res = cli("search", crashed, "--out", tmp_path / "from_checkpoint", "--seeds", "0,1",
              "--iterations", "1")
    assert res.code == 0, res.err
    assert (tmp_path / "from_checkpoint" / "model.zip").is_file()
    assert not (tmp_path / "from_checkpoint" / "checkpoints").exists()
    found = json.loads((tmp_path / "from_checkpoint" / "search.json").read_text())
    assert "checkpoints" in found["source"]
    assert eval_json(cli, tmp_path / "from_checkpoint", tmp_path / "c.json")["score"] == \
        pytest.approx(found["after"]["score"])

    # a model inside a complete run (a checkpoint here; a BC run's DAgger rounds the same): the
    # copy's final model is the searched one, and the run's best model, which it is not, is gone
    checkpoint = sorted((run / "checkpoints").iterdir())[0] / "model.zip"
    inside = tmp_path / "from_inside"
    res = cli("search", checkpoint, "--out", inside, "--seeds", "0,1", "--iterations", "1")
    assert res.code == 0, res.err
    assert not (inside / "best").exists() and not (inside / "checkpoints").exists()
    found = json.loads((inside / "search.json").read_text())
    assert found["source"] == str(checkpoint)
    assert eval_json(cli, inside, tmp_path / "d.json")["score"] == \
        pytest.approx(found["after"]["score"])
    assert eval_json(cli, checkpoint, tmp_path / "e.json")["score"] == \
        pytest.approx(found["before"]["score"])
    one_line_error(cli("search", checkpoint, "--out", run / "checkpoints" / "x"), "inside the run")
    one_line_error(cli("search", cfg, "--out", tmp_path / "w"), "not a run")

    one_line_error(cli("search", run, "--out", out), "exists")
    one_line_error(cli("search", run, "--out", tmp_path / "x", "--space", "task"),
                   "space task", "soccer")
    one_line_error(cli("search", tmp_path / "nothing", "--out", tmp_path / "y"), "not a run")
    one_line_error(cli("search", run, "--out", run / "inside"), "inside the run")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_task_search_changes_only_its_own_task(tmp_path, cli):
    walker = write_walker(tmp_path)[0]
    cfg = write_config(tmp_path / "s.yaml", {
        "experiment": {"name": "s", "seed": 0, "output_dir": str(tmp_path / "runs")},
        "env": {"tasks": TASKS, "n_envs": 2, "backend": "fast", "max_episode_steps": 150,
                "control": "walker", "walker": {"path": str(walker)}, "time_feature": True,
                "normalize": {"obs": True, "reward": False}},
        "algo": {"name": "ppo", "params": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
                 "policy_kwargs": {"net_arch": [32, 32]}},
        "train": {"total_timesteps": 128, "checkpoint_every": 64, "progress_bar": False},
        "eval": {"every": None, "episodes": 1, "seeds": [0, 1]},
    })
    res = cli("train", cfg)
    assert res.code == 0, res.err
    run = Path(res.last_line)
    out = tmp_path / "searched"
    res = cli("search", run, "--out", out, "--space", "task", "--tasks", "goalie_penalty_kick",
              "--seeds", "0,1", "--iterations", "2", "--pairs", "2", "--noise", "1.0",
              "--step", "0.5")
    assert res.code == 0, res.err
    result = json.loads((out / "search.json").read_text())
    goalie = result["searches"]["goalie_penalty_kick"]
    assert list(result["searches"]) == ["goalie_penalty_kick"]
    assert goalie["best"] > goalie["start"]  # the search found a better goalie policy
    before, after = result["before"]["tasks"], result["after"]["tasks"]
    assert after["goalie_penalty_kick"] == pytest.approx(goalie["best"])
    # the other task plays bit for bit as it did when the search started (after the one-hot was
    # re-expressed, which rounding alone may change)
    assert after["kick_to_target"] == result["isolated"]["tasks"]["kick_to_target"]
    assert before["goalie_penalty_kick"] == goalie["start"]  # 0 and 1: search and eval seeds

    # the copy's weights differ from the source's only in the first layer's goalie column + bias
    from soccerlab.loading import load_policy

    a = load_policy(run).model.policy.state_dict()
    b = load_policy(out).model.policy.state_dict()
    changed = [k for k in a if not np.array_equal(a[k].numpy(), b[k].numpy())]
    assert changed == ["mlp_extractor.policy_net.0.weight", "mlp_extractor.policy_net.0.bias"]
    cols = np.flatnonzero(np.any(a[changed[0]].numpy() != b[changed[0]].numpy(), axis=0))
    assert cols.tolist() == [86]  # goalie's one-hot slot
    # the normaliser's one-hot means are 0 now (the first bias took the difference); the copy
    # keeps its statistics only as plain arrays
    folder = load_policy(out).path.parent
    with np.load(folder / "vecnormalize.npz", allow_pickle=False) as data:
        assert np.all(data["obs_mean"][86:89] == 0.0) and data["obs_mean"][89] > 0
    assert not (folder / "vecnormalize.pkl").exists()

    # both tasks, two processes: each task's search is the same as alone (its own directions,
    # the same start), and the two shifts add up without touching each other's episodes
    both = tmp_path / "both"
    res = cli("search", run, "--out", both, "--space", "task", "--seeds", "0-1", "--iterations",
              "2", "--pairs", "2", "--noise", "1.0", "--step", "0.5", "--jobs", "2")
    assert res.code == 0, res.err
    two = json.loads((both / "search.json").read_text())
    def untimed(found: dict) -> dict:
        return {**found, "history": [{k: v for k, v in row.items() if k != "seconds"}
                                     for row in found["history"]]}

    assert untimed(two["searches"]["goalie_penalty_kick"]) == untimed(goalie)
    for task, found in two["searches"].items():
        assert two["after"]["tasks"][task] == pytest.approx(found["best"])

    one_line_error(cli("search", run, "--out", tmp_path / "z", "--space", "task", "--tasks",
                       "obstacle_penalty_kick"), "obstacle_penalty_kick", "the run's tasks")


def test_a_worker_stops_when_its_search_is_gone(monkeypatch, capsys):
    import os

    from soccerlab.training import search

    exits = []
    monkeypatch.setattr(os, "_exit", lambda code: exits.append(code))
    search.worker_progress(os.getppid(), "iteration 1/2")
    assert exits == [] and "iteration 1/2" in capsys.readouterr().out
    search.worker_progress(os.getppid() + 100000, "iteration 2/2")  # not our parent any more
    assert exits == [1]


def test_check_seeds_keep_only_candidates_that_beat_the_kept_one_there_too():
    from soccerlab.training.search import Params, random_search
    from soccerlab.training.search_settings import SearchSettings

    def search(check=None):
        params = Params(apply=lambda theta: None, theta0=np.zeros(3), scale=1.0)
        settings = SearchSettings(iterations=4, pairs=2, noise=0.5, step=0.2)
        return random_search(lambda theta: float(theta[0]), params, settings,
                             np.random.default_rng(0), check=check)

    alone = search()
    assert alone.found_at > 0 and alone.best_theta[0] > 0  # the search seeds reward +x
    # check seeds that agree keep the same candidate; each one checked was a new best
    agreeing = search(check=lambda theta: float(theta[0]))
    assert np.array_equal(agreeing.best_theta, alone.best_theta)
    assert agreeing.best_check == pytest.approx(alone.best_score)
    # check seeds that punish what the search seeds reward: the start is kept, and the
    # history says which candidates were played on them and what they scored there
    opposed = search(check=lambda theta: -float(theta[0]))
    assert opposed.found_at == 0 and np.array_equal(opposed.best_theta, np.zeros(3))
    assert opposed.best_score == 0.0 and opposed.best_check == 0.0
    checked = [c for row in opposed.history[1:] for c in row["checked"]]
    assert checked and all(score < 0 for _, _, score in checked)
    assert opposed.history[0]["check"] == 0.0
