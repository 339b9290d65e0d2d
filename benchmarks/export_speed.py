"""Export time, and the exported model's speed against SB3 ``predict``, side by side (JSON).

    python benchmarks/export_speed.py [--walker PATH] [--steps N] [--net 256,256]

Trains two small soccer runs (torque control, and walker control with the walker at PATH, the
test fixture's tiny walker by default) with the given policy network, exports each (the export's
own SAI-style check included in its time), then measures actions per second at batch 1 and 16:

- ``exported``: the TorchScript ``model.pt`` called as SAI calls it (one call per env step; for
  walker control a call runs the PD loop, and the policy and walker every 10th call);
- ``sb3_predict``: soccerlab's evaluation path (normaliser + padded ``model.predict``), which for
  torque control is the same work; for walker control it is one decision (10 env steps), so
  ``soccerlab_walker_steps`` adds soccerlab's own walker: ``predict`` every 10th step and
  ``JoystickWalker.step`` every step, per env step.

Threads: one torch thread, as soccerlab's eval and SAI's small-batch calls use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SHOWDOWN = {"goalie_penalty_kick": 1.0, "obstacle_penalty_kick": 1.0, "kick_to_target": 1.0}


def train(out: Path, name: str, net: list[int], **env) -> Path:
    from soccerlab.cli import main

    cfg = {
        "experiment": {"name": name, "seed": 0, "output_dir": str(out)},
        "env": {"tasks": SHOWDOWN, "n_envs": 3, "max_episode_steps": 300, "normalize": True, **env},
        "algo": {"name": "ppo", "params": {"n_steps": 32, "batch_size": 96, "n_epochs": 1},
                 "policy_kwargs": {"net_arch": net}},
        "train": {"total_timesteps": 96, "checkpoint_every": 96, "progress_bar": False},
        "eval": {"every": 96, "episodes": 1, "seeds": [0, 1, 2]},
    }
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the JSON report
        assert main(["train", str(path)]) == 0
    return next(p.parent for p in (out / "showdown").rglob("config.yaml") if name in str(p))


def rate(fn, calls: int) -> float:
    fn()  # warm up (TorchScript profiles its first calls)
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return calls / (time.perf_counter() - start)


def measure(run: Path, folder: Path, control: str, calls: int) -> dict:
    from soccerlab.evaluation import model_predictor
    from soccerlab.loading import load_policy

    module = torch.jit.load(str(folder / "model.pt"))
    loaded = load_policy(run)
    predict = model_predictor(loaded.model, True)
    rng = np.random.default_rng(0)
    out = {}
    for batch in (1, 16):
        obs = rng.normal(0, 1, (batch, 89)).astype(np.float32)
        obs[:, 12:24] += 1.0  # no row looks like an episode start
        tensor = torch.from_numpy(obs)

        def exported(tensor=tensor):
            with torch.no_grad():
                module(tensor)

        def sb3(obs=obs):
            predict(loaded.vecnorm.normalize_obs(obs))

        row = {"exported_calls_per_s": rate(exported, calls), "sb3_predict_calls_per_s": rate(sb3, calls)}
        if control == "walker":
            row["soccerlab_walker_steps_per_s"] = walker_rate(loaded, predict, obs, calls)
        out[f"batch_{batch}"] = {**{k: round(v, 1) for k, v in row.items()},
                                 **{k.replace("calls", "actions").replace("steps", "actions"):
                                    round(v * batch, 1) for k, v in row.items()}}
    return out


def walker_rate(loaded, predict, obs: np.ndarray, calls: int) -> float:
    """soccerlab's own per-env-step walker control: predict every 10 steps, walker every step."""
    from soccerlab.envs.factory import eval_suite

    venv = eval_suite(loaded.cfg)[0][1](1)
    try:
        base = venv.envs[0].unwrapped.walker
    finally:
        venv.close()
    from soccerlab.envs.soccer import JoystickWalker, scale_command

    n = obs.shape[0]
    walker = JoystickWalker(base.policy, base.config, num_envs=n)
    quat = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    state = {"t": 0, "command": np.zeros((n, 3))}

    def step():
        if state["t"] % 10 == 0:
            action = predict(loaded.vecnorm.normalize_obs(obs))
            state["command"] = scale_command(action, base.config.command_ranges)
        walker.step(obs[:, :12], obs[:, 12:24], quat, obs[:, 27:30], state["command"])
        state["t"] += 1

    return rate(step, calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walker", help="walker .pt (its .yaml beside it); default: a tiny fixture")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--net", default="256,256", help="policy hidden layers")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from soccerlab.export import export_run

    net = [int(x) for x in args.net.split(",")]
    results = {"net_arch": net, "torch_threads": 1}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.walker:
            walker = args.walker
        else:
            from _soccer_fixtures import write_walker

            walker = str(write_walker(tmp)[0])
        runs = {"torque": train(tmp, "torque", net),
                "walker": train(tmp, "walker", net, control="walker", walker={"path": walker})}
        for control, run in runs.items():
            result = export_run(run, tmp / f"export-{control}")
            results[control] = {
                "export_seconds": round(result.seconds, 2),
                "check": f"{len(result.manifest['tasks'])} tasks x seeds {result.manifest['check']['seeds']}, "
                         f"{result.manifest['check']['max_episode_steps']} env steps per episode",
                **measure(run, result.folder, control, args.calls),
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
