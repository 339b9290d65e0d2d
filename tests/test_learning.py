"""Learning happens: SAC on Pendulum-v1 beats a random policy by a wide margin within the test."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np

from conftest import write_config


def random_policy_return(seeds: list[int]) -> float:
    returns = []
    for seed in seeds:
        env = gym.make("Pendulum-v1")
        env.action_space.seed(seed)
        env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            _, r, terminated, truncated, _ = env.step(env.action_space.sample())
            total += r
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def test_sac_learns_pendulum(tmp_path, cli):
    seeds = [0, 1, 2]
    cfg = {
        "experiment": {"name": "learn", "seed": 0, "output_dir": str(tmp_path)},
        "env": {"id": "Pendulum-v1"},
        "algo": {"name": "sac", "params": {"learning_rate": 1e-3, "learning_starts": 500, "batch_size": 128},
                 "policy_kwargs": {"net_arch": [64, 64]}},
        "train": {"total_timesteps": 4500, "checkpoint_every": None, "progress_bar": False},
        "eval": {"every": None, "episodes": 1, "seeds": seeds},
    }
    res = cli("train", write_config(tmp_path / "c.yaml", cfg))
    assert res.code == 0, res.err
    trained = json.loads((Path(res.last_line) / "best" / "metrics.json").read_text())["overall"]["mean_return"]
    random = random_policy_return(seeds)
    # a random policy scores about -1200 to -1500; swinging up and balancing is above about -200
    assert trained > -400, trained
    assert trained > random + 600, (trained, random)
