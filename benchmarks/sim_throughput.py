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

Soccer-level rows (soccerlab's ``SoccerVecEnv``: unified observation, ``--control`` torque or
walker, reward, episode records) with random actions in [-1, 1]; ``--tasks`` may name
``showdown`` (the three competition tasks in one VecEnv):

- ``soccer_fast``: on the fast backend (``env.backend: fast``);
- ``soccer_sai``: on the sai backend (``env.backend: sai``).

They report agent steps/s and env steps/s (agent steps x 10 under walker control: nominal,
an episode that ends inside a walker tick counts 10).

``--ppo``: end-to-end PPO training rate of ``soccerlab train`` (one fresh process each, the
rate it records in meta.json: agent steps / seconds in ``model.learn``) on one config with
``env.backend`` = sai, fast, interleaved.

Quick run:  python benchmarks/sim_throughput.py --tasks goalie_penalty_kick --n 1 8 --repeats 1
Walker:     python benchmarks/sim_throughput.py --tasks goalie_penalty_kick showdown --n 6 24 \
              --control walker --walker WALKER.pt --backends soccer_fast soccer_sai
PPO:        python benchmarks/sim_throughput.py --ppo --walker WALKER.pt --tasks --n
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ALL_TASKS = ["goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target", "penalty_kick"]
SHOWDOWN = {"goalie_penalty_kick": 1.0, "obstacle_penalty_kick": 1.0, "kick_to_target": 1.0}
SOCCER_KINDS = ("soccer_fast", "soccer_sai")


def _soccer_tasks(task: str) -> dict[str, float]:
    return dict(SHOWDOWN) if task == "showdown" else {task: 1.0}


def _soccer_venv(kind: str, task: str, n: int, control: str, walker: str | None):
    """The ``SoccerVecEnv`` a soccer-level row steps (see the module docstring)."""
    from soccerlab.envs.soccer import SoccerSpec, WalkerSpec
    from soccerlab.envs.soccer.vec_env import SoccerVecEnv

    spec = SoccerSpec(_soccer_tasks(task), control=control,
                      walker=None if walker is None else WalkerSpec(walker),
                      backend="fast" if kind == "soccer_fast" else "sai")
    return SoccerVecEnv(spec, n)


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

    def __init__(self, kind: str, task: str, n: int, seed: int, threads: int | None,
                 control: str = "torque", walker: str | None = None) -> None:
        from soccerlab.envs.soccer.backends.fast import FastSoccerSim, get_fast_task

        self.n = n
        self.decimation = 10 if kind in SOCCER_KINDS and control == "walker" else 1
        env_id = None if task == "showdown" else get_fast_task(task).env_id
        rng = np.random.default_rng(seed)
        if kind.startswith("fast_t"):
            threads, kind = int(kind[len("fast_t"):]), "fast"
        self.name = kind
        if kind in SOCCER_KINDS:
            self.venv = _soccer_venv(kind, task, n, control, walker)
            self.venv.seed(seed)
            self.venv.reset()
            space = self.venv.action_space
            if kind == "soccer_fast":
                for g in self.venv.batch.groups:
                    g.sim.physics.timing = True
        elif kind == "fast":
            self.sim = FastSoccerSim(task, n, seed=seed, n_threads=threads)
            self.sim.reset()
            self.sim.physics.timing = True
            space = self.sim.action_space
        elif kind == "fast_vec":
            from fast_vec_env import FastSoccerVecEnv

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

    @property
    def physics(self) -> list:
        """The fast backend's ``BatchPhysics`` objects (empty for the others)."""
        if self.name == "fast":
            return [self.sim.physics]
        if self.name == "soccer_fast":
            return [g.sim.physics for g in self.venv.batch.groups]
        return []

    def run(self, steps: int) -> float:
        """Run ``steps`` batched steps; return (agent) steps per second."""
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


def _timed_run(r: Runner, steps: int) -> tuple[float, float | None]:
    """(rate, physics share) of one measured run."""
    phys = r.physics
    if not phys:
        return r.run(steps), None
    for p in phys:
        p.mj_seconds = [0.0] * p.n_threads
    before = [dict(p.thread_steps) for p in phys]
    t0 = time.perf_counter()
    rate = r.run(steps)
    wall = time.perf_counter() - t0
    mj, thread_time = 0.0, 0.0
    for p, b in zip(phys, before, strict=True):
        used = {t: p.thread_steps[t] - b.get(t, 0) for t in p.thread_steps}
        mj += sum(p.mj_seconds)
        thread_time += sum(t * c for t, c in used.items()) / max(1, sum(used.values()))
    # threads used on average over the groups (stepped one after the other)
    return rate, mj / (wall * thread_time / len(phys))


