"""End-to-end training runs on tiny budgets: the run directory contract, determinism,
interrupts, crashes and exact resume."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import pendulum_config, read_meta, run_dirs, start_cli, write_config


def rows(run: Path) -> list[dict]:
    with open(run / "evaluations.csv") as f:
        return list(csv.DictReader(f))


def scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_sac_run_directory_contract(tmp_path, cli):
    cfg = pendulum_config(tmp_path, "sac", env={"normalize": True},
                          train={"total_timesteps": 600, "checkpoint_every": 200, "keep_checkpoints": 2},
                          eval={"every": 200})
    res = cli("train", write_config(tmp_path / "c.yaml", cfg))
    assert res.code == 0, res.err
    [run] = run_dirs(tmp_path)
    assert res.last_line == str(run)
    assert run.parent == tmp_path / "Pendulum-v1" / "sac" and run.name.startswith("t-")
    for name in ("config.yaml", "meta.json", "model.zip", "vecnormalize.pkl", "best/model.zip",
                 "best/vecnormalize.pkl", "evaluations.csv"):
        assert (run / name).is_file(), name
    assert sorted(int(p.name) for p in (run / "checkpoints").iterdir()) == [400, 600]  # keep the last 2
    for name in ("model.zip", "replay_buffer.pkl", "vecnormalize.pkl", "state.json"):
        assert (run / "checkpoints" / "600" / name).is_file()
    meta = read_meta(run)
    assert meta["status"] == "finished" and meta["timesteps"] == 600 and meta["seed"] == 0
    assert meta["versions"]["stable_baselines3"] and meta["started_at"] and meta["ended_at"]
    assert [int(r["step"]) for r in rows(run)] == [200, 400, 600]
    assert "final evaluation" in res.out and "mean ± std" not in res.err
    # the resolved config is re-runnable as is
    again = cli("train", run / "config.yaml", "train.total_timesteps=200", "eval.every=null")
    assert again.code == 0, again.err


def test_models_are_plain_sb3_zips(tmp_path, cli):
    res = cli("train", write_config(tmp_path / "c.yaml", pendulum_config(tmp_path, "sac")))
    run = Path(res.last_line)
    code = ("import sys; from stable_baselines3 import SAC; m = SAC.load(sys.argv[1]); "
            "assert 'soccerlab' not in sys.modules; print(m.num_timesteps)")
    out = subprocess.run([sys.executable, "-c", code, str(run / "model.zip")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "512"


def test_same_config_and_seed_give_the_same_evaluations(tmp_path, cli):
    path = write_config(tmp_path / "c.yaml", pendulum_config(tmp_path / "runs", "ppo"))
    a, b = Path(cli("train", path).last_line), Path(cli("train", path).last_line)
    assert a != b
    scores = [[r["score"] for r in rows(run)] for run in (a, b)]
    assert scores[0] == scores[1] and len(scores[0]) == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_resume_continues(tmp_path, sig, cli):
    # the env signals its own process at its 150th step: both slots are there at step 300
    # (no evaluation runs before: eval.every=null)
    arm = tmp_path / "arm"
    arm.touch()
    cfg = pendulum_config(tmp_path, "sac", env={
        "id": "testenvs:SignalPendulum-v0", "normalize": True,
        "kwargs": {"signum": sig.name, "at": 150, "arm": str(arm)}},
        train={"total_timesteps": 1_000_000, "checkpoint_every": 100_000}, eval={"every": None})
    proc = start_cli("train", write_config(tmp_path / "c.yaml", cfg))
    out, err = proc.communicate(timeout=300)
    [run] = run_dirs(tmp_path)
    assert proc.returncode == 130, err
    assert f"soccerlab train --resume {run}" in err and "Traceback" not in err
    meta = read_meta(run)
    [(step, ckpt)] = [(int(p.name), p) for p in (run / "checkpoints").iterdir()]
    assert meta["status"] == "interrupted" and meta["timesteps"] == step == 300
    saved_norm = _pickle_load(ckpt / "vecnormalize.pkl")

    # resume for 300 more steps: model, optimiser, replay buffer, normaliser and counter restored
    from soccerlab.config import load_config
    from soccerlab.training.trainer import Trainer

    cfg2 = load_config(run / "config.yaml", [f"train.total_timesteps={step + 300}"])
    trainer = Trainer(cfg2, "test", run=_open(run), checkpoint=ckpt)
    trainer._build()
    model = trainer.model
    # SB3 calls callbacks before storing a step's transition, so stopping drops that one step
    assert model.num_timesteps == step and step // 2 - 1 <= model.replay_buffer.size() <= step // 2
    np.testing.assert_array_equal(trainer.vecnorm.obs_rms.mean, saved_norm.obs_rms.mean)
    assert model.actor.optimizer.state_dict()["state"], "optimiser state was not restored"
    trainer.venv.close()
    res = cli("train", "--resume", run, f"train.total_timesteps={step + 300}")
    assert res.code == 0, res.err
    meta = read_meta(run)
    assert meta["status"] == "finished" and meta["timesteps"] == step + 300
    assert meta["resumes"][0]["from_step"] == step


def test_crash_then_resume_keeps_curves_without_overlap(tmp_path, cli):
    """SIGKILL after an evaluation that follows the last checkpoint: resuming from that checkpoint
    re-does the lost steps; TensorBoard and evaluations.csv must not show them twice."""
    # one training env, killed at its 800th step: after the evaluation at 768 and before the
    # checkpoint at 1024 (the evaluation env's own count is 600 by then: 200 per evaluation)
    arm = tmp_path / "arm"
    arm.touch()
    cfg = pendulum_config(tmp_path, "ppo", env={
        "id": "testenvs:SignalPendulum-v0", "n_envs": 1,
        "kwargs": {"signum": "SIGKILL", "at": 800, "arm": str(arm)}},
        train={"total_timesteps": 100_000, "checkpoint_every": 512}, eval={"every": 256})
    proc = start_cli("train", write_config(tmp_path / "c.yaml", cfg))
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    [run] = run_dirs(tmp_path)
    assert [int(r["step"]) for r in rows(run)] == [256, 512, 768]
    assert [s for s, _ in scalars(run, "eval/mean_reward")] == [256, 512, 768]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["512"]
    assert read_meta(run)["status"] == "running"  # killed: nobody could write anything else
    res = cli("train", "--resume", run, "train.total_timesteps=1024")
    assert res.code == 0, res.err
    steps = [int(r["step"]) for r in rows(run)]
    assert steps == [256, 512, 768, 1024]
    tb_steps = [s for s, _ in scalars(run, "eval/mean_reward")]
    assert tb_steps == [256, 512, 768, 1024]


def test_exception_saves_emergency_checkpoint_and_marks_failed(tmp_path):
    cfg = pendulum_config(tmp_path, "ppo", env={"id": "testenvs:CrashingPendulum-v0", "n_envs": 1,
                                                "kwargs": {"crash_at": 300}},
                          train={"checkpoint_every": 100_000})
    proc = start_cli("train", write_config(tmp_path / "c.yaml", cfg))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    [run] = run_dirs(tmp_path)
    meta = read_meta(run)
    assert meta["status"] == "failed" and "simulated simulator crash" in meta["error"]
    assert "Traceback" not in err and "simulated simulator crash" in err
    assert "simulated simulator crash" in (run / "error.log").read_text()
    assert [p.name for p in (run / "checkpoints").iterdir()] == [str(meta["timesteps"])]


def test_resume_refuses_incompatible_config_and_leaves_run_untouched(tmp_path, cli):
    res = cli("train", write_config(tmp_path / "c.yaml", pendulum_config(tmp_path, "ppo")))
    run = Path(res.last_line)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    bad = cli("train", "--resume", run, "algo.params.gamma=0.5", "train.total_timesteps=2000")
    assert bad.code == 2 and "cannot resume: algo.params" in bad.err and len(bad.err.splitlines()) == 1
    done = cli("train", "--resume", run)
    assert done.code == 2 and "already reached 512 steps" in done.err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_user_error_after_the_envs_exist_closes_them(tmp_path, cli, monkeypatch):
    """train.validation is refused for PPO once the envs are built: the subprocess workers must
    not outlive the error."""
    from soccerlab.training import trainer

    built = []

    def spy(*args, **kwargs):
        built.append(make(*args, **kwargs))
        return built[-1]

    make = trainer.make_training_env
    monkeypatch.setattr(trainer, "make_training_env", spy)
    cfg = pendulum_config(tmp_path, "ppo", env={"vec_env": "subproc", "n_envs": 2},
                          train={"validation": {"every": 100}})
    try:
        res = cli("train", write_config(tmp_path / "c.yaml", cfg))
        assert res.code == 2 and "train.validation is supported for" in res.err
        [venv] = built
        assert venv.closed and not any(p.is_alive() for p in venv.processes)
        assert run_dirs(tmp_path) == []
    finally:
        for venv in built:
            if not venv.closed:
                venv.close()


def _pickle_load(path):
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)


def _open(run):
    from soccerlab.runs import RunDir

    return RunDir.open(run)


def test_subprocess_env_runs(tmp_path, cli):
    """env.vec_env: subproc runs each env in its own process, with one torch thread and Ctrl-C
    left to the main process (which must still reach its workers to save a checkpoint)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    cfg = pendulum_config(tmp_path, "ppo", env={"id": "testenvs:ProbePendulum-v0",
                                                "vec_env": "subproc", "n_envs": 2,
                                                "kwargs": {"report_dir": str(reports)}},
                          train={"total_timesteps": 256})
    res = cli("train", write_config(tmp_path / "c.yaml", cfg))
    assert res.code == 0, res.err
    assert read_meta(Path(res.last_line))["timesteps"] == 256
    assert json.loads((Path(res.last_line) / "best" / "metrics.json").read_text())["step"] == 256
    found = [json.loads(p.read_text()) for p in reports.iterdir()]
    workers = [r for r in found if r["pid"] != os.getpid()]  # the evaluation env runs here
    assert len({r["pid"] for r in workers}) == len(workers) == 2
    assert all(r["torch_threads"] == 1 and r["sigint_ignored"] for r in workers), workers
