"""Multi-episode, multi-seed evaluation of a policy, and its report (dict, JSON, table).

An evaluation runs ``episodes`` episodes for each seed: env i of a VecEnv is seeded with
``seeds[i]`` at the first reset and keeps its own random stream afterwards, so the same policy,
seeds and episode count always play the same episodes. Envs that have finished their quota keep
stepping (their results are ignored) so that no seed is favoured by short episodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from soccerlab.batching import pad_rows
from soccerlab.envs.factory import seed_each

Predict = Callable[[Any], np.ndarray]


@dataclass
class Episode:
    group: str
    seed: int
    ret: float
    length: int
    success: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_episodes(
    predict: Predict,
    venv: VecEnv,
    seeds: Sequence[int],
    episodes: int,
    group: str,
    normalizer: VecNormalize | None = None,
) -> list[Episode]:
    """Play ``episodes`` episodes per seed on ``venv`` (one env per seed)."""
    seed_each(venv, seeds)
    obs = venv.reset()
    n = venv.num_envs
    remaining = np.full(n, episodes)
    ret = np.zeros(n)
    length = np.zeros(n, dtype=int)
    done_eps: list[Episode] = []
    while remaining.any():
        actions = predict(normalizer.normalize_obs(obs) if normalizer is not None else obs)
        obs, rewards, dones, infos = venv.step(actions)
        ret += rewards
        length += 1
        for i in np.flatnonzero(dones):
            if remaining[i] > 0:
                done_eps.append(_episode(group, seeds[i], ret[i], length[i], infos[i]))
                remaining[i] -= 1
            ret[i], length[i] = 0.0, 0
    return done_eps


def evaluate_config(cfg: Any, predict: Predict, seeds: Sequence[int], episodes: int,
                    normalizer: Any = None, deterministic: bool = True) -> EvalReport:
    """``episodes`` episodes per seed on every env of the config's evaluation suite (soccer:
    each task), each suite env built for the call and closed after it."""
    from soccerlab.envs.factory import eval_suite

    found: list[Episode] = []
    for name, make in eval_suite(cfg):
        venv = make(len(seeds))
        try:
            found += run_episodes(predict, venv, seeds, episodes, name, normalizer)
        finally:
            venv.close()
    return EvalReport(found, deterministic, cfg.eval.task_weights)


def _episode(group: str, seed: int, ret: float, length: int, info: dict[str, Any]) -> Episode:
    success = None
    for key in ("is_success", "success"):
        if key in info:
            success = bool(info[key])
            break
    extra = {k: info[k] for k in ("soccer",) if k in info}
    return Episode(group, int(seed), float(ret), int(length), success, extra)


def _stats(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std())


@dataclass
class EvalReport:
    """Episodes grouped by env (or task), with summaries and the score that selects best models.

    Soccer episodes (those whose last info carried ``info["soccer"]``) are also scored by the
    competition's formula; then the score is the overall competition score (the weighted mean of
    the per-task mean scores, ``task_weights`` defaulting to equal) instead of the mean return.
    """

    episodes: list[Episode]
    deterministic: bool = True
    task_weights: dict[str, float] | None = None

    @property
    def competition(self) -> dict[str, Any] | None:
        """The per-task and overall competition report, or None for non-soccer episodes."""
        records = [ep.extra["soccer"] for ep in self.episodes if "soccer" in ep.extra]
        if not records:
            return None
        from soccerlab.envs.soccer.behaviour.scoring import aggregate_episodes

        return aggregate_episodes(records, self.task_weights)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(ep.group for ep in self.episodes))

    def summary(self, group: str | None = None) -> dict[str, Any]:
        eps = [ep for ep in self.episodes if group is None or ep.group == group]
        mean_r, std_r = _stats([ep.ret for ep in eps])
        mean_l, std_l = _stats([ep.length for ep in eps])
        flags = [ep.success for ep in eps if ep.success is not None]
        return {
            "episodes": len(eps),
            "mean_return": mean_r,
            "std_return": std_r,
            "mean_length": mean_l,
            "std_length": std_l,
            "success_rate": float(np.mean(flags)) if flags else None,
        }

    @property
    def score(self) -> float:
        """What best-model selection maximises: the overall competition score for soccer, else
        the mean return over all episodes."""
        comp = self.competition
        return comp["overall"]["score"] if comp else self.summary()["mean_return"]

    def extra_metrics(self) -> dict[str, float]:
        """Further metrics to log, keyed by their logging name (soccer: ``comp/...``)."""
        comp = self.competition
        if not comp:
            return {}
        out = {"comp/overall": comp["overall"]["score"]}
        for task, t in comp["tasks"].items():
            out[f"comp/{task}"] = t["mean_score"]
            out[f"eval/{task}/success_rate"] = t["success_rate"]
            out[f"eval/{task}/fall_rate"] = t["fall_rate"]
        return out

    def to_dict(self) -> dict[str, Any]:
        out = {
            "deterministic": self.deterministic,
            "score": self.score,
            "overall": self.summary(),
            "groups": {g: self.summary(g) for g in self.groups},
            "episodes": [asdict(ep) for ep in self.episodes],
        }
        if self.competition:
            out["competition"] = self.competition
        return out

    def table(self) -> str:
        return self._competition_table() if self.competition else self._return_table()

    def _competition_table(self) -> str:
        comp = self.competition
        header = (f"{'task':<24} {'episodes':>8} {'score (mean ± std)':>20} {'success':>8} "
                  f"{'fall':>6} {'length':>8} {'return (mean ± std)':>22}")
        lines = [header, "-" * len(header)]
        for task, t in comp["tasks"].items():
            s = self.summary(task)
            score = f"{t['mean_score']:.3f} ± {t['std_score']:.3f}"
            ret = f"{s['mean_return']:.1f} ± {s['std_return']:.1f}"
            lines.append(f"{task:<24} {t['n_episodes']:>8} {score:>20} {100 * t['success_rate']:>7.0f}% "
                         f"{100 * t['fall_rate']:>5.0f}% {t['mean_length']:>8.0f} {ret:>22}")
        weights = comp["overall"]["weights"]
        equal = len(set(round(w, 9) for w in weights.values())) <= 1
        lines.append(f"{'overall':<24} {comp['overall']['n_episodes']:>8} {comp['overall']['score']:>20.3f}"
                     f"   ({'equal task weights' if equal else 'weights ' + str(weights)})")
        mode = "deterministic" if self.deterministic else "stochastic"
        lines.append(f"competition score: {self.score:.3f}  [{mode}; length in env steps]")
        return "\n".join(lines)

    def _return_table(self) -> str:
        rows = [(g, self.summary(g)) for g in self.groups]
        if len(rows) > 1:
            rows.append(("overall", self.summary()))
        header = f"{'env':<32} {'episodes':>8} {'return (mean ± std)':>24} {'length':>9} {'success':>8}"
        lines = [header, "-" * len(header)]
        for name, s in rows:
            ret = f"{s['mean_return']:.2f} ± {s['std_return']:.2f}"
            succ = "-" if s["success_rate"] is None else f"{100 * s['success_rate']:.0f}%"
            lines.append(f"{name:<32} {s['episodes']:>8} {ret:>24} {s['mean_length']:>9.1f} {succ:>8}")
        lines.append(f"score (mean return): {self.score:.3f}  [{'deterministic' if self.deterministic else 'stochastic'}]")
        return "\n".join(lines)


def model_predictor(model: Any, deterministic: bool) -> Predict:
    """``obs -> actions`` for a batch. Array batches are padded (``batching.pad_rows``) so that
    an env's deterministic actions do not depend on how many envs are evaluated together:
    ``--seeds 0,1,2`` plays the same episodes as the first three of ``--seeds 0,...,9``."""
    def predict(obs: Any) -> np.ndarray:
        if isinstance(obs, np.ndarray) and obs.ndim >= 2:
            return model.predict(pad_rows(obs), deterministic=deterministic)[0][: len(obs)]
        return model.predict(obs, deterministic=deterministic)[0]

    return predict
