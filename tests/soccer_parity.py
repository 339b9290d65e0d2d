"""Lock-step comparison of ``SoccerVecEnv`` on the fast backend with the same on sai.

Both run one ``SoccerSpec``, ``backend`` aside, and get the same seeds and the same random
actions; observations, rewards, dones, every info
value (sai's fields, ``reward_terms``, ``soccer``, ``task``, ``TimeLimit.truncated``,
``terminal_observation``, Monitor's return and length) and ``reset_infos`` are compared with
``==`` (NaN equals NaN; no tolerance). Used by ``tests/test_fast_soccer_parity.py`` and
``benchmarks/soccer_parity.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from soccerlab.envs.soccer import SoccerSpec, WalkerSpec
from soccerlab.envs.soccer.vec_env import SoccerVecEnv


@dataclass
class SoccerParityReport:
    """Outcome of ``run_soccer_parity``."""

    steps: int = 0  # agent steps x envs
    env_steps: int = 0  # simulator steps in finished episodes
    terminated: int = 0
    truncated: int = 0
    mid_step_ends: int = 0  # walker: episodes that ended inside an agent step
    tasks: Counter = field(default_factory=Counter)  # finished episodes per task
    outcomes: Counter = field(default_factory=Counter)  # success / fallen counts
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def same(a: Any, b: Any) -> bool:
    """Exact equality of two values (arrays, scalars, dicts, ...); NaN equals NaN."""
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return (isinstance(a, Mapping) and isinstance(b, Mapping) and list(a) == list(b)
                and all(same(a[k], b[k]) for k in a))
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return False
    if x.dtype.kind in "fc" or y.dtype.kind in "fc":
        return bool(np.array_equal(x.astype(np.float64), y.astype(np.float64), equal_nan=True))
    return bool(np.array_equal(x, y))


def compare_infos(rep: SoccerParityReport, where: str, ref: dict[str, Any],
                  fast: dict[str, Any]) -> None:
    """Record every difference between two info dicts (Monitor's wall time excepted)."""
    if list(ref) != list(fast):
        rep.mismatches.append(f"{where}: info keys {list(fast)} != {list(ref)}")
    for key in ref:
        mine, theirs = fast.get(key), ref[key]
        if key == "episode":
            mine = {k: v for k, v in (mine or {}).items() if k != "t"}
            theirs = {k: v for k, v in theirs.items() if k != "t"}
        if not same(mine, theirs):
            rep.mismatches.append(f"{where}: info[{key!r}] fast={mine} sai={theirs}")


def compare_step(rep: SoccerParityReport, where: str, ref: tuple, fast: tuple) -> None:
    """Compare two ``VecEnv.step`` results (obs, rewards, dones, infos)."""
    for name, a, b in zip(("obs", "reward", "done"), ref[:3], fast[:3], strict=True):
        if not same(a, b) or np.asarray(a).dtype != np.asarray(b).dtype:
            rep.mismatches.append(f"{where}: {name} differs: fast={b} sai={a}")
    for i, (r, f) in enumerate(zip(ref[3], fast[3], strict=True)):
        compare_infos(rep, f"{where} env {i}", r, f)


def _count(rep: SoccerParityReport, infos: list[dict[str, Any]], decimation: int) -> None:
    for info in infos:
        record = info.get("soccer")
        if record is None:
            continue
        truncated = info["TimeLimit.truncated"]
        rep.truncated += int(truncated)
        rep.terminated += int(not truncated)
        rep.env_steps += record["length"]
        rep.tasks[record["task"]] += 1
        rep.outcomes.update(k for k in ("success", "fallen") if record[k])
        rep.mid_step_ends += int(decimation > 1 and record["length"] % decimation != 0)


def run_soccer_parity(tasks: str | Mapping[str, float], n_envs: int, steps: int, *,
                      control: str = "torque", reward: str = "env", walker: Any = None,
                      observation: str = "world", max_episode_steps: int | None = None, seed: int = 0, action_seed: int = 1,
                      action_scale: float = 1.0, reseed_at: int | None = None,
                      max_mismatches: int = 5) -> SoccerParityReport:
    """Step the fast and the sai ``SoccerVecEnv`` side by side; report differences.

    Actions are uniform in ``action_scale`` x [-1, 1]. ``reseed_at``: at that step both are
    reseeded (env i with ``seed + 100 + i``, as ``evaluation.run_episodes`` does) and reset.
    """
    spec = SoccerSpec(tasks, control=control, reward=reward, observation=observation,
                      walker=walker if isinstance(walker, WalkerSpec) or not walker
                      else WalkerSpec(walker),
                      max_episode_steps=max_episode_steps)
    ref: VecEnv = SoccerVecEnv(spec.replace(backend="sai"), n_envs)
    fast: VecEnv | None = None
    rep = SoccerParityReport()
    try:
        fast = SoccerVecEnv(spec.replace(backend="fast"), n_envs)
        decimation = 10 if control == "walker" else 1
        rng = np.random.default_rng(action_seed)
        shape = (n_envs, *fast.action_space.shape)
        for venv in (ref, fast):
            venv.seed(seed)
        for t in range(steps):
            if t == 0 or t == reseed_at:
                for venv in (ref, fast):
                    venv._seeds = [seed + 100 * (t > 0) + i for i in range(n_envs)]  # noqa: SLF001
                ref_obs, fast_obs = ref.reset(), fast.reset()
                if not same(ref_obs, fast_obs):
                    rep.mismatches.append(f"reset at step {t}: observations differ")
                for i in range(n_envs):
                    compare_infos(rep, f"reset at step {t} env {i}", ref.reset_infos[i],
                                  fast.reset_infos[i])
            actions = (rng.uniform(-1.0, 1.0, shape) * action_scale).astype(np.float32)
            ref_out, fast_out = ref.step(actions), fast.step(actions)
            compare_step(rep, f"step {t}", ref_out, fast_out)
            for i in np.flatnonzero(ref_out[2]):
                compare_infos(rep, f"reset_infos after step {t} env {i}", ref.reset_infos[i],
                              fast.reset_infos[i])
            _count(rep, ref_out[3], decimation)
            rep.steps += n_envs
            if len(rep.mismatches) >= max_mismatches:
                break
    finally:
        ref.close()
        if fast is not None:
            fast.close()
    return rep
