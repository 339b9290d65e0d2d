"""Env steps per second: fast backend vs sai-mujoco, side by side, printed as JSON.

For each task and each N, four ways of stepping N envs with random torques (resets included,
at their natural rate: random torques fall in a few hundred steps) are measured interleaved,
``--repeats`` times, and the median is reported:

- ``fast``: ``FastSoccerSim`` arrays API (step + reset of finished slots), default threads
  (adaptive: all cores or one, whichever is faster lately); ``fast_t1``, ``fast_t2``...:
  the same with a fixed number of physics threads;
- ``fast_vec``: ``FastSoccerVecEnv`` (SB3 VecEnv: auto-reset, info dicts, obs copies);
- ``sai``: N ``gym.make`` sai-mujoco envs stepped in a loop in this process;
- ``subproc``: SB3 ``SubprocVecEnv`` over N sai-mujoco envs (``torch.set_num_threads(1)``
  in every worker; only for N <= ``--subproc-max``: each worker costs ~0.4 GB).

``<fast>_physics_share`` is the fraction of the fast backend's wall time its physics threads
spent inside ``mj_step``: thread-seconds / (wall seconds x threads used, on average).

Quick run:  python benchmarks/sim_throughput.py --tasks goalie_penalty_kick --n 1 8 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

ALL_TASKS = ["goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target", "penalty_kick"]


def _make_worker_env(env_id: str):
    def make():
        import gymnasium as gym
        import sai_mujoco  # noqa: F401
        import torch

        torch.set_num_threads(1)
        return gym.make(env_id)

    return make


class Runner:
    """One backend with N envs and a bank of random actions; ``run(k)`` = k batched steps."""

    def __init__(self, kind: str, task: str, n: int, seed: int, threads: int | None) -> None:
        from soccerlab.envs.soccer.fast import FastSoccerSim, get_fast_task

        self.n = n
        env_id = get_fast_task(task).env_id
        rng = np.random.default_rng(seed)
        if kind.startswith("fast_t"):
            threads, kind = int(kind[len("fast_t"):]), "fast"
        self.name = kind
        if kind == "fast":
            self.sim = FastSoccerSim(task, n, seed=seed, n_threads=threads)
            self.sim.reset()
            self.sim.physics.timing = True
            space = self.sim.action_space
        elif kind == "fast_vec":
            from soccerlab.envs.soccer.fast import FastSoccerVecEnv

            self.venv = FastSoccerVecEnv(task, n, seed=seed, n_threads=threads)
            self.venv.reset()
            space = self.venv.action_space
        elif kind == "sai":
            import gymnasium as gym
            import sai_mujoco  # noqa: F401

            self.envs = [gym.make(env_id) for _ in range(n)]
            for i, env in enumerate(self.envs):
                env.reset(seed=seed + i)
            space = self.envs[0].action_space
        elif kind == "subproc":
            from stable_baselines3.common.vec_env import SubprocVecEnv

            self.venv = SubprocVecEnv([_make_worker_env(env_id) for _ in range(n)])
            self.venv.seed(seed)
            self.venv.reset()
            space = self.venv.action_space
        else:
            raise ValueError(kind)
        self.actions = rng.uniform(space.low, space.high, size=(64, n, space.shape[0])).astype(
            np.float32)
        self.t = 0

    def run(self, steps: int) -> float:
        """Run ``steps`` batched steps; return env steps per second."""
        start = time.perf_counter()
        for _ in range(steps):
            a = self.actions[self.t % 64]
            self.t += 1
            if self.name == "fast":
                out = self.sim.step(a)
                done = out.terminated | out.truncated
                if done.any():
                    self.sim.reset(np.flatnonzero(done))
            elif self.name == "sai":
                for env, ai in zip(self.envs, a, strict=True):
                    _, _, term, trunc, _ = env.step(ai)
                    if term or trunc:
                        env.reset()
            else:
                self.venv.step(a)
        return self.n * steps / (time.perf_counter() - start)

    def close(self) -> None:
        if self.name == "fast":
            self.sim.close()
        elif self.name == "sai":
            for env in self.envs:
                env.close()
        else:
            self.venv.close()


def bench(task: str, n: int, kinds: list[str], env_steps: int, repeats: int, seed: int,
          threads: int | None) -> dict:
    runners = {k: Runner(k, task, n, seed, threads) for k in kinds}
    shares: dict[str, float] = {}
    steps = max(10, env_steps // n)
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for r in runners.values():
            r.run(max(2, steps // 10))  # warm-up
        for _ in range(repeats):
            for k, r in runners.items():
                if r.name == "fast":
                    phys = r.sim.physics
                    phys.mj_seconds = [0.0] * phys.n_threads
                    before = dict(phys.thread_steps)
                    t0 = time.perf_counter()
                    rates[k].append(r.run(steps))
                    wall = time.perf_counter() - t0
                    used = {t: phys.thread_steps[t] - before.get(t, 0) for t in phys.thread_steps}
                    threads_avg = sum(t * c for t, c in used.items()) / max(1, sum(used.values()))
                    shares[k] = sum(phys.mj_seconds) / (wall * threads_avg)
                else:
                    rates[k].append(r.run(steps))
    finally:
        for r in runners.values():
            r.close()
    row: dict = {"task": task, "n_envs": n, "batch_steps": steps}
    for k in kinds:
        row[f"{k}_steps_per_s"] = round(statistics.median(rates[k]))
        row[f"{k}_all"] = [round(x) for x in rates[k]]
    for k in kinds:
        if runners[k].name == "fast":
            phys = runners[k].sim.physics
            row[f"{k}_thread_steps"] = {str(t): c for t, c in phys.thread_steps.items()}
            row[f"{k}_physics_share"] = round(shares[k], 3)
            for base in ("sai", "subproc"):
                if base in kinds:
                    row[f"{k}_vs_{base}"] = round(row[f"{k}_steps_per_s"] /
                                                  row[f"{base}_steps_per_s"], 2)
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=ALL_TASKS)
    p.add_argument("--n", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--backends", nargs="+", default=["fast", "fast_vec", "sai", "subproc"])
    p.add_argument("--env-steps", type=int, default=3000,
                   help="env steps per backend per repeat (batched steps = this / N)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--subproc-max", type=int, default=16)
    p.add_argument("--threads", type=int, default=None, help="fast backend physics threads")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    results = []
    load_before = os.getloadavg()
    for task in args.tasks:
        for n in args.n:
            kinds = [k for k in args.backends if not (k == "subproc" and n > args.subproc_max)]
            row = bench(task, n, kinds, args.env_steps, args.repeats, args.seed, args.threads)
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "config": vars(args),
        "results": results,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
