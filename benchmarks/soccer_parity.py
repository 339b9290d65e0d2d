"""env.backend fast against sai, value for value, with any walker (e.g. the real T1 walker).

Runs ``soccer_parity.run_soccer_parity`` (the check ``tests/test_fast_soccer_parity.py`` runs
with a tiny walker) for walker control on the three showdown tasks in one VecEnv, once with
the walker's own command ranges and once with wide ranges (vx, vy up to 3 m/s, yaw 4 rad/s)
that make it fall, so episodes end by truncation and by termination inside walker ticks.

    python benchmarks/soccer_parity.py --walker /path/to/T1.pt [--steps 400] [--n 3]

Prints one JSON line per run and a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the harnesses

from soccer_parity import run_soccer_parity  # tests/soccer_parity.py
from soccerlab.envs.soccer import WalkerSpec

SHOWDOWN = {"goalie_penalty_kick": 1.0, "obstacle_penalty_kick": 1.0, "kick_to_target": 1.0}
WIDE = {"vx": (-3.0, 3.0), "vy": (-3.0, 3.0), "yaw": (-4.0, 4.0)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--walker", required=True, help="TorchScript walker (.yaml beside it)")
    p.add_argument("--steps", type=int, default=400, help="agent steps per run")
    p.add_argument("--n", type=int, default=3, help="envs")
    p.add_argument("--max-episode-steps", type=int, default=2000)
    p.add_argument("--rewards", nargs="+", default=["env", "competition", "shaped"])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ok = True
    for ranges_name, ranges in (("walker_yaml", None), ("wide", WIDE)):
        for reward in args.rewards:
            t0 = time.perf_counter()
            rep = run_soccer_parity(SHOWDOWN, args.n, args.steps, control="walker", reward=reward,
                                    walker=WalkerSpec(args.walker, command_ranges=ranges),
                                    max_episode_steps=args.max_episode_steps,
                                    reseed_at=args.steps // 2)
            ok &= rep.ok
            print(json.dumps({
                "command_ranges": ranges_name, "reward": reward, "ok": rep.ok,
                "agent_steps": rep.steps, "episodes": rep.terminated + rep.truncated,
                "terminated": rep.terminated, "truncated": rep.truncated,
                "ended_inside_a_tick": rep.mid_step_ends, "env_steps_in_episodes": rep.env_steps,
                "episodes_per_task": dict(rep.tasks), "outcomes": dict(rep.outcomes),
                "mismatches": rep.mismatches[:3], "seconds": round(time.perf_counter() - t0, 1),
            }), flush=True)
    print(json.dumps({"all_equal": ok}))


if __name__ == "__main__":
    main()
