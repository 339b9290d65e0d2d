"""The soccer task registry: which sai-mujoco env each task uses and how the competition scores it.

The competition has three tasks, numbered by the SAI client in this order (the unified
observation's one-hot follows it): ``goalie_penalty_kick`` (0), ``obstacle_penalty_kick`` (1),
``kick_to_target`` (2).

``penalty_kick`` (LowerT1PenaltyKick-v0) is not a competition task. It is the goalie task without
the keeper (same reward terms, same goal-box success, 1000-step limit), so it is scored with the
goalie weights and gets the goalie one-hot ``[1, 0, 0]``: a policy trained on it starts from the
task it is a simpler version of. Its raw observation has 39 values, like ``kick_to_target``, so
the task can't be inferred from the raw size: soccerlab's envs always pass the one-hot index
explicitly.

``goalkeeper`` (LowerT1GoalKeeper-v0) is listed but unavailable: it crashes at construction in
sai-mujoco 0.1.30.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from soccerlab.envs.soccer.behaviour.submission import Preprocessor
from soccerlab.errors import UserError

UNIFIED_OBS_SIZE = Preprocessor.OBS_SIZE

#: Competition weights of the goalie and obstacle penalty kicks (the website's formula).
PENALTY_KICK_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "robot_distance_ball": 0.25,
        "ball_vel_twd_goal": 1.5,
        "goal_scored": 2.5,
        "offside": -3.0,
        "ball_hits": -0.2,
        "robot_fallen": -1.5,
        "ball_blocked": -0.5,
        "steps": -1.0,
    }
)

#: Competition weights of kick_to_target.
KICK_TO_TARGET_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"success": 2.0, "distance": 0.5, "offside": -1.0, "steps": -0.3}
)


@dataclass(frozen=True)
class SoccerTask:
    """One soccer task: its env, sizes, episode limit and competition scoring.

    Attributes:
        name: Registry name (``goalie_penalty_kick`` ...).
        env_id: The Gymnasium id registered by ``import sai_mujoco``.
        raw_obs_size: Length of the env's own observation vector.
        max_episode_steps: Episode limit in env steps (500 Hz).
        score_weights: Competition weight of each last-step reward term, plus the constant
            ``steps`` term (its value is always 1).
        competition_index: SAI's task index (0, 1, 2), None for tasks outside the competition.
        onehot_index: Which of the three one-hot slots the unified observation sets.
        ball_target: What the ball must reach: ``"goal"`` (the attacked goal's centre) or
            ``"target"`` (the env's target site); used by reward shaping.
        success: One line saying what counts as success.
        available: False where the env can't be used; ``unavailable_reason`` says why.
        unified_obs_size: Size of the observation the project's envs emit (always 89).
    """

    name: str
    env_id: str
    raw_obs_size: int | None
    max_episode_steps: int | None
    score_weights: Mapping[str, float] = field(hash=False)
    competition_index: int | None
    onehot_index: int | None
    ball_target: str
    success: str
    available: bool = True
    unavailable_reason: str = ""
    unified_obs_size: int = UNIFIED_OBS_SIZE


_GOALKEEPER_REASON = (
    "LowerT1GoalKeeper-v0 crashes at construction in sai-mujoco 0.1.30 "
    "(it reads complete_space before it exists)"
)

TASKS: Mapping[str, SoccerTask] = MappingProxyType(
    {
        t.name: t
        for t in (
            SoccerTask(
                name="goalie_penalty_kick",
                env_id="LowerT1GoaliePenaltyKick-v0",
                raw_obs_size=45,
                max_episode_steps=5000,
                score_weights=PENALTY_KICK_WEIGHTS,
                competition_index=0,
                onehot_index=0,
                ball_target="goal",
                success="ball inside the goal box past a moving keeper",
            ),
            SoccerTask(
                name="obstacle_penalty_kick",
                env_id="LowerT1ObstaclePenaltyKick-v0",
                raw_obs_size=54,
                max_episode_steps=5000,
                score_weights=PENALTY_KICK_WEIGHTS,
                competition_index=1,
                onehot_index=1,
                ball_target="target",
                success="ball centre within 0.3 m of a raised target on the goal line",
            ),
            SoccerTask(
                name="kick_to_target",
                env_id="LowerT1KickToTarget-v0",
                raw_obs_size=39,
                max_episode_steps=5000,
                score_weights=KICK_TO_TARGET_WEIGHTS,
                competition_index=2,
                onehot_index=2,
                ball_target="target",
                success="ball within 0.4 m of the target",
            ),
            SoccerTask(
                name="penalty_kick",
                env_id="LowerT1PenaltyKick-v0",
                raw_obs_size=39,
                max_episode_steps=1000,
                score_weights=PENALTY_KICK_WEIGHTS,
                competition_index=None,
                onehot_index=0,
                ball_target="goal",
                success="ball inside the goal box, no keeper",
            ),
            SoccerTask(
                name="goalkeeper",
                env_id="LowerT1GoalKeeper-v0",
                raw_obs_size=None,
                max_episode_steps=None,
                score_weights=MappingProxyType({}),
                competition_index=None,
                onehot_index=None,
                ball_target="goal",
                success="-",
                available=False,
                unavailable_reason=_GOALKEEPER_REASON,
            ),
        )
    }
)

#: The competition's tasks in SAI's order (task index 0, 1, 2).
COMPETITION_TASKS: tuple[str, ...] = (
    "goalie_penalty_kick",
    "obstacle_penalty_kick",
    "kick_to_target",
)


def get_task(name: str) -> SoccerTask:
    """Return the available task called ``name`` (or whose env id is ``name``).

    Raises:
        UserError: the name is unknown (the message suggests the closest name) or the task is
            unavailable (the message says why).
    """
    task = TASKS.get(name)
    if task is None:
        task = next((t for t in TASKS.values() if t.env_id == name), None)
    if task is None:
        close = difflib.get_close_matches(name, list(TASKS), n=1, cutoff=0.4)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(
            f"unknown soccer task '{name}'{hint} (known: {', '.join(available_tasks())})"
        )
    if not task.available:
        raise UserError(f"soccer task '{task.name}' is unavailable: {task.unavailable_reason}")
    return task


def available_tasks() -> tuple[str, ...]:
    """Names of the tasks that can be built, in registry order."""
    return tuple(name for name, task in TASKS.items() if task.available)


def _format_weights(weights: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in weights.items()) or "-"


def format_task_table(include_unavailable: bool = True) -> str:
    """The task table as plain text (for ``soccerlab tasks``).

    Columns: name, env id, raw/unified observation sizes, episode limit, competition index,
    availability (with the reason where unavailable) and the scoring weights.
    """
    header = ("task", "env id", "obs raw->unified", "max steps", "comp", "available")
    rows = []
    for task in TASKS.values():
        if not task.available and not include_unavailable:
            continue
        rows.append(
            (
                task.name,
                task.env_id,
                f"{task.raw_obs_size}->{task.unified_obs_size}" if task.raw_obs_size else "-",
                str(task.max_episode_steps or "-"),
                "-" if task.competition_index is None else str(task.competition_index),
                "yes" if task.available else "no (see below)",
            )
        )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("score weights (applied to the last step's reward terms; steps is always 1):")
    for task in TASKS.values():
        if task.available:
            lines.append(f"  {task.name}: {_format_weights(task.score_weights)}")
    unavailable = [t for t in TASKS.values() if not t.available and include_unavailable]
    if unavailable:
        lines.append("unavailable:")
        lines.extend(f"  {t.name}: {t.unavailable_reason}" for t in unavailable)
    return "\n".join(lines)
