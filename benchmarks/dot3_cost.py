"""What exactness costs the fast backend where BLAS ``ddot`` is not a sequential sum.

On some CPUs (measured: an AVX-512 AMD EPYC) numpy's 3-vector ``np.dot``/``np.linalg.norm``
uses fused multiply-adds, so ``compute.dot3`` takes one ``np.dot`` per row to stay bit-exact
(``compute.blas_dot3_is_sequential``). This times ``FastSoccerSim`` steps (random torques,
resets included, one physics thread) with that per-row path against the vectorised sum
(wrong in the last bit on such machines, timed only for the comparison), interleaved.

    python benchmarks/dot3_cost.py [--n 16] [--repeats 10] [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import soccerlab.envs.soccer.backends.fast.compute as compute
from soccerlab.envs.soccer.backends.fast import FastSoccerSim


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--tasks", nargs="+", default=["goalie_penalty_kick", "kick_to_target"])
    args = p.parse_args()
    machine_sequential = compute.blas_dot3_is_sequential()
    report: dict = {"blas_dot3_is_sequential": machine_sequential, "n_envs": args.n}
    original = compute.blas_dot3_is_sequential
    for task in args.tasks:
        sim = FastSoccerSim(task, args.n, seed=0, n_threads=1)
        sim.reset()
        actions = (np.random.default_rng(0).uniform(-1, 1, (args.steps, args.n, 12))
                   * 20).astype(np.float32)
        rates: dict[str, list[float]] = {"per_row": [], "vectorised": []}
        try:
            for rep in range(args.repeats):
                order = ("per_row", "vectorised") if rep % 2 == 0 else ("vectorised", "per_row")
                for mode in order:
                    compute.blas_dot3_is_sequential = lambda m=mode: m == "vectorised"
                    start = time.perf_counter()
                    for a in actions:
                        out = sim.step(a)
                        done = np.flatnonzero(out.terminated | out.truncated)
                        if done.size:
                            sim.reset(done)
                    rates[mode].append(args.steps * args.n / (time.perf_counter() - start))
        finally:
            compute.blas_dot3_is_sequential = original
            sim.close()
        row = {k: round(statistics.median(v)) for k, v in rates.items()}
        row["per_row_over_vectorised"] = round(row["per_row"] / row["vectorised"], 3)
        report[task] = row
    print(json.dumps(report))


if __name__ == "__main__":
    main()
