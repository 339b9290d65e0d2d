"""Grid search over the striker expert's settings on one task (fast backend, one env per
setting and seed, all in one batch). Prints the settings sorted by mean score as JSON lines.

The tuned ``TASK_PARAMS`` (and ``FAST_TASK_PARAMS``, with ``--command-range vx=-1,1.5``) in
``soccerlab.imitation.experts`` came from searches like these (docs/results.md lists the
grids), e.g. goalie:

    PYTHONPATH=src python benchmarks/expert_search.py --task goalie_penalty_kick --seeds 0 \\
        --grid speed=0.9,0.925,0.95,0.975 aim_y=-0.6,-0.55,-0.5,-0.45 \\
        wait=44,47,50,53,56 behind=0.45,0.5,0.55

Settings not in ``--grid`` keep the task's tuned values (for the walker's command ranges).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import torch

from soccerlab.envs.soccer import SoccerSpec, WalkerSpec, load_walker
from soccerlab.envs.soccer.batch import SoccerBatch
from soccerlab.envs.soccer.behaviour.walker_load import parse_command_ranges
from soccerlab.imitation.experts import EXPERT_INFO_KEYS, StrikerExpert, StrikerParams, task_params

DEFAULT_WALKER = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "walker" / "booster_gym_T1.pt"
)


def play(task: str, settings: list[StrikerParams], seeds: list[int], walker: WalkerSpec,
         max_steps: int | None) -> list[dict]:
    """One episode per (setting, seed), setting-major; returns the ``info["soccer"]`` records."""
    n = len(settings) * len(seeds)
    spec = SoccerSpec(task, control="walker", walker=walker, backend="fast",
                      max_episode_steps=max_steps)
    batch = SoccerBatch(spec, n, info_keys=list(EXPERT_INFO_KEYS))
    try:
        expert = StrikerExpert([task] * n, batch.walker.config.command_ranges,
                               params=[p for p in settings for _ in seeds])
        _, infos = batch.reset([s for _ in settings for s in seeds])
        records: list[dict | None] = [None] * n
        while any(r is None for r in records):
            out = batch.step(expert.act(infos))
            infos = list(out.infos)
            for i in np.flatnonzero(out.terminated | out.truncated):
                if records[i] is None:
                    records[i] = out.infos[i]["soccer"]
                infos[i] = out.reset_infos[int(i)]
        return records  # type: ignore[return-value]
    finally:
        batch.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--seeds", default="0", help="comma-separated")
    parser.add_argument("--grid", nargs="+", default=[], metavar="NAME=V1,V2",
                        help=f"StrikerParams fields: {', '.join(f.name for f in fields(StrikerParams))}")
    parser.add_argument("--walker", default=str(DEFAULT_WALKER))
    parser.add_argument("--command-range", action="append", default=[], metavar="AXIS=LOW,HIGH",
                        help="walker command range other than the YAML's, e.g. vx=-1,1.5")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--top", type=int, default=15, help="settings to print")
    args = parser.parse_args()
    torch.set_num_threads(1)
    types = {f.name: f.type for f in fields(StrikerParams)}
    axes: dict[str, list] = {}
    for item in args.grid:
        name, _, values = item.partition("=")
        if name not in types:
            parser.error(f"unknown setting {name!r}")
        cast = str if name == "aim" else (int if name == "wait" else float)
        axes[name] = [cast(v) for v in values.split(",")]
    walker = WalkerSpec(str(Path(args.walker).resolve()),
                        command_ranges=parse_command_ranges(args.command_range) or None)
    base = task_params(args.task, load_walker(walker).config.command_ranges)
    settings = [replace(base, **dict(zip(axes, combo, strict=True)))
                for combo in itertools.product(*axes.values())]
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.perf_counter()
    records = play(args.task, settings, seeds, walker, args.max_steps)
    rows = []
    for k, p in enumerate(settings):
        recs = records[k * len(seeds):(k + 1) * len(seeds)]
        scores = [r["score"] for r in recs]
        rows.append({"mean": round(float(np.mean(scores)), 4),
                     "scores": [round(s, 3) for s in scores],
                     "success": float(np.mean([r["success"] for r in recs])),
                     "fall": float(np.mean([r["fallen"] for r in recs])),
                     "params": {k: v for k, v in asdict(p).items() if k in axes}})
    rows.sort(key=lambda r: -r["mean"])
    for row in rows[: args.top]:
        print(json.dumps(row))
    print(f"{len(settings)} settings x {len(seeds)} seeds in {time.perf_counter() - start:.0f}s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
