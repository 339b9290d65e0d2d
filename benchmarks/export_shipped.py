"""Every shipped soccer config's run can be exported: a tiny run of each, then ``soccerlab export``
(its SAI-style check included). Prints JSON: per config, the export's exit code, time and scores.

    python benchmarks/export_shipped.py --walker PATH [--steps 200] [--episode-steps 500]

The runs keep each config as shipped except: a small budget, ``env.vec_env: dummy`` (no
subprocesses on a small machine), short episodes (``env.max_episode_steps``), one eval seed per
config's first seeds, the walker at PATH, and SAC's ``learning_starts`` below the budget.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["default", "showdown_torque_ppo", "showdown_walker_ppo", "goalie_walker_ppo",
           "goalie_torque_sac"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walker", required=True, help="walker .pt (its .yaml beside it)")
    parser.add_argument("--steps", type=int, default=200, help="training budget per run")
    parser.add_argument("--episode-steps", type=int, default=500, help="env.max_episode_steps")
    args = parser.parse_args()
    from soccerlab.cli import main as cli

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CONFIGS:
            out = Path(tmp) / name
            overrides = [f"experiment.output_dir={out}", f"train.total_timesteps={args.steps}",
                         f"train.checkpoint_every={args.steps}", f"eval.every={args.steps}",
                         "env.vec_env=dummy", f"env.max_episode_steps={args.episode_steps}",
                         "train.progress_bar=false", "algo.params.n_steps=64",
                         "algo.params.batch_size=64"]
            if "walker" in name:
                overrides.append(f"env.walker.path={args.walker}")
            if "sac" in name:
                overrides = [o for o in overrides if "n_steps" not in o and "batch_size" not in o]
                overrides += ["algo.params.learning_starts=50", "train.validation.every=100",
                              "train.validation.size=20"]
            with contextlib.redirect_stdout(sys.stderr):  # stdout is the JSON report
                assert cli(["train", str(ROOT / "configs" / f"{name}.yaml"), *overrides]) == 0
                run = next(p.parent for p in out.rglob("config.yaml"))
                start = time.perf_counter()
                code = cli(["export", str(run)])
            manifest_file = run / "submission-torchscript" / "manifest.json"
            manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
            results[name] = {"exit_code": code, "seconds": round(time.perf_counter() - start, 1),
                             "control": manifest.get("control"),
                             "scores": manifest.get("scores", {}).get("tasks")}
    print(json.dumps(results, indent=2))
    sys.exit(0 if all(r["exit_code"] == 0 for r in results.values()) else 1)


if __name__ == "__main__":
    main()
