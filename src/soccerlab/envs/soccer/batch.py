"""``SoccerBatch``: the soccer behaviour, written once, for N envs over a physics backend.

A ``SoccerSpec`` says what to run; a backend (``backends.base.TaskPhysics``: the fast
simulator or a stack of sai-mujoco envs, one per task group) steps the physics. Everything
soccer happens here, on arrays, with the behaviour's pure functions: the unified observation is
``submission.Preprocessor`` on a batch, torques come from ``submission.action_function`` or one
batched ``JoystickWalker`` (one policy forward pass per 50 Hz tick for every env, PD at every
physics step), rewards from ``rewards.RewardTracker`` and scores from ``scoring.episode_score``.
Envs of one task share one backend object; several tasks give several, stepped in turn.
``vec_env.SoccerVecEnv`` (SB3) and ``vec_env.SoccerGymEnv`` (one env: play, videos) are thin
adapters over this class.

Walker control runs ``decimation`` physics steps per agent step. An env whose episode ends at
inner step k < decimation is stepped on with zero torques (its results are discarded): its
observation, info, reward terms, summed env reward and length are those of step k, and it is
reset at the end of the agent step, exactly once.

With ``spec.time_feature`` every observation carries a 90th value, ``time_fraction``: the env
steps its episode has run so far over the time limit (0 at a reset). The exported models count
steps per row and compute the same number (``export/modules.py``).

Kick macro (``spec.kick``, walker control): the action gets a 4th component; where it exceeds
the trigger in an env that is not kicking, that env's kick starts at this agent step from its
current joints and plays for ``K`` agent steps (``behaviour.kick``), this one included: its
actions are ignored, the kick's joint targets are PD-tracked with the walker's gains and
torque limits. After the K-th, the walker's state is reset and it takes back control at the
next agent step. The observation is unchanged; ``kicking`` says which envs are kicking.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from soccerlab.envs.soccer.backends.base import BOOL_TERMS, INFO_KEYS, TaskPhysics, make_physics
from soccerlab.envs.soccer.behaviour.kick import KickMacro, load_kick
from soccerlab.envs.soccer.behaviour.rewards import RewardTracker
from soccerlab.envs.soccer.behaviour.robot import NUM_JOINTS
from soccerlab.envs.soccer.behaviour.scoring import episode_score
from soccerlab.envs.soccer.behaviour.submission import Preprocessor, action_function
from soccerlab.envs.soccer.behaviour.tasks import SoccerTask, get_task
from soccerlab.envs.soccer.behaviour.walker import (
    JoystickWalker,
    batch_invariant,
    pd_torques,
    scale_command,
)
from soccerlab.envs.soccer.behaviour.walker_load import load_walker
from soccerlab.envs.soccer.spec import SoccerSpec
from soccerlab.errors import UserError

#: The info keys ``Preprocessor.modify_state`` reads.
PREPROCESSOR_KEYS: tuple[str, ...] = ("robot_quat", *(k for k, _ in Preprocessor.INFO_LAYOUT))


# ------------------------------------------------------------------------ pure helpers
def time_fraction(steps: np.ndarray, limit: int) -> np.ndarray:
    """The time feature: env steps elapsed over the time limit, float32 (N, 1)."""
    return (np.asarray(steps, dtype=np.float64) / float(limit)).astype(np.float32)[:, None]


def info_dicts(info: dict[str, np.ndarray], keys: Sequence[str], rows: np.ndarray
               ) -> list[dict[str, Any]]:
    """One dict per row of ``rows`` with ``info[key][row]`` for ``keys``, detached from the
    arrays, in sai-mujoco's types: 1-D columns as Python scalars, 2-D as array rows."""
    if not keys:
        return [{} for _ in rows]
    cols = []
    for key in keys:
        value = info[key][rows]
        cols.append(value.tolist() if value.ndim == 1 else list(value))
    return [dict(zip(keys, values, strict=True)) for values in zip(*cols, strict=True)]


