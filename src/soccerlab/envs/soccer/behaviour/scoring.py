"""The competition score (the website's formula) and the per-task evaluation report.

An episode is scored once, from its LAST step's ``reward_terms``: each term times its task weight
(booleans count 1/0), plus the constant ``steps`` term (value 1). A task's score is the mean over
its episodes; the overall score is a weighted mean over tasks (equal weights by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from soccerlab.envs.soccer.behaviour.tasks import SoccerTask, get_task

TaskLike = str | SoccerTask


def _task(task: TaskLike) -> SoccerTask:
    return task if isinstance(task, SoccerTask) else get_task(task)


def batch_scores(
    terms: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    tasks: TaskLike | Sequence[TaskLike],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Scores of N episodes from their last steps' reward terms.

    Args:
        terms: Dict of arrays of shape (N,) (term -> value per episode), or a list of N term
            dicts. Terms a task doesn't weigh are ignored; weighted terms that are missing
            count 0. A ``steps`` entry is ignored: that term is always 1.
        tasks: One task for all episodes, or one per episode.

    Returns:
        ``(scores, components)``: scores (N,) float64, and for every weighted term (``steps``
        included) its weighted contribution (N,). The components sum to the score.
    """
    if isinstance(terms, Mapping):
        lengths = {np.size(v) for v in terms.values()}
        n = max(lengths) if lengths else 1
        table = {
            k: np.broadcast_to(np.asarray(v, dtype=np.float64).reshape(-1), (n,))
            for k, v in terms.items()
        }
    else:
        n = len(terms)
        keys = {k for row in terms for k in row}
        table = {k: np.array([float(row.get(k, 0.0)) for row in terms]) for k in keys}
    per_env = (
        [_task(tasks)] * n if isinstance(tasks, (str, SoccerTask)) else [_task(t) for t in tasks]
    )
    if len(per_env) != n:
        raise ValueError(f"{len(per_env)} tasks for {n} episodes")
    names = list(dict.fromkeys(k for t in per_env for k in t.score_weights))
    components = {}
    for name in names:
        weights = np.array([t.score_weights.get(name, 0.0) for t in per_env])
        values = np.ones(n) if name == "steps" else table.get(name, np.zeros(n))
        components[name] = weights * values
    scores = np.sum(list(components.values()), axis=0) if components else np.zeros(n)
    return np.asarray(scores, dtype=np.float64), components


def episode_score(terms: Mapping[str, Any], task: TaskLike) -> tuple[float, dict[str, float]]:
    """Score of one episode from its last step's reward terms: ``(score, components)``."""
    scores, components = batch_scores({k: [v] for k, v in terms.items()}, [task])
    return float(scores[0]), {k: float(v[0]) for k, v in components.items()}


def aggregate_episodes(
    episodes: Iterable[Mapping[str, Any]],
    task_weights: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Per-task and overall report from episode records (the envs' ``info["soccer"]`` dicts).

    Each record needs ``task``, ``score``, ``success``, ``fallen``, ``length`` (and optionally
    ``components``). Per task: ``n_episodes``, ``mean_score``, ``std_score`` (population std),
    ``success_rate``, ``fall_rate``, ``mean_length`` (env steps), ``mean_components``.

    Overall: the weighted mean of the task mean scores. ``task_weights`` defaults to equal
    weights over the tasks present; tasks present but not in ``task_weights`` get weight 0,
    and the weights are renormalised over the tasks that have episodes.
    """
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for episode in episodes:
        by_task.setdefault(str(episode["task"]), []).append(episode)
    tasks: dict[str, dict[str, Any]] = {}
    for name, eps in by_task.items():
        scores = np.array([float(e["score"]) for e in eps])
        keys = list(dict.fromkeys(k for e in eps for k in e.get("components", {})))
        tasks[name] = {
            "n_episodes": len(eps),
            "mean_score": float(scores.mean()),
            "std_score": float(scores.std()),
            "success_rate": float(np.mean([bool(e["success"]) for e in eps])),
            "fall_rate": float(np.mean([bool(e["fallen"]) for e in eps])),
            "mean_length": float(np.mean([float(e["length"]) for e in eps])),
            "mean_components": {
                k: float(np.mean([e.get("components", {}).get(k, 0.0) for e in eps])) for k in keys
            },
        }
    raw = (
        {name: 1.0 for name in tasks}
        if task_weights is None
        else {name: float(task_weights.get(name, 0.0)) for name in tasks}
    )
    if any(w < 0 for w in raw.values()):
        raise ValueError(f"task weights must be >= 0, got {dict(raw)}")
    total = sum(raw.values())
    weights = {name: (w / total if total > 0 else 0.0) for name, w in raw.items()}
    overall = (
        sum(weights[name] * tasks[name]["mean_score"] for name in tasks)
        if total > 0
        else float("nan")
    )
    return {
        "tasks": tasks,
        "overall": {
            "score": float(overall),
            "weights": weights,
            "n_episodes": sum(t["n_episodes"] for t in tasks.values()),
        },
    }
