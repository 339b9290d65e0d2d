"""soccerlab train --seeds: one run per seed in a group folder, and the group's summary."""

import json
from pathlib import Path

import pytest

from conftest import pendulum_config, write_config
from soccerlab.seeds import mean_ci, t975


def test_mean_and_95_percent_interval():
    stats = mean_ci([1.0, 2.0, 3.0])
    assert stats["mean"] == 2.0 and stats["std"] == 1.0
    assert stats["ci95"] == pytest.approx(4.303 / 3 ** 0.5)
    assert mean_ci([5.0]) == {"n": 1, "mean": 5.0, "std": None, "ci95": None}
    assert t975(1) == 12.706 and t975(11) == t975(10) and t975(1000) == 1.96


def test_seed_group_runs_every_seed_and_summarises(tmp_path, cli):
    out = tmp_path / "runs"
    config = write_config(tmp_path / "c.yaml", pendulum_config(out))
    res = cli("train", config, "train.total_timesteps=256", "--seeds", "0,1", "--parallel", "2")
    assert res.code == 0, res.err
    group = Path(res.last_line)
    assert group.parent == out / "Pendulum-v1" / "ppo" and group.name.startswith("t-seeds-")
    info = json.loads((group / "group.json").read_text())
    summary = json.loads((group / "summary.json").read_text())
    assert info["seeds"] == [0, 1] and set(info["runs"]) == {"0", "1"}
    for seed, run in info["runs"].items():
        meta = json.loads((Path(run) / "meta.json").read_text())
        assert meta["seed"] == int(seed) and meta["status"] == "finished"
        assert Path(run).is_relative_to(group) and Path(run).name.startswith(f"seed-{seed}-")
    finals = [summary["runs"][s]["final"] for s in ("0", "1")]
    assert summary["final_score"]["n"] == 2
    assert summary["final_score"]["mean"] == pytest.approx(sum(finals) / 2)
    assert summary["best_score"]["ci95"] is not None
    assert "final score:" in res.out and "95% CI, n=2" in res.out


def test_seed_group_bad_input_is_one_line_exit_2(tmp_path, cli):
    out = tmp_path / "runs"
    config = write_config(tmp_path / "c.yaml", pendulum_config(out))
    for args, fragment in [
        (["train.total_timestep=5", "--seeds", "0,1"], "unknown key 'train.total_timestep'"),
        (["--seeds", "0,0"], "repeats a seed"),
        (["env.id=Pendulum-v9", "--seeds", "0"], "unknown env id 'Pendulum-v9'"),  # found by the run
        (["--seeds", "0", "--resume", str(tmp_path)], "cannot be combined"),
    ]:
        res = cli("train", config, *args)
        assert res.code == 2, (args, res.err)
        lines = res.err.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], res.err
    assert not out.exists() or not list(out.rglob("meta.json"))
