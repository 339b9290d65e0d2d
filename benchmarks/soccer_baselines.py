"""Scripted baselines on the three competition tasks, scored like the website.

Prints JSON ``{"zero": {task: score}, "stand": {...}, "chase": {...}}`` (mean competition score
over ``--episodes`` episodes with seeds ``--seed``, ``--seed`` + 1, ...):

- ``zero``: zero torques (the robot falls at step ~278);
- ``stand``: the joystick walker with a zero command (stands for the whole episode);
- ``chase``: the walker driven by ``chase_command`` (turn toward the ball, walk into it).

Per-task details (success and fall rates, lengths, time) go to stderr.

    PYTHONPATH=src MUJOCO_GL=osmesa python benchmarks/soccer_baselines.py --episodes 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from soccerlab.envs.soccer import (
    COMPETITION_TASKS,
    SoccerSpec,
    WalkerSpec,
    aggregate_episodes,
    chase_action,
    load_walker,
)
from soccerlab.envs.soccer.vec_env import SoccerGymEnv

DEFAULT_WALKER = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "walker" / "booster_gym_T1.pt"
)


def play(env, policy, seed: int) -> dict:
    """One episode; ``policy(info) -> action``. Returns the env's ``info["soccer"]`` record."""
    _, info = env.reset(seed=seed)
    while True:
        _, _, terminated, truncated, info = env.step(policy(info))
        if terminated or truncated:
            return info["soccer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3, help="episodes per task and policy")
    parser.add_argument(
        "--walker", default=str(DEFAULT_WALKER), help="walker .pt (YAML next to it)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument("--backend", default="fast", choices=("fast", "sai"),
                        help="physics backend (identical values; fast is several times faster)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one small MLP per 10 env steps: threads only add overhead
    walker = WalkerSpec(str(Path(args.walker).resolve()))
    ranges = load_walker(walker).config.command_ranges
    policies = {
        "zero": ("torque", lambda info: np.zeros(12, dtype=np.float32)),
        "stand": ("walker", lambda info: np.zeros(3, dtype=np.float32)),
        "chase": ("walker", lambda info: chase_action(info, ranges)),
    }
    result: dict[str, dict[str, float]] = {}
    for name, (control, policy) in policies.items():
        result[name] = {}
        for task in COMPETITION_TASKS:
            env = SoccerGymEnv(SoccerSpec(task, control=control, backend=args.backend,
                                          walker=walker if control == "walker" else None))
            start = time.perf_counter()
            episodes = [play(env, policy, args.seed + i) for i in range(args.episodes)]
            env.close()
            report = aggregate_episodes(episodes)["tasks"][task]
            result[name][task] = round(report["mean_score"], 4)
            print(
                f"{name:5s} {task:22s} score {report['mean_score']:+.3f} (std {report['std_score']:.3f}) "
                f"success {report['success_rate']:.2f} fall {report['fall_rate']:.2f} "
                f"length {report['mean_length']:.0f} [{time.perf_counter() - start:.1f}s]",
                file=sys.stderr,
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
