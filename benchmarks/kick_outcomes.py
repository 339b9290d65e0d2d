"""Where kick_to_target's score is lost, by how far the target starts from the ball.

Plays one kick_to_target episode per seed on the fast backend, with the ``striker`` expert (its
tuned setting for the walker's command ranges, ``--set NAME=VALUE`` changes) or with a trained
policy (``--run``: a run directory or a model .zip inside one, played deterministically as
``soccerlab eval`` does). Each episode is classed by its last step:

- ``success``: the ball came within 0.4 m of the target;
- ``fallen``: the robot fell (the episode ends);
- ``out``: the ball left the field (-1.0);
- ``near``: time ran out with the ball within 1.5 m of the target;
- ``slow``: time ran out with the ball at least 1 m closer to the target than it started;
- ``lost``: time ran out with the ball no closer than that.

Episodes are grouped by the ball-to-target distance at the start (``--bands``, metres). Prints
one JSON object: per band the episode count, mean score (and its standard error), success
rate and class counts, plus the same over all seeds. The ball-to-target distance at the last
step comes from the score's ``distance`` term (0.5 exp(-d)).

    PYTHONPATH=src python benchmarks/kick_outcomes.py --seeds 350-649 --command-range vx=-1,1.5
    PYTHONPATH=src python benchmarks/kick_outcomes.py --seeds 350-649 --command-range vx=-1,1.5 \\
        --set face_within=0.8 --set round_width=0.6      # turning on the spot, as before
    PYTHONPATH=src python benchmarks/kick_outcomes.py --seeds 350-649 --run runs/agent
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from soccerlab.cli import parse_seeds
from soccerlab.envs.soccer import SoccerSpec, WalkerSpec, load_walker
from soccerlab.envs.soccer.batch import SoccerBatch
from soccerlab.envs.soccer.behaviour.walker_load import parse_command_ranges
from soccerlab.errors import UserError
from soccerlab.imitation.experts import parse_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from expert_search import DEFAULT_WALKER, play  # noqa: E402

TASK = "kick_to_target"
CLASSES = ("success", "fallen", "out", "near", "slow", "lost")
NEAR = 1.5  # metres from the target at the last step
PROGRESS = 1.0  # metres closer than at the start


def start_distances(seeds: list[int]) -> np.ndarray:
    """Ball-to-target distance (m, horizontal) at the start of each seed's episode."""
    batch = SoccerBatch(SoccerSpec(TASK, backend="fast"), len(seeds),
                        info_keys=["ball_xpos_rel_robot", "target_xpos_rel_robot"])
    try:
        _, infos = batch.reset(seeds)
    finally:
        batch.close()
    return np.array([np.linalg.norm((i["target_xpos_rel_robot"] - i["ball_xpos_rel_robot"])[:2])
                     for i in infos])


def classify(record: dict, start: float) -> str:
    """An episode's class (module docstring) from its ``info["soccer"]`` record."""
    if record["success"]:
        return "success"
    if record["fallen"]:
        return "fallen"
    if record["components"].get("offside", 0.0) != 0.0:
        return "out"
    end = end_distance(record)
    if end < NEAR:
        return "near"
    return "slow" if end <= start - PROGRESS else "lost"


def end_distance(record: dict) -> float:
    """The ball's distance to the target at the last step, from the score's ``distance`` term
    (0.5 exp(-d))."""
    term = 2.0 * record["components"]["distance"]
    return -math.log(term) if term > 0 else math.inf


def summarise(records: list[dict], starts: np.ndarray, bands: list[float]) -> dict:
    classes = [classify(r, float(d)) for r, d in zip(records, starts, strict=True)]
    scores = np.array([r["score"] for r in records])
    edges = [0.0, *bands, math.inf]
    out: dict = {"bands": []}
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        idx = [i for i, d in enumerate(starts) if lo <= d < hi]
        out["bands"].append(_group(f"{lo:g}-{hi:g} m", idx, classes, scores))
    out["all"] = _group("all", list(range(len(records))), classes, scores)
    return out


def _group(name: str, idx: list[int], classes: list[str], scores: np.ndarray) -> dict:
    counts = {c: sum(classes[i] == c for i in idx) for c in CLASSES}
    n = len(idx)
    return {"band": name, "episodes": n,
            "score": round(float(scores[idx].mean()), 3) if n else None,
            "score_se": round(float(scores[idx].std() / np.sqrt(n)), 3) if n else None,
            "success": round(counts["success"] / n, 3) if n else None, "classes": counts}


def striker_records(seeds: list[int], args: argparse.Namespace) -> list[dict]:
    from dataclasses import replace

    from soccerlab.imitation.experts import task_params

    walker = WalkerSpec(str(Path(args.walker).resolve()),
                        command_ranges=parse_command_ranges(args.command_range) or None)
    base = task_params(TASK, load_walker(walker).config.command_ranges)
    changes = parse_settings([f"{TASK}.{item}" for item in args.set])
    return play(TASK, [replace(base, **changes.get(TASK, {}))], seeds, walker, None)


def run_records(seeds: list[int], target: str) -> list[dict]:
    from soccerlab.config import config_from_dict
    from soccerlab.evaluation import evaluate_config, model_predictor
    from soccerlab.loading import load_policy

    loaded = load_policy(target)
    data = loaded.cfg.to_dict()
    if TASK not in data["env"].get("tasks", {}):
        raise UserError(f"{target} was not trained on {TASK}")
    data["env"]["backend"] = "fast"
    data["env"]["tasks"] = {t: (w if t == TASK else 0) for t, w in data["env"]["tasks"].items()}
    report = evaluate_config(config_from_dict(data), model_predictor(loaded.model, True), seeds,
                             1, loaded.vecnorm)
    by_seed = {e.seed: e.extra["soccer"] for e in report.episodes}
    return [by_seed[s] for s in seeds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="350-449", help="e.g. 350-649 or 1,2,3")
    parser.add_argument("--run", default=None, help="a run directory or a model .zip in one "
                        "(default: the striker expert)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="striker: change one field of its tuned kick_to_target setting")
    parser.add_argument("--walker", default=str(DEFAULT_WALKER))
    parser.add_argument("--command-range", action="append", default=[], metavar="AXIS=LOW,HIGH",
                        help="striker: walker command range other than the YAML's")
    parser.add_argument("--bands", default="4,8,12", help="distance band edges in metres")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        seeds = parse_seeds(args.seeds)
        bands = sorted(float(b) for b in args.bands.split(","))
        if args.run and (args.set or args.command_range):
            raise UserError("--set and --command-range are for the striker, not --run")
        t0 = time.perf_counter()
        starts = start_distances(seeds)
        records = run_records(seeds, args.run) if args.run else striker_records(seeds, args)
    except (UserError, ValueError) as err:
        sys.exit(f"error: {err}")
    result = {"task": TASK, "policy": args.run or "striker", "settings": args.set,
              "seeds": args.seeds, **summarise(records, starts, bands),
              "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
