"""Recording demonstrations: play a scripted expert or a trained policy and keep every step.

``record_demos`` runs ``episodes`` episodes per task on the fast backend (bit-identical to
sai-mujoco), episode ``i`` of a task seeded with ``seed + i`` whatever else runs beside it,
and returns a ``Demos`` (format: ``imitation/demos.py``). Under walker control ``commands``
are the policy's actions in [-1, 1] and ``actions`` the walker's 12 outputs computed at that
decision (``SoccerBatch.decision_actions``); under torque control ``actions`` are the policy's
actions and ``commands`` zeros. Observations are the unified ones the policy saw, before any
normalisation; the 89 unified values even where the policy also sees the time feature
(``steps`` holds what it is computed from).

A policy here is an object with ``reset(mask)`` and ``act(obs, infos) -> actions``:
``ExpertPolicy`` wraps a scripted expert, ``ModelPolicy`` a loaded SB3 model (deterministic
actions, the run's observation normaliser applied). A policy that also sets ``labels`` in
``act`` gets those recorded as the rows' actions (``commands`` under walker control) instead of
what it played: ``LabelledPolicy`` plays a model and records an expert's actions for the same
states (DAgger).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from soccerlab.envs.soccer.batch import SoccerBatch
from soccerlab.envs.soccer.spec import SoccerSpec
from soccerlab.errors import UserError
from soccerlab.imitation.demos import OBS_SIZE, Demos
from soccerlab.imitation.experts import Expert


class ExpertPolicy:
    """A scripted expert (``imitation.experts``) as a recording policy."""

    def __init__(self, expert: Expert) -> None:
        self.expert = expert

    def reset(self, mask: np.ndarray) -> None:
        self.expert.reset(mask)

    def act(self, obs: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        return self.expert.act(infos)


class ModelPolicy:
    """An SB3 model's deterministic actions, on normalised observations where the run
    normalises them (``normalizer``: its ``VecNormalize``)."""

    def __init__(self, model: Any, normalizer: Any = None) -> None:
        from soccerlab.evaluation import model_predictor

        self.predict = model_predictor(model, deterministic=True)
        self.normalizer = normalizer

    def reset(self, mask: np.ndarray) -> None:
        pass

    def act(self, obs: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        if self.normalizer is not None:
            obs = self.normalizer.normalize_obs(obs)
        return np.asarray(self.predict(obs), dtype=np.float32)


class LabelledPolicy:
    """Plays ``player``; records what ``expert`` (a scripted expert) would have done. With
    ``beta`` > 0 each decision is the expert's own with that probability (DAgger's mixture;
    ``seed`` seeds the draws)."""

    def __init__(self, player: Any, expert: Expert, beta: float = 0.0, seed: int = 0) -> None:
        self.player = player
        self.expert = expert
        self.beta = beta
        self.rng = np.random.default_rng(seed)
        self.labels: np.ndarray | None = None

    def reset(self, mask: np.ndarray) -> None:
        self.player.reset(mask)
        self.expert.reset(mask)

    def act(self, obs: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        self.labels = self.expert.act(infos)
        played = self.player.act(obs, infos)
        if self.beta > 0.0:
            mine = self.rng.random(len(played)) < self.beta
            played = np.where(mine[:, None], self.labels, played).astype(np.float32)
        return played


@dataclass
class Episode:
    """One recorded episode: its rows (lists per column) and its ``info["soccer"]`` record."""

    rows: dict[str, list[Any]]
    record: dict[str, Any] | None = None


def _empty_rows() -> dict[str, list[Any]]:
    return {k: [] for k in ("observations", "actions", "commands", "next_observations",
                            "rewards", "done", "terminated", "steps")}


def record_task(spec: SoccerSpec, make_policy: Callable[[int], Any], episodes: int, seed: int,
                n_envs: int = 8, **batch_options: Any) -> list[Episode]:
    """``episodes`` episodes of ``spec``'s single task (seeds ``seed``, ``seed`` + 1, ...),
    ``min(n_envs, episodes)`` at a time. ``make_policy(n)`` builds the policy for n envs."""
    n = max(1, min(n_envs, episodes))
    batch = SoccerBatch(spec, n, **batch_options)
    try:
        policy = make_policy(n)
        obs, infos = batch.reset([seed + i for i in range(n)])
        policy.reset(np.ones(n, dtype=bool))
        slot_episode = list(range(n))  # episode each slot plays (-1: none left)
        found = [Episode(_empty_rows()) for _ in range(episodes)]
        next_episode = n
        while any(e >= 0 for e in slot_episode):
            actions = policy.act(obs, infos)
            labels = getattr(policy, "labels", None)
            labels = actions if labels is None else labels
            steps = batch.lengths.copy()  # env steps so far, at the observations acted on
            out = batch.step(actions)
            walker_out = (batch.decision_actions if batch.walker is not None
                          else np.clip(labels, -1.0, 1.0))
            done = out.terminated | out.truncated
            for i, e in enumerate(slot_episode):
                if e < 0:
                    continue
                rows = found[e].rows
                rows["observations"].append(obs[i][:OBS_SIZE])
                rows["steps"].append(steps[i])
                rows["actions"].append(walker_out[i])
                rows["commands"].append(labels[i] if batch.walker is not None
                                        else np.zeros(3, dtype=np.float32))
                rows["next_observations"].append(
                    (out.terminal_obs[i] if done[i] else out.obs[i])[:OBS_SIZE])
                rows["rewards"].append(out.reward[i])
                rows["done"].append(bool(done[i]))
                rows["terminated"].append(bool(out.terminated[i]))
            ended = [i for i in np.flatnonzero(done) if slot_episode[i] >= 0]
            for i in ended:
                found[slot_episode[i]].record = out.infos[i]["soccer"]
            obs, infos = out.obs, list(out.infos)
            for i in np.flatnonzero(done):
                infos[i] = out.reset_infos[int(i)]
            if ended:
                mask = np.zeros(n, dtype=bool)
                restart, seeds = [], []
                for i in ended:
                    mask[i] = True
                    if next_episode < episodes:
                        slot_episode[i] = next_episode
                        restart.append(int(i))
                        seeds.append(seed + next_episode)
                        next_episode += 1
                    else:
                        slot_episode[i] = -1
                if restart:  # re-seed: episode k always plays seed + k
                    first, first_infos = batch.reset_slots(restart, seeds)
                    obs = obs.copy()
                    for k, i in enumerate(restart):
                        obs[i], infos[i] = first[k], first_infos[k]
                policy.reset(mask)
        return found
    finally:
        batch.close()


def record_demos(spec: SoccerSpec, tasks: Sequence[str], make_policy: Callable[[str, int], Any],
                 episodes: int, seed: int, source: str, n_envs: int = 8) -> Demos:
    """Record ``episodes`` episodes of each task in ``tasks`` (``spec`` with its task
    replaced); ``make_policy(task, n)`` builds the policy for n envs of ``task``."""
    if spec.kick is not None:
        raise UserError("demos record does not support env.kick yet: the demos format holds "
                        "3 walker commands per step")
    cols: dict[str, list[np.ndarray]] = {k: [] for k in _empty_rows()}
    task_index, episode_ids = [], []
    ep: dict[str, list[Any]] = {k: [] for k in ("task", "score", "success", "fallen", "length")}
    for t, task in enumerate(tasks):
        found = record_task(spec.replace(tasks=task),
                            lambda n, task=task: make_policy(task, n), episodes, seed, n_envs)
        for e in found:
            eid = len(ep["score"])
            rows = e.rows
            for k in cols:
                cols[k].append(np.asarray(rows[k]))
            task_index.append(np.full(len(rows["done"]), t))
            episode_ids.append(np.full(len(rows["done"]), eid))
            rec = e.record or {}
            ep["task"].append(t)
            ep["score"].append(rec.get("score", np.nan))
            ep["success"].append(rec.get("success", False))
            ep["fallen"].append(rec.get("fallen", False))
            ep["length"].append(rec.get("length", 0))
    return Demos(
        observations=np.concatenate(cols["observations"]),
        actions=np.concatenate(cols["actions"]),
        done=np.concatenate(cols["done"]),
        commands=np.concatenate(cols["commands"]),
        next_observations=np.concatenate(cols["next_observations"]),
        rewards=np.concatenate(cols["rewards"]),
        terminated=np.concatenate(cols["terminated"]),
        task_index=np.concatenate(task_index),
        episode=np.concatenate(episode_ids),
        tasks=tuple(tasks),
        episode_task=np.array(ep["task"]),
        episode_score=np.array(ep["score"], dtype=np.float64),
        episode_success=np.array(ep["success"]),
        episode_fallen=np.array(ep["fallen"]),
        episode_length=np.array(ep["length"]),
        control=spec.control, frame=spec.observation, reward_mode=spec.reward, source=source,
        command_ranges=_command_ranges(spec), steps=np.concatenate(cols["steps"]),
    )


def _command_ranges(spec: SoccerSpec) -> np.ndarray | None:
    """What walker commands -1 and +1 meant in these demos (None under torque control)."""
    if spec.control != "walker":
        return None
    from soccerlab.envs.soccer import load_walker

    return load_walker(spec.walker).config.command_ranges


def demos_summary(demos: Demos) -> list[str]:
    """Lines describing a dataset: size, control, frame, and per task the episodes and the
    score distribution (mean, std, min, max, success and fall rates)."""
    lines = [f"{demos.n} transitions, {demos.n_episodes} episodes, control {demos.control}, "
             f"frame {demos.frame}, rewards {demos.reward_mode}, source {demos.source}"]
    for t, task in enumerate(demos.tasks):
        sel = demos.episode_task == t
        rows = int(np.sum(demos.task_index == t))
        scores = demos.episode_score[sel]
        if not sel.any():
            lines.append(f"  {task}: no episodes")
            continue
        finite = scores[np.isfinite(scores)]
        if finite.size:
            dist = (f"score {finite.mean():+.3f} ± {finite.std():.3f} "
                    f"[{finite.min():+.3f}, {finite.max():+.3f}]")
        else:
            dist = "score n/a (unscored)"
        count = int(sel.sum())
        lines.append(f"  {task}: {count} episode{'' if count == 1 else 's'}, {rows} transitions, {dist}, "
                     f"success {demos.episode_success[sel].mean():.2f}, "
                     f"fall {demos.episode_fallen[sel].mean():.2f}")
    return lines
