"""Episode starts with sai-mujoco's randomisation, one RNG stream per slot.

Each slot owns an ``np.random.Generator`` that evolves exactly as a sai env's ``np_random``:
``seeding.np_random(seed)`` on a seeded reset, the same draws in the same order otherwise.
Seeding therefore matches ``gym.make(id).reset(seed=s)``, and resets without a seed continue
the slot's stream as one sai env would.

Two ways to produce a start, checked against each other and against real sai envs by the
parity test:

- ``"sai"``: swap the slot's generator into one private sai env and call its ``reset``
  (~2-4 ms: it rebuilds controllers and runs several ``mj_forward``), then copy the MuJoCo
  integration state and the per-episode values sai writes into the MjModel.
- ``"replay"`` (default, ~50x faster): replay only the random draws of that reset on the
  slot's generator, calling sai's own sampling methods where they are pure
  (``_sample_target``, ``sample_robot_pose``, ``sample_ball_position``), and write the results
  into a start state captured once from a sai reset. In sai-mujoco 0.1.30 a reset draws, in
  order: the floor texture (``random()``; changes only ``geom_friction``/``geom_rgba`` of the
  field, which never changes a contact: every geom touching it has friction >= its own, and
  MuJoCo takes the maximum); then obstacle: the shuffled defender/target slots and the target
  height; kick_to_target: robot pose, ball distance (rejection loop), target (rejection loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium.utils import seeding

from soccerlab.envs.soccer.backends.fast.layout import Layout
from soccerlab.envs.soccer.backends.fast.physics import get_state
from soccerlab.envs.soccer.backends.fast.tasks import FastTask
from soccerlab.envs.soccer.backends.sai import make_sai_env
from soccerlab.errors import UserError

RESET_MODES = ("replay", "sai")


@dataclass
class EpisodeStart:
    """What one reset produced."""

    state: np.ndarray  # mjSTATE_INTEGRATION
    geom_pos: np.ndarray | None  # obstacle: defender geom_pos rows (MjModel; they collide)
    site_pos: np.ndarray | None  # site_pos of the target site (MjModel; no physical effect)
    goal_pos: np.ndarray  # kick_to_target's goal_pos (zeros otherwise)


class SaiResetter:
    """Produces episode starts for N slots with one private sai-mujoco env."""

    def __init__(self, task: FastTask, n: int, mode: str = "replay") -> None:
        if mode not in RESET_MODES:
            raise UserError(f"unknown reset mode {mode!r}; use one of {RESET_MODES}")
        self.task, self.mode = task, mode
        self.env = make_sai_env(task.env_id)
        self.u = self.env.unwrapped
        self.rngs: list[np.random.Generator | None] = [None] * n
        self.seeds: list[int | None] = [None] * n
        if self.u.current_team != 0 or self.u.textures != -1:
            raise RuntimeError("only the registered defaults (team 0, random texture) are "
                               "replicated")
        self._lay: Layout | None = None
        self._template: np.ndarray | None = None
        self._target_z = 0.0

    def bind(self, lay: Layout) -> None:
        """Capture the replay template (one sai reset with a throwaway generator)."""
        self._lay = lay
        u = self.u
        u.reset(seed=0)
        model, data = u.sim.model._model, u.sim.data._data
        self._template = get_state(model, data)
        self._qpos_at = 1  # mjSTATE_INTEGRATION: time, then qpos
        if not np.array_equal(self._template[1:1 + model.nq], data.qpos):
            raise RuntimeError("unexpected mjSTATE_INTEGRATION layout")
        if lay.target_site is not None:
            self._target_z = float(data.site_xpos[lay.target_site][2])
        robot, ball = (u.robots[0].name_prefix + "root", "env:ball")
        self._robot_q = int(model.joint(robot).qposadr[0])
        self._ball_q = int(model.joint(ball).qposadr[0])

    def _generator(self, slot: int, seed: int | None) -> np.random.Generator:
        if seed is not None:
            self.seeds[slot] = int(seed)
            return seeding.np_random(int(seed))[0]
        rng = self.rngs[slot]
        return rng if rng is not None else seeding.np_random(None)[0]

    def reset(self, slot: int, seed: int | None) -> EpisodeStart:
        """The start of slot ``slot``'s next episode (advances the slot's generator)."""
        rng = self._generator(slot, seed)
        start = self._sai(rng) if self.mode == "sai" else self._replay(rng)
        self.rngs[slot] = rng
        return start

    def _sai(self, rng: np.random.Generator) -> EpisodeStart:
        u, lay = self.u, self._lay
        u._np_random = rng
        u.reset()
        model, data = u.sim.model._model, u.sim.data._data
        return EpisodeStart(
            state=get_state(model, data),
            geom_pos=model.geom_pos[lay.defender_geoms].copy() if self.task.defenders else None,
            site_pos=None if lay.target_site is None else model.site_pos[lay.target_site].copy(),
            goal_pos=(np.asarray(u.goal_pos, dtype=np.float64).copy()
                      if self.task.name == "kick_to_target" else np.zeros(3)),
        )

    def _replay(self, rng: np.random.Generator) -> EpisodeStart:
        u, task = self.u, self.task
        u._np_random = rng  # sai's samplers below draw from self.np_random
        rng.random()  # FootballEnv_v0.get_friction_rgba(textures=-1)
        state = self._template.copy()
        start = EpisodeStart(state=state, geom_pos=None, site_pos=None, goal_pos=np.zeros(3))
        if task.defenders:  # ObstaclePenaltyKick_v0._sample_target / _set_defender_target
            goal = u._sample_target()
            geom_pos = np.zeros((3, 3))
            for i in range(3):
                geom_pos[i] = [0, goal[i], 0.4]
            start.geom_pos = geom_pos
            start.site_pos = np.array([0, goal[3], goal[4]], dtype=np.float64)
        elif task.name == "kick_to_target":  # KickToTarget_v0._sample_robot / _sample_target
            import sai_mujoco.utils.v0.rotations as R

            pose, yaw = u.sample_robot_pose()
            ball = u.sample_ball_position(pose, yaw)
            q = state[self._qpos_at:]
            q[self._robot_q:self._robot_q + 2] = pose
            q[self._robot_q + 3:self._robot_q + 7] = R.euler2quat([0.0, 0.0, yaw])
            q[self._ball_q:self._ball_q + 2] = ball
            start.goal_pos = self._sample_target(rng, float(pose[1]))
            start.site_pos = start.goal_pos.copy()
        return start

    def _sample_target(self, rng: np.random.Generator, robot_y: float, min_offset: float = 2.0,
                       max_offset: float = 3.5, offset: float = 0.5) -> np.ndarray:
        """KickToTarget_v0._sample_target (it reads sim state, so it is replayed here)."""
        field = self.u.parameters_dict["env_parameters"]["field"]
        goal = np.array([0.0, 0.0, self._target_z])
        while True:
            y_offset = rng.uniform(min_offset, max_offset)
            if rng.uniform() > 0.5:
                y_offset = -y_offset
            goal[1] = robot_y + y_offset
            goal[0] = rng.uniform(-field["length"] + offset, field["length"] - offset)
            if -field["width"] + offset <= goal[1] <= field["width"] - offset:
                return goal.copy()

    def close(self) -> None:
        """Close the private sai env."""
        self.env.close()