def term_dicts(terms: dict[str, np.ndarray], rows: np.ndarray) -> list[dict[str, Any]]:
    """sai's ``reward_terms`` dict of each row (flags as bools, the rest as floats)."""
    keys = list(terms)
    cols = [(terms[k][rows].astype(bool) if k in BOOL_TERMS else terms[k][rows]).tolist()
            for k in keys]
    return [dict(zip(keys, values, strict=True)) for values in zip(*cols, strict=True)]


def episode_record(task: SoccerTask, terms: dict[str, Any], success: bool, fallen: bool,
                   length: int) -> dict[str, Any]:
    """``info["soccer"]`` of an episode from its last step: task, score, score components,
    success, fallen, length (env steps)."""
    score, components = episode_score(terms, task)
    return {"task": task.name, "score": score, "components": components,
            "success": bool(success), "fallen": bool(fallen), "length": int(length)}


def fallen_flags(terms: dict[str, np.ndarray], height: np.ndarray, min_height: float
                 ) -> np.ndarray:
    """Whether each row's robot has fallen: the ``robot_fallen`` term where the task has one
    (penalty kicks), else sai's ``has_robot_fallen`` on the IMU height (kick_to_target)."""
    if "robot_fallen" in terms:
        return terms["robot_fallen"].astype(bool)
    return ~(min_height < height)


def contiguous(index: np.ndarray) -> slice | np.ndarray:
    """``index`` as a slice where it is a run of consecutive integers (views, not copies)."""
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return index


# ------------------------------------------------------------------------------ state
@dataclass
class Group:
    """The slots of one task and the simulator that runs them."""

    task: SoccerTask
    index: np.ndarray  # global slot numbers, increasing
    slots: slice | np.ndarray  # the same, as a slice where contiguous
    sim: TaskPhysics
    preprocessor: Preprocessor
    rewards: RewardTracker


@dataclass
class Final:
    """A group's arrays at the end of an agent step (rows of early-ended slots patched in)."""

    obs: np.ndarray
    info: dict[str, np.ndarray]
    terms: dict[str, np.ndarray]
    terminated: np.ndarray
    truncated: np.ndarray
    height: np.ndarray


@dataclass
class BatchStep:
    """One agent step of all slots.

    Attributes:
        obs: (N, 89) float32, the next observations (a new episode's first where it ended).
        reward: (N,) float64 training reward.
        terminated, truncated: (N,) bool.
        infos: per env: the requested sai info keys (and
            ``reward_terms``), ``soccer`` where the episode ended, ``task``.
        terminal_obs: slot -> its episode's last observation (89,), where it ended.
        reset_infos: slot -> the new episode's reset info, where it ended.
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    infos: list[dict[str, Any]]
    terminal_obs: dict[int, np.ndarray] = field(default_factory=dict)
    reset_infos: dict[int, dict[str, Any]] = field(default_factory=dict)


def _snapshot(sim: TaskPhysics, j: int) -> dict[str, Any]:
    a = sim.arrays
    return {"obs": a.obs[j].copy(), "info": {k: v[j].copy() for k, v in a.info.items()},
            "terms": {k: v[j] for k, v in a.terms.items()}, "terminated": a.terminated[j],
            "truncated": a.truncated[j], "height": sim.robot_height[j]}


def _final(sim: TaskPhysics, snaps: dict[int, dict[str, Any]]) -> Final:
    """The simulator's live arrays, or copies with the snapshotted rows written back."""
    a = sim.arrays
    if not snaps:
        return Final(a.obs, a.info, a.terms, a.terminated, a.truncated, sim.robot_height)
    f = Final(a.obs.copy(), {k: v.copy() for k, v in a.info.items()},
              {k: v.copy() for k, v in a.terms.items()}, a.terminated.copy(),
              a.truncated.copy(), sim.robot_height.copy())
    for j, s in snaps.items():
        f.obs[j] = s["obs"]
        for k, v in s["info"].items():
            f.info[k][j] = v
        for k, v in s["terms"].items():
            f.terms[k][j] = v
        f.terminated[j], f.truncated[j], f.height[j] = s["terminated"], s["truncated"], \
            s["height"]
    return f


