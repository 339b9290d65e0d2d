"""soccerlab's training overhead: env steps/s of `soccerlab train` against a plain SB3 script.

Both sides get identical hyperparameters, envs (DummyVecEnv of Monitor(gym.make(id))), seeds and
budgets, and run in this one process, interleaved (A B B A ...), so that load on a shared machine
hits both alike. soccerlab runs with its defaults (TensorBoard logging, progress bar, callbacks)
but without periodic evaluation or checkpoints, which are extra work rather than overhead; its
rate is the one it records in meta.json (time spent in `model.learn`). Both sides use one torch
thread (soccerlab's default `train.torch_threads`), so the comparison is of the framework alone.

    python benchmarks/throughput.py                 # PPO and SAC on Pendulum-v1 and a sai env
    python benchmarks/throughput.py --quick         # small budgets, one repeat

Prints JSON: per case, the steps/s of each side (median over repeats) and soccerlab's overhead
in percent, (sb3 - soccerlab) / sb3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from soccerlab.algos import get_algo
from soccerlab.config import config_from_dict
from soccerlab.envs.factory import ensure_registered
from soccerlab.runs import RunDir
from soccerlab.training.trainer import Trainer

PARAMS = {
    "ppo": {"n_steps": 512, "batch_size": 64, "n_epochs": 4},
    "sac": {"learning_starts": 200, "buffer_size": 50_000, "batch_size": 128},
}
NET = [64, 64]
CASES = [  # (algo, env id, n_envs, steps)
    ("ppo", "Pendulum-v1", 2, 20_000),
    ("sac", "Pendulum-v1", 1, 3_000),
    ("ppo", "LowerT1KickToTarget-v0", 2, 8_192),
    ("sac", "LowerT1KickToTarget-v0", 1, 2_000),
]


def plain_sb3(algo: str, env_id: str, n_envs: int, steps: int, seed: int) -> float:
    ensure_registered(env_id)
    env = DummyVecEnv([lambda: Monitor(gym.make(env_id)) for _ in range(n_envs)])
    env.seed(seed)
    model = get_algo(algo).cls("MlpPolicy", env, seed=seed, device="cpu",
                               policy_kwargs={"net_arch": NET}, **PARAMS[algo])
    start = time.perf_counter()
    model.learn(steps)
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def soccerlab_train(algo: str, env_id: str, n_envs: int, steps: int, seed: int, out: Path) -> float:
    cfg = config_from_dict({
        "experiment": {"name": "bench", "seed": seed, "output_dir": str(out)},
        "env": {"id": env_id, "n_envs": n_envs},
        "algo": {"name": algo, "params": PARAMS[algo], "policy_kwargs": {"net_arch": NET}},
        "train": {"total_timesteps": steps, "checkpoint_every": None, "device": "cpu"},
        "eval": {"every": None, "episodes": 1, "seeds": [0]},
    })
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON report
        result = Trainer(cfg, "benchmark").run()
    return float(RunDir(result.run).read_meta()["steps_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="quarter budgets, one repeat")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 1 if args.quick else args.repeats
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for algo, env_id, n_envs, steps in CASES:
            steps = steps // 4 if args.quick else steps
            rates: dict[str, list[float]] = {"soccerlab": [], "sb3": []}
            for rep in range(repeats):
                order = ["sb3", "soccerlab"] if rep % 2 == 0 else ["soccerlab", "sb3"]
                for side in order:
                    if side == "sb3":
                        rates[side].append(plain_sb3(algo, env_id, n_envs, steps, rep))
                    else:
                        rates[side].append(soccerlab_train(algo, env_id, n_envs, steps, rep, Path(tmp)))
            sl, sb = statistics.median(rates["soccerlab"]), statistics.median(rates["sb3"])
            results[f"{algo}/{env_id}"] = {
                "n_envs": n_envs, "steps": steps, "repeats": repeats,
                "soccerlab_steps_per_s": round(sl, 1), "sb3_steps_per_s": round(sb, 1),
                "overhead_percent": round(100 * (sb - sl) / sb, 2),
                "all": {k: [round(x, 1) for x in v] for k, v in rates.items()},
            }
            print(json.dumps({f"{algo}/{env_id}": results[f"{algo}/{env_id}"]}), file=sys.stderr,
                  flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
