"""The showdown tasks the fast backend supports, and what differs between them.

Everything numeric (reward weights, episode length, geometry) is read from sai-mujoco at
construction time; this table only records the structure of each task's computations, i.e.
which branch of sai-mujoco's class hierarchy it takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from soccerlab.errors import UserError


@dataclass(frozen=True)
class FastTask:
    """Structure of one showdown task as implemented by sai-mujoco 0.1.30.

    Attributes:
        env_id: Gymnasium id registered by ``import sai_mujoco``.
        name: Short task name used in soccerlab configs.
        obs_dim: Length of the raw observation.
        goal_box: Success is "ball inside the goal box" (penalty kicks) rather than a distance
            to a target site.
        keeper: A goalkeeper slides on a fixed sine schedule and ball contact with it ends the
            episode (``GoaliePenaltyKick_v0``).
        defenders: Three static defenders placed per episode; ball contact ends the episode
            (``ObstaclePenaltyKick_v0``).
        target_site: Name of the site behind ``target_*`` info fields (``None``: the robot's own
            site, so those fields are zeros).
        term_names: ``reward_terms`` keys in sai-mujoco's dict order.
    """

    env_id: str
    name: str
    obs_dim: int
    goal_box: bool
    keeper: bool
    defenders: bool
    target_site: str | None
    term_names: tuple[str, ...]

    @property
    def penalty(self) -> bool:
        """True for the three penalty-kick variants (shared reward code, ball-hit counter)."""
        return self.name != "kick_to_target"


_PENALTY_TERMS = (
    "robot_distance_ball",
    "ball_vel_twd_goal",
    "offside",
    "ball_hits",
    "robot_fallen",
    "goal_scored",
)

FAST_TASKS: dict[str, FastTask] = {
    t.env_id: t
    for t in (
        FastTask(
            env_id="LowerT1GoaliePenaltyKick-v0",
            name="goalie_penalty_kick",
            obs_dim=45,
            goal_box=True,
            keeper=True,
            defenders=False,
            target_site=None,
            term_names=(*_PENALTY_TERMS, "ball_blocked"),
        ),
        FastTask(
            env_id="LowerT1ObstaclePenaltyKick-v0",
            name="obstacle_penalty_kick",
            obs_dim=54,
            goal_box=False,
            keeper=False,
            defenders=True,
            target_site="goalarea_site",
            term_names=(*_PENALTY_TERMS, "ball_blocked", "ball_distance_target"),
        ),
        FastTask(
            env_id="LowerT1KickToTarget-v0",
            name="kick_to_target",
            obs_dim=39,
            goal_box=False,
            keeper=False,
            defenders=False,
            target_site="target0",
            term_names=("offside", "success", "distance", "robot_distance_ball"),
        ),
        FastTask(
            env_id="LowerT1PenaltyKick-v0",
            name="penalty_kick",
            obs_dim=39,
            goal_box=True,
            keeper=False,
            defenders=False,
            target_site=None,
            term_names=_PENALTY_TERMS,
        ),
    )
}

_BY_NAME = {t.name: t for t in FAST_TASKS.values()}


def get_fast_task(task: str) -> FastTask:
    """Look a task up by env id (``LowerT1KickToTarget-v0``) or short name (``kick_to_target``).

    Raises:
        UserError: the task is not one the fast backend replicates.
    """
    found = FAST_TASKS.get(task) or _BY_NAME.get(task)
    if found is None:
        known = ", ".join(sorted(FAST_TASKS))
        raise UserError(
            f"the fast simulation backend does not support {task!r}; supported: {known} "
            "(use the sai-mujoco backend for other environments)"
        )
    return found
