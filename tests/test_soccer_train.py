"""Soccer through the whole pipeline: config -> multi-task training -> competition evaluation."""

import csv
import json
from pathlib import Path

import pytest

from _soccer_fixtures import write_walker
from conftest import run_dirs, write_config
from test_train import scalars

SHOWDOWN = {"goalie_penalty_kick": 1.0, "obstacle_penalty_kick": 1.0, "kick_to_target": 1.0}


def soccer_config(out: Path, walker_path: Path | None, **env) -> dict:
    env_cfg = {"tasks": SHOWDOWN, "n_envs": 3, "max_episode_steps": 300, "normalize": True}
    if walker_path is not None:
        env_cfg.update(control="walker", walker={"path": str(walker_path)}, reward="shaped")
    env_cfg.update(env)
    return {
        "experiment": {"name": "s", "seed": 0, "output_dir": str(out)},
        "env": env_cfg,
        "algo": {"name": "ppo", "params": {"n_steps": 16, "batch_size": 48, "n_epochs": 1},
                 "policy_kwargs": {"net_arch": [32]}},
        "train": {"total_timesteps": 96, "checkpoint_every": 48, "progress_bar": False},
        "eval": {"every": 48, "episodes": 1, "seeds": [0]},
    }


@pytest.fixture(scope="module")
def walker(tmp_path_factory) -> Path:
    pt, _ = write_walker(tmp_path_factory.mktemp("walker"))
    return pt


@pytest.fixture(scope="module")
def showdown_run(tmp_path_factory, walker):
    from soccerlab.cli import main

    out = tmp_path_factory.mktemp("showdown")
    assert main(["train", str(write_config(out / "c.yaml", soccer_config(out, walker)))]) == 0
    [run] = run_dirs(out)
    return run


