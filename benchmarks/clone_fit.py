"""How closely a behaviour-cloning run fits its DAgger dataset, per task and action.

Loads a ``soccerlab bc`` run (walker control, with ``bc.dagger``: its ``dagger.npz`` holds the
demos and every labelled round), feeds the dataset's observations through the run's own
normaliser and policy (deterministic actions), and prints JSON: per task, the rows and, per
action (vx, vy, yaw rate, in the walker's [-1, 1] units), the root mean squared error against
the expert's labels and the labels' standard deviation. The rows include the ones BC trained
on: this measures how well the clone can fit the labels at all.

    PYTHONPATH=src python benchmarks/clone_fit.py runs/showdown/ppo/showdown-imitation-bc-...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from soccerlab.envs.soccer.behaviour.tasks import get_task
from soccerlab.imitation.bc import policy_action
from soccerlab.imitation.demos import load_demos
from soccerlab.loading import load_policy

ACTIONS = ("vx", "vy", "yaw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a soccerlab bc run directory with dagger.npz")
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_policy(args.run)
    demos = load_demos(Path(args.run) / "dagger.npz")
    env = loaded.cfg.env
    limits = {get_task(t).max_episode_steps for t in demos.tasks}
    if env.max_episode_steps is not None:
        limits = {env.max_episode_steps}
    if env.time_feature and len(limits) != 1:
        raise SystemExit(f"tasks with different time limits {sorted(limits)}: not supported")
    obs = demos.policy_observations(limits.pop() if env.time_feature else None, env.hide)
    if loaded.vecnorm is not None:
        obs = loaded.vecnorm.normalize_obs(obs)
    with torch.no_grad():
        pred = policy_action(loaded.model, torch.as_tensor(np.asarray(obs, dtype=np.float32)))
    pred = pred.numpy()
    err = (pred - demos.commands) ** 2
    out: dict = {"run": str(args.run), "rows": int(demos.n), "tasks": {}}
    for k, task in enumerate(demos.tasks):
        rows = demos.task_index == k
        rms = [round(float(v), 4) for v in np.sqrt(err[rows].mean(0))]
        std = [round(float(v), 4) for v in demos.commands[rows].std(0)]
        out["tasks"][task] = {"rows": int(rows.sum()),
                              "rms_error": dict(zip(ACTIONS, rms, strict=True)),
                              "label_std": dict(zip(ACTIONS, std, strict=True))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
