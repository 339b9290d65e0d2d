"""Scripted baselines and experts on the three competition tasks, scored like the website.

Policies (``--policies``, default all):

- ``zero``: zero torques (the robot falls at step ~278);
- ``stand``: the joystick walker with a zero command (stands for the whole episode);
- ``chase``: the walker driven by ``chase_command`` (turn toward the ball, walk into it);
- ``striker``: the tuned scripted expert (``soccerlab.imitation.experts``): line up behind the
  ball toward the task's aim point, then push.

Every task, episodes with seeds ``--seed`` .. ``--seed`` + ``--episodes`` - 1 (deterministic:
episode i plays seed + i whatever runs beside it), full-length episodes. Prints JSON on stdout:
``{policy: {task: {mean, std, min, max, success_rate, fall_rate, mean_length, scores},
"overall": mean over tasks}, "seeds": [...], "seconds": wall time}``; one line per policy and
task on stderr.

    PYTHONPATH=src MUJOCO_GL=osmesa python benchmarks/soccer_baselines.py --episodes 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from soccerlab.envs.soccer import COMPETITION_TASKS, SoccerSpec, WalkerSpec, load_walker
from soccerlab.envs.soccer.behaviour.walker_load import parse_command_ranges
from soccerlab.imitation.experts import make_expert
from soccerlab.imitation.record import ExpertPolicy, record_task

DEFAULT_WALKER = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "walker" / "booster_gym_T1.pt"
)
POLICIES = ("zero", "stand", "chase", "striker")


class Constant:
    """A policy that always outputs zeros of width ``dim``."""

    def __init__(self, n: int, dim: int) -> None:
        self.action = np.zeros((n, dim), dtype=np.float32)

    def reset(self, mask: np.ndarray) -> None:
        pass

    def act(self, obs, infos) -> np.ndarray:
        return self.action


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10, help="episodes (seeds) per task")
    parser.add_argument("--walker", default=str(DEFAULT_WALKER), help="walker .pt (YAML next to it)")
    parser.add_argument("--command-range", action="append", default=[], metavar="AXIS=LOW,HIGH",
                        help="walker command range other than the YAML's, e.g. vx=-1,1.5")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help=f"comma-separated, from {', '.join(POLICIES)}")
    parser.add_argument("--tasks", default=",".join(COMPETITION_TASKS), help="comma-separated")
    parser.add_argument("--backend", default="fast", choices=("fast", "sai"),
                        help="physics backend (identical values; fast is several times faster)")
    parser.add_argument("--n-envs", type=int, default=10, help="episodes played at once")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one small MLP per 10 env steps: threads only add overhead
    walker = WalkerSpec(str(Path(args.walker).resolve()),
                        command_ranges=parse_command_ranges(args.command_range) or None)
    ranges = load_walker(walker).config.command_ranges
    start_all = time.perf_counter()
    result: dict[str, object] = {"seeds": list(range(args.seed, args.seed + args.episodes))}
    for name in args.policies.split(","):
        if name not in POLICIES:
            parser.error(f"unknown policy {name!r}")
        control = "torque" if name == "zero" else "walker"
        report: dict[str, object] = {}
        for task in args.tasks.split(","):
            spec = SoccerSpec(task, control=control, backend=args.backend,
                              walker=walker if control == "walker" else None)
            if name in ("zero", "stand"):
                def make_policy(n: int, dim: int = 12 if control == "torque" else 3):
                    return Constant(n, dim)
            else:
                def make_policy(n: int, name: str = name, task: str = task):
                    return ExpertPolicy(make_expert(name, [task] * n, ranges))
            start = time.perf_counter()
            found = record_task(spec, make_policy, args.episodes, args.seed, n_envs=args.n_envs)
            recs = [e.record for e in found]
            scores = np.array([r["score"] for r in recs])
            report[task] = {
                "mean": round(float(scores.mean()), 4), "std": round(float(scores.std()), 4),
                "min": round(float(scores.min()), 4), "max": round(float(scores.max()), 4),
                "success_rate": float(np.mean([r["success"] for r in recs])),
                "fall_rate": float(np.mean([r["fallen"] for r in recs])),
                "mean_length": float(np.mean([r["length"] for r in recs])),
                "scores": [round(float(s), 4) for s in scores],
            }
            print(f"{name:8s} {task:22s} score {scores.mean():+.3f} ± {scores.std():.3f} "
                  f"success {report[task]['success_rate']:.2f} "
                  f"fall {report[task]['fall_rate']:.2f} "
                  f"length {report[task]['mean_length']:.0f} "
                  f"[{time.perf_counter() - start:.0f}s]", file=sys.stderr)
        report["overall"] = round(float(np.mean([report[t]["mean"] for t in report])), 4)
        result[name] = report
    result["seconds"] = round(time.perf_counter() - start_all, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