class SoccerBatch:
    """N soccer envs of one ``SoccerSpec``, stepped as arrays (see the module docstring).

    Args:
        spec: What to run. Env i runs ``spec.slot_tasks(n_envs)[i]``.
        n_envs: Number of envs.
        walker: A ``JoystickWalker`` for ``n_envs`` envs to use instead of loading
            ``spec.walker`` (walker control). If its policy is not ``batch_invariant``, it is
            switched to one forward pass per env (with a warning).
        info_keys: sai info keys copied into each env's info dict: ``"all"`` (every key plus
            ``reward_terms``, like sai-mujoco) or a list (which may name ``reward_terms``).
        **backend_options: Passed to the backend (fast: ``n_threads``, ``reset_mode``).
    """

    def __init__(self, spec: SoccerSpec, n_envs: int, *, walker: JoystickWalker | None = None,
                 info_keys: str | Sequence[str] = "all", **backend_options: Any) -> None:
        self.spec = spec
        self.slot_tasks = spec.slot_tasks(n_envs)
        self.n = n = len(self.slot_tasks)
        self.control = spec.control
        self.info_keys, self.with_terms = _check_info_keys(info_keys)
        self.walker = None
        if spec.control == "walker":
            self.walker = walker = walker or load_walker(spec.walker, n)
            if walker.num_envs != n:
                raise ValueError(f"walker control needs a JoystickWalker for {n} envs")
            if not walker.per_row and not batch_invariant(walker.policy, n):
                warnings.warn("the walker policy's outputs depend on the batch they are computed "
                              "in; running one forward pass per env to keep each env's actions "
                              "independent of the others (slower)", stacklevel=2)
                walker.per_row = True
        self.kick: KickMacro | None = None
        if spec.kick is not None:
            wc = self.walker.config
            self.kick = KickMacro(load_kick(spec.kick, wc.dt, wc.decimation), wc.default_q, n)
        if spec.backend == "sai":
            backend_options.setdefault("camera", spec.camera)
        self.groups: list[Group] = []
        try:
            for name in dict.fromkeys(self.slot_tasks):
                index = np.flatnonzero(np.array(self.slot_tasks) == name)
                task = get_task(name)
                sim = make_physics(spec.backend, task.name, len(index),
                                   max_episode_steps=spec.max_episode_steps,
                                   env_kwargs=dict(spec.env_kwargs), **backend_options)
                self.groups.append(Group(task, index, contiguous(index), sim,
                                         spec.preprocessor(task.onehot_index),
                                         RewardTracker(spec.reward, [task] * len(index),
                                                       spec.shaping)))
        except BaseException:
            self.close()
            raise
        self.max_episode_steps = self.groups[0].sim.max_episode_steps
        dim = NUM_JOINTS if spec.control != "walker" else 3 if self.kick is None else 4
        self.action_space = gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self.time_feature = spec.time_feature
        if self.time_feature and not all(g.sim.max_episode_steps for g in self.groups):
            self.close()
            raise UserError("env.time_feature needs a time limit (env.max_episode_steps)")
        obs_size = Preprocessor.OBS_SIZE + int(self.time_feature)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
        self.lengths = np.zeros(n, dtype=np.int64)  # env steps in the current episodes
        self._q = np.zeros((n, NUM_JOINTS), dtype=np.float32)
        self._dq = np.zeros((n, NUM_JOINTS), dtype=np.float32)
        self._quat = np.zeros((n, 4), dtype=np.float32)
        self._gyro = np.zeros((n, 3), dtype=np.float32)
        #: Walker control: the walker's outputs (N, 12) computed at the last agent step's
        #: decision (its first inner step), kept before ended envs are reset (demos record
        #: them as the joint-level actions).
        self.decision_actions = np.zeros((n, NUM_JOINTS), dtype=np.float32)

    # ------------------------------------------------------------------------- resets
    def reset(self, seeds: Sequence[int | None] | None = None
              ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Start new episodes in every slot (slot i seeded with ``seeds[i]``; None continues
        its stream). Returns the observations (N, 89) and the reset infos."""
        seeds = [None] * self.n if seeds is None else list(seeds)
        if len(seeds) != self.n:
            raise ValueError(f"{len(seeds)} seeds for {self.n} envs")
        obs = np.zeros((self.n, *self.observation_space.shape), dtype=np.float32)
        infos: list[dict[str, Any]] = [{} for _ in range(self.n)]
        for g in self.groups:
            obs[g.slots], group_infos = self._start(g, np.arange(len(g.index)),
                                                    [seeds[i] for i in g.index])
            for i, d in zip(g.index, group_infos, strict=True):
                infos[i] = d
        return obs, infos

    def reset_slots(self, slots: Sequence[int], seeds: Sequence[int | None] | None = None
                    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Start new episodes in the envs ``slots`` only; the others carry on. Returns their
        first observations (len(slots), 89) and reset infos, in the order of ``slots``."""
        slots = [int(i) for i in slots]
        seeds = [None] * len(slots) if seeds is None else list(seeds)
        obs = np.zeros((len(slots), *self.observation_space.shape), dtype=np.float32)
        infos: list[dict[str, Any]] = [{} for _ in slots]
        for g in self.groups:
            mine = [k for k, i in enumerate(slots) if i in g.index]
            if mine:
                rows = np.searchsorted(g.index, [slots[k] for k in mine])
                first, group_infos = self._start(g, rows, [seeds[k] for k in mine])
                obs[mine] = first
                for k, d in zip(mine, group_infos, strict=True):
                    infos[k] = d
        return obs, infos

    def _start(self, g: Group, rows: np.ndarray, seeds: Sequence[int | None] | None = None
               ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """New episodes in rows ``rows`` of group ``g``: their first observations and infos."""
        raw, info = g.sim.reset(rows, seeds)
        mask = np.zeros(len(g.index), dtype=bool)
        mask[rows] = True
        g.rewards.reset(info, mask)
        if self.walker is not None:
            self.walker.reset(np.isin(np.arange(self.n), g.index[rows]))
        if self.kick is not None:
            self.kick.reset(np.isin(np.arange(self.n), g.index[rows]))
        self.lengths[g.index[rows]] = 0
        first = self._observe(g, raw[rows], {k: info[k][rows] for k in PREPROCESSOR_KEYS},
                              g.index[rows])
        return first, self._reset_infos(g, rows)

    def _observe(self, g: Group, raw: np.ndarray, info: dict[str, np.ndarray],
                 slots: np.ndarray) -> np.ndarray:
        """The observations of env ``slots`` (rows of group ``g``) from their raw arrays."""
        obs = g.preprocessor.modify_state(raw, info)
        if self.time_feature:
            obs = np.concatenate([obs, time_fraction(self.lengths[slots],
                                                     g.sim.max_episode_steps)], axis=1)
        return obs

    def _reset_infos(self, g: Group, rows: np.ndarray) -> list[dict[str, Any]]:
        infos = info_dicts(g.sim.arrays.info, self.info_keys, rows)
        for d in infos:
            d["task"] = g.task.name
        return infos

    # -------------------------------------------------------------------------- steps
    def step(self, actions: np.ndarray) -> BatchStep:
        """One agent step of every slot, finished episodes reset (see the module docstring)."""
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (self.n, *self.action_space.shape):
            raise ValueError(f"actions must have shape {(self.n, *self.action_space.shape)}, "
                             f"got {actions.shape}")
        total = np.zeros(self.n)  # env reward summed over the inner steps
        active = np.ones(self.n, dtype=bool)
        snaps: list[dict[int, dict[str, Any]]] = [{} for _ in self.groups]
        if self.walker is None:
            self._physics_step(action_function(actions), total, active, snaps, last=True)
        else:
            self._walker_step(actions, total, active, snaps)
        return self._finish(total, snaps)

    @property
    def kicking(self) -> np.ndarray:
        """(N,) bool: envs whose kick macro is playing (its next agent step ignores actions)."""
        return np.zeros(self.n, dtype=bool) if self.kick is None else self.kick.active.copy()

    def _walker_step(self, actions: np.ndarray, total: np.ndarray, active: np.ndarray,
                     snaps: list[dict[int, dict[str, Any]]]) -> None:
        """``decimation`` physics steps of walker control (kick macros where they play)."""
        walker, cfg = self.walker, self.walker.config
        commands = actions[:, :3]
        kicking = np.zeros(self.n, dtype=bool)
        finished = np.zeros(self.n, dtype=bool)
        if self.kick is not None:
            self.kick.start(self.kick.triggered(actions), np.asarray(self._walker_inputs()[0]))
            kicking = self.kick.active.copy()
            commands = np.where(kicking[:, None], 0.0, commands)
        command = scale_command(commands, cfg.command_ranges)
        for k in range(cfg.decimation):
            q, dq, quat, gyro = self._walker_inputs()
            torques = walker.step(q, dq, quat, gyro, command)
            decision = walker.actions
            if kicking.any():
                targets, done = self.kick.targets()
                finished |= done
                kick = pd_torques(targets, np.asarray(q, dtype=np.float64),
                                  np.asarray(dq, dtype=np.float64), cfg)
                legs = self.kick.joint_mask  # the joints the kick drives
                torques[np.ix_(kicking, legs)] = kick[np.ix_(kicking, legs)]
                decision = np.where(kicking[:, None],
                                    (targets - cfg.default_q) / cfg.action_scale, decision)
            if k == 0:
                self.decision_actions = decision.astype(np.float32)
            torques[~active] = 0.0  # ended slots: stepped, discarded, reset below
            self._physics_step(torques, total, active, snaps, last=k == cfg.decimation - 1)
            if not active.any():
                break
        if finished.any():
            walker.reset(finished)  # the walker takes over from a fresh state

    def _walker_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if len(self.groups) == 1:
            sim = self.groups[0].sim
            return sim.joint_pos, sim.joint_vel, sim.robot_quat, sim.robot_gyro
        for g in self.groups:
            self._q[g.slots] = g.sim.joint_pos
            self._dq[g.slots] = g.sim.joint_vel
            self._quat[g.slots] = g.sim.robot_quat
            self._gyro[g.slots] = g.sim.robot_gyro
        return self._q, self._dq, self._quat, self._gyro

    def _physics_step(self, torques: np.ndarray, total: np.ndarray, active: np.ndarray,
                      snaps: list[dict[int, dict[str, Any]]], last: bool) -> None:
        """One physics step of every group; updates the sums, lengths, active flags and
        snapshots of the slots whose episode ends here (before the last inner step)."""
        for g, snap in zip(self.groups, snaps, strict=True):
            out = g.sim.step(torques[g.slots])
            act = active[g.slots]
            total[g.slots] = np.where(act, total[g.slots] + out.reward, total[g.slots])
            self.lengths[g.slots] += act
            ended = (out.terminated | out.truncated) & act
            if ended.any():
                if not last:
                    for j in np.flatnonzero(ended):
                        snap[int(j)] = _snapshot(g.sim, int(j))
                active[g.slots] = act & ~ended

    def _finish(self, total: np.ndarray, snaps: list[dict[int, dict[str, Any]]]) -> BatchStep:
        n = self.n
        out = BatchStep(np.zeros((n, *self.observation_space.shape), dtype=np.float32),
                        np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool),
                        [{} for _ in range(n)])
        for g, snap in zip(self.groups, snaps, strict=True):
            f = _final(g.sim, snap)
            done = f.terminated | f.truncated
            ended = np.flatnonzero(done)
            rows = np.arange(len(g.index))
            infos = info_dicts(f.info, self.info_keys, rows)
            score = np.zeros(len(g.index))
            if self.with_terms or ended.size:
                terms = term_dicts(f.terms, rows)
                if self.with_terms:
                    for d, t in zip(infos, terms, strict=True):
                        d["reward_terms"] = t
                fallen = fallen_flags(f.terms, f.height, g.sim.min_height)
                lengths = self.lengths[g.slots]
                for j in ended:
                    rec = episode_record(g.task, terms[j], bool(f.info["success"][j]),
                                         bool(fallen[j]), int(lengths[j]))
                    infos[j]["soccer"], score[j] = rec, rec["score"]
            reward = g.rewards.step(total[g.slots], f.info, done, score)
            obs = self._observe(g, f.obs, f.info, g.index)
            for i, d in zip(g.index, infos, strict=True):
                d["task"] = g.task.name
                out.infos[i] = d
            out.reward[g.slots] = reward
            out.terminated[g.slots] = f.terminated
            out.truncated[g.slots] = f.truncated
            if ended.size:
                for j in ended:
                    out.terminal_obs[int(g.index[j])] = obs[j].copy()
                obs = self._reset_ended(g, ended, obs, out)
            out.obs[g.slots] = obs
        return out

    def _reset_ended(self, g: Group, ended: np.ndarray, obs: np.ndarray, out: BatchStep
                     ) -> np.ndarray:
        """Reset the slots ``ended`` (rows of group ``g``); returns ``obs`` with their new
        episodes' first observations."""
        first, infos = self._start(g, ended)
        obs = obs.copy()
        obs[ended] = first
        for j, d in zip(ended, infos, strict=True):
            out.reset_infos[int(g.index[j])] = d
        return obs

    # ---------------------------------------------------------------------------- misc
    def time_limit_of(self, slot: int) -> int:
        """The time limit (env steps) of env ``slot``'s episodes."""
        return int(next(g.sim.max_episode_steps for g in self.groups if slot in g.index))

    def task_of(self, slot: int) -> SoccerTask:
        """The task env ``slot`` runs."""
        return get_task(self.slot_tasks[slot])

    def _row(self, slot: int, method: str) -> tuple[TaskPhysics, int]:
        """The backend object and row of env ``slot``; UserError if it lacks ``method``."""
        for g in self.groups:
            rows = np.flatnonzero(g.index == slot)
            if rows.size:
                if not hasattr(g.sim, method):
                    raise UserError(f"the {self.spec.backend} soccer backend has no {method}(); "
                                    "videos use env.backend: sai (identical dynamics)")
                return g.sim, int(rows[0])
        raise IndexError(slot)

    def render(self, slot: int = 0) -> np.ndarray:
        """An RGB frame of env ``slot`` (backends that render: sai)."""
        sim, row = self._row(slot, "render")
        return sim.render(row)

    def mujoco(self, slot: int = 0) -> tuple[Any, Any]:
        """Env ``slot``'s MuJoCo ``(MjModel, MjData)`` (sai backend)."""
        sim, row = self._row(slot, "mujoco")
        return sim.mujoco(row)

    def close(self) -> None:
        """Close every backend (physics threads, sai envs, cameras)."""
        for g in self.groups:
            g.sim.close()
        self.groups = []


def _check_info_keys(info_keys: str | Sequence[str]) -> tuple[tuple[str, ...], bool]:
    """(sai info keys to copy, whether to add ``reward_terms``) from ``info_keys``."""
    if info_keys == "all":
        return INFO_KEYS, True
    keys = tuple([info_keys] if isinstance(info_keys, str) else info_keys)
    unknown = sorted(set(keys) - {*INFO_KEYS, "reward_terms"})
    if unknown:
        raise UserError(f"unknown info keys {unknown}; known: {', '.join(INFO_KEYS)}, "
                        "reward_terms")
    return tuple(k for k in INFO_KEYS if k in keys), "reward_terms" in keys
