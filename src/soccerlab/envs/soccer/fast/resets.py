"""Episode starts produced by a private sai-mujoco env, with one RNG stream per slot.

A reset is rare (5000-step episodes), so the fast backend does not reimplement sai-mujoco's
reset logic: it swaps the slot's ``np.random.Generator`` into one sai env, calls its
``reset``, and copies out what the episode needs: the MuJoCo integration state, and the
per-episode values sai keeps in the MjModel (defender geom positions, target site position)
or in Python (``goal_pos``). Seeding therefore matches ``gym.make(id).reset(seed=s)`` exactly,
and resets without a seed continue the slot's stream as one sai env would.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from soccerlab.envs.soccer.fast.layout import Layout
from soccerlab.envs.soccer.fast.physics import get_state
from soccerlab.envs.soccer.fast.tasks import FastTask


@dataclass
class EpisodeStart:
    """What one sai-mujoco reset produced."""

    state: np.ndarray  # mjSTATE_INTEGRATION
    geom_pos: np.ndarray | None  # obstacle: defender geom_pos rows (MjModel, collide)
    target_xpos: np.ndarray  # world position of the target site (zeros when none)
    goal_pos: np.ndarray  # kick_to_target's goal_pos (zeros otherwise)
    defender_xpos: np.ndarray  # obstacle: defender geom_xpos, flattened (zeros otherwise)


def make_sai_env(env_id: str) -> gym.Env:
    """``gym.make`` after registering sai-mujoco's environments."""
    import sai_mujoco  # noqa: F401 - registers the envs

    return gym.make(env_id)


class SaiResetter:
    """Resets slots through one sai-mujoco env instance (``env.unwrapped`` is reused)."""

    def __init__(self, task: FastTask, n: int) -> None:
        self.task = task
        self.env = make_sai_env(task.env_id)
        self.u = self.env.unwrapped
        self.rngs: list[np.random.Generator | None] = [None] * n
        self.seeds: list[int | None] = [None] * n
        if self.u.current_team != 0:
            raise RuntimeError("only team 0 is replicated")

    def reset(self, slot: int, seed: int | None, lay: Layout) -> EpisodeStart:
        """Reset sai's env as slot ``slot`` would be reset; return the episode start."""
        u = self.u
        if seed is None:
            rng = self.rngs[slot]
            if rng is None:  # an unseeded slot: a fresh random stream, like a fresh env
                rng, _ = seeding.np_random(None)
            u._np_random = rng
        else:
            self.seeds[slot] = int(seed)
        u.reset(seed=seed)
        self.rngs[slot] = u._np_random
        model, data = u.sim.model._model, u.sim.data._data
        start = EpisodeStart(
            state=get_state(model, data), geom_pos=None, target_xpos=np.zeros(3),
            goal_pos=np.zeros(3), defender_xpos=np.zeros(9),
        )
        if lay.target_site is not None:
            start.target_xpos = data.site_xpos[lay.target_site].copy()
        if self.task.defenders:
            start.geom_pos = model.geom_pos[lay.defender_geoms].copy()
            start.defender_xpos = data.geom_xpos[lay.defender_geoms].ravel().copy()
        if self.task.name == "kick_to_target":
            start.goal_pos = np.asarray(u.goal_pos, dtype=np.float64).copy()
        return start

    def close(self) -> None:
        """Close the private sai env."""
        self.env.close()
