"""``soccerlab train CONFIG --seeds 0,1,2``: one run per seed in a group folder, and a summary.

```
<output_dir>/<env>/<algo>/<name>-seeds-<timestamp>/
    group.json                  the seeds, the command, the config, and the runs
    summary.json                mean and 95 % confidence interval of final and best scores
    logs/seed-<S>.log           each run's output
    <env>/<algo>/seed-<S>-<timestamp>/   an ordinary run directory per seed
```
Each seed is a separate ``soccerlab train`` process (``experiment.seed=S``, output inside the
group), K at a time with ``--parallel K``. W&B, when on, groups the runs by the group's name.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from soccerlab.config import load_config
from soccerlab.errors import UserError
from soccerlab.runs import RunDir, now_iso, write_json_atomic

GROUP_FILE = "group.json"
SUMMARY_FILE = "summary.json"

# two-sided 95 % quantiles of Student's t by degrees of freedom (a missing df uses the next
# lower one, which is slightly wider: conservative)
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021,
         60: 2.000, 120: 1.980}


def t975(df: int) -> float:
    if df > 120:
        return 1.960
    return _T975[max(k for k in _T975 if k <= df)]


def mean_ci(values: list[float]) -> dict[str, Any]:
    """Mean, sample std and the half-width of the 95 % confidence interval of the mean."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None}
    mean = sum(values) / n
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95": None}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"n": n, "mean": mean, "std": std, "ci95": t975(n - 1) * std / math.sqrt(n)}


def format_ci(stats: dict[str, Any]) -> str:
    if stats["mean"] is None:
        return "n/a"
    if stats["ci95"] is None:
        return f"{stats['mean']:.4g} (n=1, no interval)"
    return f"{stats['mean']:.4g} ± {stats['ci95']:.3g} (95% CI, n={stats['n']})"


# ---------------------------------------------------------------------------------------------
# Running a group
# ---------------------------------------------------------------------------------------------


def run(config_path: str, overrides: list[str], seeds: list[int], parallel: int) -> int:
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds repeats a seed: {seeds}")
    cfg = load_config(config_path, overrides)  # config errors end here, before any folder exists
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = Path(cfg.experiment.output_dir) / cfg.env.label / cfg.algo.name
    parent.mkdir(parents=True, exist_ok=True)
    group = parent / f"{cfg.experiment.name}-seeds-{stamp}"
    group.mkdir()
    (group / "logs").mkdir()
    command = "soccerlab " + shlex.join(sys.argv[1:])
    info = {"kind": "seed_group", "name": group.name, "command": command, "config": config_path,
            "overrides": overrides, "seeds": seeds, "parallel": parallel, "started_at": now_iso(),
            "runs": {}}
    write_json_atomic(group / GROUP_FILE, info)
    print(f"seed group: {group} (seeds {', '.join(map(str, seeds))}, {parallel} at a time)", flush=True)
    codes = _train_all(config_path, overrides, seeds, parallel, group)
    if all(c == 2 for c in codes.values()) and not _runs(group):
        error = _last_error(group / "logs" / f"seed-{seeds[0]}.log")
        shutil.rmtree(group, ignore_errors=True)
        raise UserError(error)
    runs = _runs(group)
    info.update(runs={str(s): str(p) for s, p in runs.items()}, ended_at=now_iso(),
                exit_codes={str(s): c for s, c in codes.items()})
    write_json_atomic(group / GROUP_FILE, info)
    summary = summarize(group)
    print(summary_text(summary))
    print(f"summary: {group / SUMMARY_FILE}")
    print(group)
    return 0 if all(c == 0 for c in codes.values()) else 1


