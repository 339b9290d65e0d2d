"""Training reward modes, as batched pure functions plus a small per-env state holder.

Modes (``REWARD_MODES``):

``env``
    The env's own dense reward (summed over the inner steps under walker control). Beware: it
    pays about +78 to a robot that just falls, so its optimum is not the competition's.
``competition``
    The competition score, paid once at the episode's last step (terminated or truncated), 0
    elsewhere. Exactly the objective, but sparse.
``shaped``
    Potential-based shaping (Ng, Harada & Russell 1999) plus the score at the end::

        r_t = gamma * Phi(s_{t+1}) - Phi(s_t) + [t is last] * score_weight * score
        Phi(s) = -(robot_ball * |ball - robot|_xy + ball_target * |target - ball|)
        Phi(s_T) = 0 at the episode's last state

    ``target`` is the attacked goal's centre (goalie, penalty kick) or the task's target site
    (obstacle, kick_to_target). The discounted shaped return telescopes:
    ``sum_t gamma^t r_t = gamma^(T-1) * score_weight * score - Phi(s_0)``. ``Phi(s_0)`` does not
    depend on the policy, so for the learner's gamma the shaped objective has the same optimal
    policies as ``competition``: progress toward the ball and of the ball toward the target
    pays only as far as it changes the final score, and falling (slowly or not) earns nothing
    beyond what the score says (the potential collected on the way is paid back when the
    episode ends, since Phi is 0 there). The gamma here must equal the learner's gamma.
``progress``
    The same potential, as plain progress, plus the score at the end::

        r_t = Phi(s_{t+1}) - Phi(s_t) + [t is last] * score_weight * score

    with no payback at the end: an episode's undiscounted return is
    ``Phi(s_T) - Phi(s_0) + score_weight * score``, so it pays for where the robot and the ball
    end up (robot at the ball, ball at the goal or target) on top of the score. There is no
    per-step bonus, so surviving longer (falling slowly) earns nothing by itself; but unlike
    ``shaped`` this profile does change the optimum slightly (a ball left near the goal counts
    even without a goal) and, under discounting, prefers progress made early. Its advantage is
    learning speed: under ``shaped`` a critic that has learnt Phi cancels the shaping and leaves
    the learner with the sparse score alone, while ``progress`` keeps paying for every metre.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from soccerlab.envs.soccer.behaviour.submission import Preprocessor
from soccerlab.envs.soccer.behaviour.tasks import SoccerTask
from soccerlab.errors import UserError

REWARD_MODES: tuple[str, ...] = ("env", "competition", "shaped", "progress")


@dataclass(frozen=True)
class ShapingConfig:
    """Parameters of the ``shaped`` reward.

    Attributes:
        gamma: Discount of the learner (per agent decision); must match it for the
            optimal-policy guarantee.
        robot_ball: Potential per metre of horizontal robot-to-ball distance.
        ball_target: Potential per metre of ball-to-goal/target distance.
        score_weight: Multiplier of the competition score paid at the last step.
    """

    gamma: float = 0.99
    robot_ball: float = 1.0
    ball_target: float = 3.0
    score_weight: float = 3.0


def check_reward_mode(mode: str) -> str:
    """Return ``mode`` if it is a known reward mode, else raise UserError."""
    if mode not in REWARD_MODES:
        raise UserError(f"unknown reward mode '{mode}' (choose one of: {', '.join(REWARD_MODES)})")
    return mode


def _vec(info: Any, key: str, n: int) -> np.ndarray:
    return Preprocessor.info_array(info, key, n, 3).astype(np.float64)


def robot_ball_distance(info: Any, n: int) -> np.ndarray:
    """Horizontal robot-to-ball distance (N,) from ``ball_xpos_rel_robot``."""
    return np.linalg.norm(_vec(info, "ball_xpos_rel_robot", n)[:, :2], axis=1)


def ball_target_distance(info: Any, use_target: np.ndarray) -> np.ndarray:
    """Ball-to-target distance (N,): the target site where ``use_target``, else the attacked goal.

    The attacked goal is team 0's (south) goal for ``player_team == [1, 0]``, else team 1's.
    """
    use_target = np.asarray(use_target, dtype=bool).reshape(-1)
    n = use_target.shape[0]
    ball = _vec(info, "ball_xpos_rel_robot", n)
    to_target = _vec(info, "target_xpos_rel_robot", n) - ball
    team = np.argmax(Preprocessor.info_array(info, "player_team", n, 2), axis=1)
    to_goal = np.where(
        (team == 0)[:, None],
        _vec(info, "goal_team_0_rel_ball", n),
        _vec(info, "goal_team_1_rel_ball", n),
    )
    return np.linalg.norm(np.where(use_target[:, None], to_target, to_goal), axis=1)


def potential(info: Any, use_target: np.ndarray, config: ShapingConfig) -> np.ndarray:
    """Shaping potential Phi (N,) of the current states (before the terminal zeroing)."""
    use_target = np.asarray(use_target, dtype=bool).reshape(-1)
    return -(
        config.robot_ball * robot_ball_distance(info, use_target.shape[0])
        + config.ball_target * ball_target_distance(info, use_target)
    )


def competition_reward(done: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The score where the episode ends, 0 elsewhere (N,)."""
    done = np.asarray(done, dtype=bool)
    return np.where(done, np.asarray(score, dtype=np.float64), 0.0)