def bench(task: str, n: int, kinds: list[str], env_steps: int, repeats: int, seed: int,
          threads: int | None, control: str = "torque", walker: str | None = None) -> dict:
    runners = {k: Runner(k, task, n, seed, threads, control, walker) for k in kinds}
    shares: dict[str, list[float]] = {k: [] for k in kinds}
    threads_used: dict[str, list[dict[str, int]]] = {}
    soccer_walker = control == "walker" and any(k in SOCCER_KINDS for k in kinds)
    steps = max(10, env_steps // n // (10 if soccer_walker else 1))
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for r in runners.values():
            r.run(max(2, steps // 10))  # warm-up
        for _ in range(repeats):
            for k, r in runners.items():
                rate, share = _timed_run(r, steps)
                rates[k].append(rate)
                if share is not None:
                    shares[k].append(share)
        for k, r in runners.items():
            threads_used[k] = [{str(t): c for t, c in p.thread_steps.items()} for p in r.physics]
    finally:
        for r in runners.values():
            r.close()
    row: dict = {"task": task, "n_envs": n, "batch_steps": steps}
    if any(k in SOCCER_KINDS for k in kinds):
        row["control"] = control
    for k in kinds:
        unit = "agent_steps_per_s" if runners[k].decimation > 1 else "steps_per_s"
        row[f"{k}_{unit}"] = round(statistics.median(rates[k]))
        if runners[k].decimation > 1:
            row[f"{k}_env_steps_per_s"] = round(statistics.median(rates[k]) * 10)
        row[f"{k}_all"] = [round(x) for x in rates[k]]
    for k in kinds:
        if shares[k]:
            row[f"{k}_thread_steps"] = threads_used[k]
            row[f"{k}_physics_share"] = round(statistics.median(shares[k]), 3)
            bases = ("soccer_sai",) if k == "soccer_fast" else ("sai", "subproc")
            for base in bases:
                if base in kinds:
                    row[f"{k}_vs_{base}"] = round(statistics.median(rates[k]) /
                                                  statistics.median(rates[base]), 2)
    return row


PPO_BACKENDS = (("sai", "dummy"), ("fast", "dummy"))


def ppo_config(walker: str, n_envs: int, n_steps: int, rollouts: int, out: str) -> dict:
    """configs/showdown_walker_ppo.yaml with a short budget, no periodic evaluation."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "configs" / "showdown_walker_ppo.yaml").read_text())
    cfg["experiment"].update(output_dir=out)
    cfg["env"].update(n_envs=n_envs)
    cfg["env"]["walker"]["path"] = walker
    cfg["algo"]["params"].update(n_steps=n_steps)
    cfg["train"].update(total_timesteps=n_steps * n_envs * rollouts, checkpoint_every=None,
                        progress_bar=False)
    cfg["eval"].update(every=None, seeds=[0], episodes=1)
    return cfg


def ppo_bench(walker: str, n_envs: int, n_steps: int, rollouts: int, repeats: int,
              subproc_max: int) -> dict:
    """Agent steps/s of ``soccerlab train`` on each backend, one fresh process per run."""
    import subprocess
    import tempfile

    import yaml

    backends = [b for b in PPO_BACKENDS if b[1] == "dummy" or n_envs <= subproc_max]
    rates: dict[str, list[float]] = {f"{b}_{v}": [] for b, v in backends}
    walls: dict[str, list[float]] = {k: [] for k in rates}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            for backend, vec in backends if rep % 2 == 0 else backends[::-1]:
                key = f"{backend}_{vec}"
                out = Path(tmp) / f"{key}-{rep}"
                cfg = ppo_config(walker, n_envs, n_steps, rollouts, str(out))
                cfg["env"].update(backend=backend, vec_env=vec)
                path = Path(tmp) / f"{key}-{rep}.yaml"
                path.write_text(yaml.safe_dump(cfg))
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "soccerlab", "train", str(path)], env=env,
                               check=True, capture_output=True)
                walls[key].append(time.perf_counter() - t0)
                [meta] = out.rglob("meta.json")
                rates[key].append(json.loads(meta.read_text())["steps_per_second"])
    row: dict = {"ppo": "configs/showdown_walker_ppo.yaml", "n_envs": n_envs,
                 "n_steps": n_steps, "total_timesteps": n_steps * n_envs * rollouts}
    for key in rates:
        row[f"{key}_agent_steps_per_s"] = round(statistics.median(rates[key]), 1)
        row[f"{key}_all"] = rates[key]
        row[f"{key}_process_wall_s"] = round(statistics.median(walls[key]), 1)
    for key in rates:
        if key != "fast_dummy":
            row[f"fast_vs_{key}"] = round(statistics.median(rates["fast_dummy"]) /
                                          statistics.median(rates[key]), 2)
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="*", default=ALL_TASKS)
    p.add_argument("--n", nargs="*", type=int, default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--backends", nargs="+", default=["fast", "fast_vec", "sai", "subproc"])
    p.add_argument("--env-steps", type=int, default=3000,
                   help="env steps per backend per repeat (batched steps = this / N)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--subproc-max", type=int, default=16)
    p.add_argument("--threads", type=int, default=None, help="fast backend physics threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--control", choices=("torque", "walker"), default="torque",
                   help="soccer_* backends: control mode")
    p.add_argument("--walker", default=None, help="walker .pt (its .yaml beside it)")
    p.add_argument("--ppo", action="store_true", help="also run the soccerlab train rows")
    p.add_argument("--ppo-n-envs", nargs="+", type=int, default=[6])
    p.add_argument("--ppo-rollout", type=int, default=1536,
                   help="agent steps per PPO rollout (n_steps = this / n_envs)")
    p.add_argument("--ppo-rollouts", type=int, default=2)
    args = p.parse_args(argv)
    if (args.control == "walker" or args.ppo) and not args.walker:
        p.error("--control walker and --ppo need --walker")
    import torch

    torch.set_num_threads(1)  # as soccerlab's learner and env workers do

    results = []
    load_before = os.getloadavg()
    for task in args.tasks:
        for n in args.n:
            if task == "showdown" and n < len(SHOWDOWN):
                continue  # the fast backend needs one fixed task per env (n >= 3)
            kinds = [k for k in args.backends
                     if not (k == "subproc" and n > args.subproc_max)]
            row = bench(task, n, kinds, args.env_steps, args.repeats, args.seed, args.threads,
                        args.control, args.walker)
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if args.ppo:
        for n in args.ppo_n_envs:
            row = ppo_bench(args.walker, n, args.ppo_rollout // n, args.ppo_rollouts,
                            args.repeats, args.subproc_max)
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