def test_multitask_walker_run_is_scored_by_the_competition(showdown_run):
    run = showdown_run
    assert run.parent.parent.name == "showdown"
    with open(run / "evaluations.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [48, 96]
    for row in rows:
        tasks = [float(row[f"comp/{t}"]) for t in SHOWDOWN]
        assert float(row["comp/overall"]) == pytest.approx(sum(tasks) / 3)
        assert float(row["score"]) == float(row["comp/overall"])  # selection uses the score
        assert all(-3.5 < s < 5 for s in tasks)
    best = json.loads((run / "best" / "metrics.json").read_text())
    assert best["score"] == max(float(r["score"]) for r in rows)
    assert [s for s, _ in scalars(run, "comp/overall")] == [48, 96]
    assert [s for s, _ in scalars(run, "comp/kick_to_target")] == [48, 96]


def test_training_episodes_are_scored_per_task(showdown_run):
    # episodes end every 30 decisions (max_episode_steps 300 env steps): 32 decisions per slot
    per_task = {t: dict(scalars(showdown_run, f"rollout/comp/{t}")) for t in SHOWDOWN}
    overall = dict(scalars(showdown_run, "rollout/comp/overall"))
    assert overall and all(per_task[t].keys() == overall.keys() for t in SHOWDOWN)
    for step, value in overall.items():
        tasks = [per_task[t][step] for t in SHOWDOWN]
        assert value == pytest.approx(sum(tasks) / 3, abs=1e-6)
        assert all(-3.5 < v < 5 for v in tasks)
    falls = dict(scalars(showdown_run, "rollout/fall_rate/goalie_penalty_kick"))
    assert all(0.0 <= v <= 1.0 for v in falls.values())


def test_eval_reports_every_task_and_overall(showdown_run, cli, tmp_path):
    res = cli("eval", showdown_run, "--episodes", "1", "--seeds", "0,1", "--json", tmp_path / "r.json")
    assert res.code == 0, res.err
    for task in SHOWDOWN:
        assert task in res.out
    assert "competition score:" in res.out and "equal task weights" in res.out
    comp = json.loads((tmp_path / "r.json").read_text())["competition"]
    assert set(comp["tasks"]) == set(SHOWDOWN)
    for t in comp["tasks"].values():
        assert t["n_episodes"] == 2 and {"success_rate", "fall_rate", "mean_length"} <= set(t)
    means = [t["mean_score"] for t in comp["tasks"].values()]
    assert comp["overall"]["score"] == pytest.approx(sum(means) / 3)


def test_task_weights_change_the_overall_score(showdown_run, cli, tmp_path):
    from soccerlab.evaluation import Episode, EvalReport

    eps = [Episode(t, 0, 0.0, 10, False, {"soccer": {"task": t, "score": s, "success": False,
                                                      "fallen": False, "length": 10}})
           for t, s in (("goalie_penalty_kick", -1.0), ("kick_to_target", 1.0))]
    assert EvalReport(eps).score == pytest.approx(0.0)
    assert EvalReport(eps, task_weights={"goalie_penalty_kick": 3, "kick_to_target": 1}).score == \
        pytest.approx(-0.5)


def test_play_films_the_robot_with_the_tracking_camera(showdown_run, cli, tmp_path):
    import imageio.v2 as imageio
    import numpy as np

    video = tmp_path / "goal.mp4"
    res = cli("play", showdown_run, "--video", video, "--width", "160", "--height", "120")
    assert res.code == 0, res.err
    reader = imageio.get_reader(video, format="FFMPEG")
    frames = [f for f in reader]
    reader.close()
    # walker control: one frame per agent step (50 Hz); the episode is 300 env steps = 30 steps
    assert len(frames) == 31 and frames[0].shape == (120, 160, 3)
    # the robot fills the picture: the frame is far from a uniform field of grass
    assert np.std(frames[0].astype(float)) > 20


def test_single_task_torque_training_with_competition_reward(tmp_path, cli):
    cfg = soccer_config(tmp_path, None, tasks={"penalty_kick": 1.0}, n_envs=1, reward="competition")
    cfg["train"].update(total_timesteps=64, checkpoint_every=None)
    cfg["eval"].update(every=None)
    cfg["algo"]["params"].update(n_steps=32, batch_size=32)
    res = cli("train", write_config(tmp_path / "c.yaml", cfg))
    assert res.code == 0, res.err
    assert Path(res.last_line).parent.parent.name == "penalty_kick"
    assert "penalty_kick" in res.out and "competition score" in res.out


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"tasks": {"goalie_penalty_kik": 1}}, "did you mean 'goalie_penalty_kick'"),
        ({"tasks": {"goalkeeper": 1}}, "crashes at construction"),
        ({"control": "walker", "walker": None}, "walker needs env.walker.path"),
        ({"control": "walker", "walker": {"path": "/nope/walker.pt"}}, "/nope/walker.pt"),
        ({"backend": "fast", "vec_env": "subproc"}, "env.vec_env: dummy"),
        ({"backend": "fast", "n_envs": 2}, "need at least 3 envs"),
        ({"backend": "sai", "n_envs": 2}, "need at least 3 envs"),
        ({"assignment": "sample"}, "assignment"),
        ({"backend": "fast", "kwargs": {"team": 1}}, "need env.backend: sai"),
        ({"tasks": {"goalie_penalty_kick": 0}}, "must not all be zero"),
    ],
)
def test_bad_soccer_configs_are_one_line_errors(tmp_path, cli, env, fragment):
    cfg = soccer_config(tmp_path / "runs", None, **env)
    res = cli("train", write_config(tmp_path / "c.yaml", cfg))
    assert res.code == 2 and fragment in res.err and len(res.err.strip().splitlines()) == 1, res.err
    assert not (tmp_path / "runs").exists()


def test_tasks_command_lists_the_registry(cli):
    res = cli("tasks")
    assert res.code == 0
    lines = res.out.splitlines()
    order = [next(i for i, line in enumerate(lines) if line.startswith(t)) for t in
             ("goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target", "penalty_kick")]
    assert order == sorted(order)
    assert "LowerT1KickToTarget-v0" in res.out and "45->89" in res.out
    assert "goalkeeper" in res.out and "crashes at construction" in res.out
    assert "ball_vel_twd_goal=1.5" in res.out
