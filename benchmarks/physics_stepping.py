"""Raw physics throughput: Python threads over ``mj_step`` vs ``mujoco.rollout``, as JSON.

N copies of the goalie scene (random torques, robots falling like in training) are stepped
one physics step at a time, the way an env step needs it, interleaved and repeated:

- ``loop``: one thread, one MjData per instance, ``mj_step`` per instance;
- ``threads``: ``--threads`` Python threads over the same, ``mj_step`` per instance (GIL
  released inside);
- ``swap``: one thread, one MjData for all: ``mj_setState`` / ``mj_step`` / ``mj_getState``
  per instance (what the fast backend does, per thread);
- ``rollout``: ``mujoco.rollout.rollout(nstep=1)`` with one MjData per thread and a persistent
  pool, state in and out through arrays (what it needs to resume; derived quantities such as
  ``site_xpos`` or contacts are *not* available per instance afterwards, so the fast backend
  would need an extra ``mj_forward`` per instance on top of these numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
from mujoco import rollout

from soccerlab.envs.soccer.backends.fast import FastSoccerSim

_STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS


def measure(n: int, args: argparse.Namespace) -> dict:
    """Median env steps per second of the three ways for N instances."""
    sim = FastSoccerSim("goalie_penalty_kick", n, seed=0, n_threads=1)
    sim.reset()
    model = sim.physics.models[0]
    datas = [mujoco.MjData(model) for _ in range(n)]
    for d, st in zip(datas, sim.physics.states, strict=True):
        mujoco.mj_setState(model, d, st, mujoco.mjtState.mjSTATE_INTEGRATION)
    rng = np.random.default_rng(0)
    ctrl = rng.uniform(-1, 1, (args.steps, n, model.nu)) * model.actuator_ctrlrange[:, 1]

    def loop(lo: int, hi: int, t: int) -> None:
        for i in range(lo, hi):
            datas[i].ctrl[:] = ctrl[t, i]
            mujoco.mj_step(model, datas[i])

    def run_loop() -> float:
        t0 = time.perf_counter()
        for t in range(args.steps):
            loop(0, n, t)
        return n * args.steps / (time.perf_counter() - t0)

    pool = ThreadPoolExecutor(args.threads - 1) if args.threads > 1 else None

    def run_threads() -> float:
        k = args.threads
        bounds = [(j * n // k, (j + 1) * n // k) for j in range(k)]
        t0 = time.perf_counter()
        for t in range(args.steps):
            futures = [pool.submit(loop, *b, t) for b in bounds[1:]] if pool else []
            loop(*bounds[0], t)
            for f in futures:
                f.result()
        return n * args.steps / (time.perf_counter() - t0)

    rdatas = [mujoco.MjData(model) for _ in range(args.threads)]
    size = mujoco.mj_stateSize(model, _STATE)
    state = np.empty((n, size))
    for i, d in enumerate(datas):
        mujoco.mj_getState(model, d, state[i], _STATE)  # FULLPHYSICS, as rollout wants

    work = mujoco.MjData(model)
    ctrl_at = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_TIME | mujoco.mjtState.mjSTATE_QPOS
                                  | mujoco.mjtState.mjSTATE_QVEL | mujoco.mjtState.mjSTATE_ACT
                                  | mujoco.mjtState.mjSTATE_WARMSTART)
    integ = mujoco.mjtState.mjSTATE_INTEGRATION
    rows = np.array(sim.physics.states)

    def run_swap() -> float:
        t0 = time.perf_counter()
        for t in range(args.steps):
            rows[:, ctrl_at:ctrl_at + model.nu] = ctrl[t]
            for i in range(n):
                mujoco.mj_setState(model, work, rows[i], integ)
                mujoco.mj_step(model, work)
                mujoco.mj_getState(model, work, rows[i], integ)
        return n * args.steps / (time.perf_counter() - t0)

    def run_rollout() -> float:
        nonlocal state
        t0 = time.perf_counter()
        for t in range(args.steps):
            st, _ = rollout.rollout(model, rdatas, state, ctrl[t][:, None, :], nstep=1,
                                    persistent_pool=True)
            state = st[:, 0]
        return n * args.steps / (time.perf_counter() - t0)

    rates: dict[str, list[float]] = {"loop": [], "threads": [], "swap": [], "rollout": []}
    for _ in range(args.repeats):
        rates["loop"].append(run_loop())
        rates["threads"].append(run_threads())
        rates["swap"].append(run_swap())
        rates["rollout"].append(run_rollout())
    sim.close()
    if pool:
        pool.shutdown()
    return {"n_envs": n, **{f"{k}_steps_per_s": round(statistics.median(v))
                            for k, v in rates.items()}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", nargs="+", type=int, default=[8, 32])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    rows = [measure(n, args) for n in args.n]
    print(json.dumps({"cpus": os.cpu_count(), "loadavg": os.getloadavg(), "threads": args.threads,
                      "results": rows}, indent=1))


if __name__ == "__main__":
    main()