def _train_all(config_path: str, overrides: list[str], seeds: list[int], parallel: int,
               group: Path) -> dict[int, int]:
    """Train every seed, ``parallel`` processes at a time; stop starting new ones after bad input."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    env = dict(os.environ, WANDB_RUN_GROUP=group.name)
    bad_input = threading.Event()

    def train(seed: int) -> int:
        if bad_input.is_set():  # the same bad input for every seed: don't start more
            return 2
        cmd = [sys.executable, "-m", "soccerlab", "train", config_path, *overrides,
               f"experiment.seed={seed}", f"experiment.output_dir={group}",
               f"experiment.name=seed-{seed}"]
        log = group / "logs" / f"seed-{seed}.log"
        print(f"seed {seed}: training (log {log})", flush=True)
        with open(log, "w") as out:
            code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
        if code == 2:
            bad_input.set()
        return code

    codes = {}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {pool.submit(train, seed): seed for seed in seeds}
        for future in as_completed(futures):
            seed, code = futures[future], future.result()
            codes[seed] = code
            state = {0: "finished", 1: "failed", 2: "bad input", 130: "interrupted"}.get(code, "died")
            print(f"seed {seed}: {state} (exit {code})", flush=True)
    return {seed: codes[seed] for seed in seeds}


def _last_error(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    line = lines[-1] if lines else "training failed"
    return line.split(": error: ", 1)[-1]


def _runs(group: Path) -> dict[int, Path]:
    found = {}
    for meta in sorted(group.rglob("meta.json")):
        run = meta.parent
        if not (run / "config.yaml").is_file():
            continue
        data = json.loads(meta.read_text())
        found[int(data["seed"])] = run
    return dict(sorted(found.items()))


# ---------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------


def read_evaluations(run: Path) -> list[dict[str, Any]]:
    """evaluations.csv as rows of floats (empty cells and text dropped)."""
    path = Path(run) / "evaluations.csv"
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            parsed = {}
            for k, v in row.items():
                try:
                    parsed[k] = float(v)
                except (TypeError, ValueError):
                    continue
            rows.append(parsed)
    return rows


def run_scores(run: Path) -> dict[str, Any]:
    """A run's final and best evaluation score and its final value of every metric."""
    rows = read_evaluations(run)
    meta = RunDir(run).read_meta()
    if not rows:
        return {"run": str(run), "status": meta.get("status"), "final": None, "best": None, "metrics": {}}
    return {"run": str(run), "seed": meta.get("seed"), "status": meta.get("status"),
            "steps": int(rows[-1].get("step", 0)), "final": rows[-1].get("score"),
            "best": max(r["score"] for r in rows if "score" in r),
            "metrics": {k: v for k, v in rows[-1].items() if k not in ("step", "episodes")}}


def summarize(group: Path) -> dict[str, Any]:
    """Write and return the group's summary.json."""
    runs = _runs(group)
    scores = {seed: run_scores(run) for seed, run in runs.items()}
    done = [s for s in scores.values() if s["final"] is not None]
    metrics = sorted({k for s in done for k in s["metrics"]})
    summary = {
        "group": str(group), "seeds": list(scores),
        "final_score": mean_ci([s["final"] for s in done]),
        "best_score": mean_ci([s["best"] for s in done]),
        "final_metrics": {k: mean_ci([s["metrics"][k] for s in done if k in s["metrics"]])
                          for k in metrics},
        "runs": scores,
    }
    write_json_atomic(group / SUMMARY_FILE, summary)
    return summary


def summary_text(summary: dict[str, Any]) -> str:
    lines = ["", f"seed group {Path(summary['group']).name}: {len(summary['runs'])} runs"]
    lines.append(f"  final score: {format_ci(summary['final_score'])}")
    lines.append(f"  best score:  {format_ci(summary['best_score'])}")
    for seed, s in summary["runs"].items():
        final = "-" if s["final"] is None else f"{s['final']:.4g}"
        best = "-" if s["best"] is None else f"{s['best']:.4g}"
        lines.append(f"  seed {seed}: final {final}, best {best} ({s['status']}) {s['run']}")
    return "\n".join(lines)
