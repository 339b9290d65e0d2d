"""Long lock-step parity run of the fast backend against sai-mujoco, printed as JSON.

Example: python benchmarks/parity_long.py --steps 20000 --slots 3 --limit 5000
(``--limit`` is the TimeLimit on both sides; the registered one by default.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the harnesses

from parity import run_parity  # tests/parity.py
from soccerlab.envs.soccer.backends.fast import FAST_TASKS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=sorted(FAST_TASKS))
    p.add_argument("--steps", type=int, default=10000, help="batched steps per task")
    p.add_argument("--slots", type=int, default=3)
    p.add_argument("--limit", type=int, default=None, help="max_episode_steps on both sides")
    p.add_argument("--kick-prob", type=float, default=0.7)
    p.add_argument("--reset-mode", default="replay", choices=["replay", "sai"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    failed = 0
    for task in args.tasks:
        t0 = time.perf_counter()
        rep = run_parity(task, n_slots=args.slots, steps=args.steps, seed=args.seed,
                         max_episode_steps=args.limit, kick_prob=args.kick_prob,
                         action_scales=(1.0, 0.1, 0.0), reset_mode=args.reset_mode)
        failed += not rep.ok
        print(json.dumps({
            "task": task, "ok": rep.ok, "env_steps": rep.steps, "episodes": rep.episodes,
            "terminated": rep.terminated, "truncated": rep.truncated, "kicks": rep.kicks,
            "events": dict(rep.events), "mismatches": rep.mismatches[:5],
            "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
