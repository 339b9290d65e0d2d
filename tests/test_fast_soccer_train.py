"""``soccerlab train`` on ``env.backend: fast`` reproduces the sai-mujoco run exactly.

Same config and seed on both backends (three tasks in one VecEnv, walker control with the tiny
TorchScript walker, shaped reward, VecNormalize, PPO): the envs give identical values, so the
learner makes identical updates and evaluation (per task, on the same backend) gives identical
scores. Checked: every ``evaluations.csv`` value but the wall-clock time, the final policy
weights and the VecNormalize statistics.
"""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest
import torch

from _soccer_fixtures import write_walker
from conftest import run_dirs, write_config
from test_soccer_train import soccer_config


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from soccerlab.cli import main

    walker, _ = write_walker(tmp_path_factory.mktemp("walker"))
    out = {}
    for backend in ("sai", "fast"):
        root = tmp_path_factory.mktemp(backend)
        cfg = soccer_config(root, walker, backend=backend, max_episode_steps=200)
        assert main(["train", str(write_config(root / "c.yaml", cfg))]) == 0
        [out[backend]] = run_dirs(root)
    return out


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "evaluations.csv") as f:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]


def test_fast_backend_training_and_evaluation_equal_sai(runs):
    sai, fast = _rows(runs["sai"]), _rows(runs["fast"])
    assert [r["step"] for r in sai] == ["48", "96"]
    assert {"comp/goalie_penalty_kick", "comp/obstacle_penalty_kick",
            "comp/kick_to_target", "comp/overall"} <= set(sai[0])
    assert fast == sai


def test_fast_backend_learns_the_same_weights(runs):
    from stable_baselines3 import PPO

    sai, fast = (PPO.load(runs[b] / "model.zip", device="cpu") for b in ("sai", "fast"))
    for (name, a), (_, b) in zip(sai.policy.state_dict().items(),
                                 fast.policy.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    stats = [pickle.loads((runs[b] / "vecnormalize.pkl").read_bytes()) for b in ("sai", "fast")]
    assert (stats[0].obs_rms.mean == stats[1].obs_rms.mean).all()
    assert (stats[0].ret_rms.var == stats[1].ret_rms.var).all()
