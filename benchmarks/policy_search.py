"""Search the deterministic competition score directly around a trained policy (an experiment).

PPO follows the stochastic policy's return; the competition scores the deterministic policy,
whose goalie outcome flips with centimetres of timing. This script asks whether a plain
random search (antithetic pairs, "basic random search" of Mania et al. 2018) over the
policy's last layer, scored by the deterministic competition score itself, improves a clone:

    theta <- theta + step / (pairs * std(r)) * sum_k (r(theta + noise d_k) - r(theta - noise d_k)) d_k

with ``noise`` and ``step`` relative to the layer's weight scale. Every candidate plays the
config's tasks on ``--seeds`` (fast backend, deterministic); the best candidate seen is kept
and then evaluated on ``--report-seeds`` and on ``--held-out-seeds``. Prints JSON. ``--out DIR``
writes a copy of the run (without checkpoints and TensorBoard files) whose model is the best
candidate, plus ``search.json``: ``soccerlab eval``, ``play`` and ``export`` take it as a run.

    PYTHONPATH=src MUJOCO_GL=osmesa python benchmarks/policy_search.py RUN \
        --walker ../shared/data/walker/booster_gym_T1.pt --iterations 20 --out /tmp/search
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from soccerlab.config import config_from_dict
from soccerlab.evaluation import evaluate_config, model_predictor
from soccerlab.loading import load_policy


def seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--walker", help="replace the run's walker path")
    p.add_argument("--seeds", type=seeds, default=[0, 1, 2], help="seeds that score candidates")
    p.add_argument("--report-seeds", type=seeds, default=list(range(10)))
    p.add_argument("--held-out-seeds", type=seeds, default=list(range(100, 110)))
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--noise", type=float, default=0.02, help="relative to the weights' std")
    p.add_argument("--step", type=float, default=0.01, help="relative to the weights' std")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write a copy of the run with the best candidate's weights here")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.out and Path(args.out).exists():
        raise SystemExit(f"--out {args.out} exists: choose a new folder")
    if args.out and not Path(args.run).is_dir():
        raise SystemExit("--out copies the run: give RUN as a run directory")

    loaded = load_policy(args.run)
    data = loaded.cfg.to_dict()
    if args.walker:
        data["env"]["walker"]["path"] = args.walker
    data["env"]["backend"] = "fast"
    cfg = config_from_dict(data)
    model, vecnorm = loaded.model, loaded.vecnorm
    layer = model.policy.action_net
    theta0 = torch.cat([layer.weight.detach().flatten(), layer.bias.detach()]).double().numpy()
    scale = float(np.std(theta0))
    rng = np.random.default_rng(args.seed)
    predict = model_predictor(model, deterministic=True)

    def set_params(theta: np.ndarray) -> None:
        w = torch.as_tensor(theta, dtype=layer.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(w[: layer.weight.numel()].view_as(layer.weight))
            layer.bias.copy_(w[layer.weight.numel():])

    def score(theta: np.ndarray, on: list[int]) -> tuple[float, dict[str, float]]:
        set_params(theta)
        comp = evaluate_config(cfg, predict, on, 1, vecnorm).competition
        return comp["overall"]["score"], {t: v["mean_score"] for t, v in comp["tasks"].items()}

    start = time.perf_counter()
    theta = theta0.copy()
    best = (score(theta0, args.seeds)[0], theta0.copy(), -1)
    history = [{"iteration": -1, "best": best[0]}]
    for it in range(args.iterations):
        dirs = rng.normal(size=(args.pairs, theta.size))
        plus = [score(theta + args.noise * scale * d, args.seeds)[0] for d in dirs]
        minus = [score(theta - args.noise * scale * d, args.seeds)[0] for d in dirs]
        for r, sign in ((plus, 1.0), (minus, -1.0)):
            for k, value in enumerate(r):
                if value > best[0]:
                    best = (value, theta + sign * args.noise * scale * dirs[k], it)
        spread = float(np.std(plus + minus)) or 1.0
        theta = theta + args.step * scale / (args.pairs * spread) * np.einsum(
            "k,kn->n", np.array(plus) - np.array(minus), dirs)
        history.append({"iteration": it, "plus": plus, "minus": minus, "best": best[0],
                        "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(history[-1]), flush=True)

    result = {"run": args.run, "search_seeds": args.seeds, "iterations": args.iterations,
              "pairs": args.pairs, "noise": args.noise, "step": args.step,
              "seconds": round(time.perf_counter() - start, 1),
              "start_score_search_seeds": history[0]["best"], "best_score_search_seeds": best[0],
              "best_found_at_iteration": best[2]}
    for name, on in (("report", args.report_seeds), ("held_out", args.held_out_seeds)):
        result[f"start_{name}"] = score(theta0, on)
        result[f"best_{name}"] = score(best[1], on)
    if args.out:
        out = Path(args.out)
        shutil.copytree(args.run, out,
                        ignore=shutil.ignore_patterns("checkpoints", "tb", "submission-*"))
        set_params(best[1])
        for folder in (out, out / "best"):
            if folder.is_dir():
                model.save(str(folder / "model.zip"))
        (out / "search.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