def potential_reward(
    prev_potential: np.ndarray,
    next_potential: np.ndarray,
    done: np.ndarray,
    score: np.ndarray,
    config: ShapingConfig,
    payback: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """One step of the ``shaped`` (``payback=True``) or ``progress`` (``payback=False``) reward.

    Args:
        prev_potential: Phi(s_t) (N,), as returned by the previous call (or by ``potential``
            at reset).
        next_potential: ``potential`` of s_{t+1} (N,).
        done: Whether s_{t+1} is the episode's last state (N,).
        score: Competition score of the episode where ``done`` (ignored elsewhere).
        config: Shaping parameters.
        payback: ``shaped``: discount Phi(s_{t+1}) by ``config.gamma`` and count it as 0 at the
            last state, which pays the collected potential back; ``progress``: neither.

    Returns:
        ``(reward, phi)``: the reward (N,) and Phi(s_{t+1}) to pass as ``prev_potential`` next
        time (reset it for the envs that are done).
    """
    phi = np.asarray(next_potential, dtype=np.float64)
    if payback:
        phi = np.where(np.asarray(done, dtype=bool), 0.0, phi)
        reward = config.gamma * phi - np.asarray(prev_potential, dtype=np.float64)
    else:
        reward = phi - np.asarray(prev_potential, dtype=np.float64)
    reward = reward + config.score_weight * competition_reward(done, score)
    return reward, phi


class RewardTracker:
    """Applies one reward mode to N envs, keeping each env's previous potential.

    ``reset(info, mask)`` at episode starts (masked: only those envs), then
    ``step(env_reward, info, done, score)`` once per agent step with the arrays of all N envs.
    """

    def __init__(
        self, mode: str, tasks: Sequence[SoccerTask], shaping: ShapingConfig | None = None
    ):
        self.mode = check_reward_mode(mode)
        self.shaping = shaping or ShapingConfig()
        self.use_target = np.array([t.ball_target == "target" for t in tasks], dtype=bool)
        self.phi = np.zeros(len(self.use_target))

    def reset(
        self, info: Mapping[str, Any] | Sequence[Mapping[str, Any]], mask: np.ndarray | None = None
    ) -> None:
        """Record the start states' potentials for the envs in ``mask`` (all when None)."""
        if self.mode not in ("shaped", "progress"):
            return
        phi = potential(info, self.use_target, self.shaping)
        mask = np.ones(len(self.phi), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.phi = np.where(mask, phi, self.phi)

    def step(
        self, env_reward: np.ndarray, info: Any, done: np.ndarray, score: np.ndarray
    ) -> np.ndarray:
        """Reward (N,) for one agent step of every env."""
        if self.mode == "env":
            return np.asarray(env_reward, dtype=np.float64).reshape(-1)
        if self.mode == "competition":
            return competition_reward(done, score).reshape(-1)
        reward, self.phi = potential_reward(
            self.phi, potential(info, self.use_target, self.shaping), done, score, self.shaping,
            payback=self.mode == "shaped",
        )
        return reward.reshape(-1)
