"""Train shipped configs for their full budget and print the returns they reach, as JSON.

    python benchmarks/shipped_configs.py configs/pendulum_sac.yaml configs/pendulum_td3.yaml
    python benchmarks/shipped_configs.py --all            # every config but hopper and soccer
    python benchmarks/shipped_configs.py configs/hopper_sac.yaml train.total_timesteps=200000

Each run goes under --out (default /tmp/soccerlab-configs); the JSON has, per config, the final
and best evaluation (mean return over the config's eval seeds/episodes) and the wall time.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["pendulum_sac", "pendulum_td3", "pendulum_tqc", "pendulum_crossq", "pendulum_ppo",
         "inverted_pendulum_ppo"]


def run(config: Path, overrides: list[str], out: Path) -> dict:
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "soccerlab", "train", str(config), f"experiment.output_dir={out}",
         "train.progress_bar=false", *overrides],
        capture_output=True, text=True,
    )
    elapsed = time.time() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:], "seconds": round(elapsed)}
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    with open(run_dir / "evaluations.csv") as f:
        rows = list(csv.DictReader(f))
    best = json.loads((run_dir / "best" / "metrics.json").read_text())
    return {
        "run": str(run_dir),
        "steps": int(rows[-1]["step"]),
        "final_mean_return": round(float(rows[-1]["mean_return"]), 1),
        "final_std_return": round(float(rows[-1]["std_return"]), 1),
        "best_mean_return": round(float(best["overall"]["mean_return"]), 1),
        "best_step": best["step"],
        "curve": [(int(r["step"]), round(float(r["mean_return"]), 1)) for r in rows],
        "seconds": round(elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", help="config files, then key=value overrides")
    parser.add_argument("--all", action="store_true", help="every quick config (see QUICK)")
    parser.add_argument("--out", default="/tmp/soccerlab-configs")
    args = parser.parse_args()
    configs = [a for a in args.configs if "=" not in a]
    overrides = [a for a in args.configs if "=" in a]
    if args.all:
        configs += [str(ROOT / "configs" / f"{name}.yaml") for name in QUICK]
    results = {Path(c).stem: run(Path(c), overrides, Path(args.out)) for c in configs}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
