"""``SoccerBatch``: N ``SoccerEnv`` slots on fast simulators, as arrays.

What ``[make_soccer_env(...) for each slot]`` computes on sai-mujoco, here for all slots at
once and with the same code where it matters: the unified observation is
``submission.Preprocessor`` on a batch, torques come from ``submission.action_function`` or
one batched ``JoystickWalker`` (one policy forward pass per 50 Hz tick for every slot, PD at
every physics step), rewards from ``rewards.RewardTracker`` and scores from
``scoring.episode_score``. Slots of one task share one ``FastSoccerSim``; several tasks give
several simulators, stepped one after the other.

Walker control runs ``decimation`` physics steps per agent step. A slot whose episode ends at
inner step k < decimation keeps being stepped with zero torques (its results are discarded):
its observation, info, reward terms, summed env reward and length are those of step k, as in
``SoccerEnv``, and it is reset at the end of the agent step, exactly once, like sai's.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from soccerlab.envs.soccer.env import CONTROLS
from soccerlab.envs.soccer.fast.compute import BOOL_TERMS, INFO_KEYS
from soccerlab.envs.soccer.fast.sim import FastSoccerSim
from soccerlab.envs.soccer.rewards import RewardTracker, ShapingConfig, check_reward_mode
from soccerlab.envs.soccer.robot import NUM_JOINTS
from soccerlab.envs.soccer.scoring import episode_score
from soccerlab.envs.soccer.submission import Preprocessor, action_function
from soccerlab.envs.soccer.tasks import SoccerTask, get_task
from soccerlab.envs.soccer.walker import JoystickWalker, batch_invariant, scale_command
from soccerlab.errors import UserError

#: The info keys ``Preprocessor.modify_state`` reads.
PREPROCESSOR_KEYS: tuple[str, ...] = ("robot_quat", *(k for k, _ in Preprocessor.INFO_LAYOUT))


# ------------------------------------------------------------------------ pure helpers
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
    """``info["soccer"]`` of an episode (``SoccerEnv.episode_record``) from its last step."""
    score, components = episode_score(terms, task)
    return {"task": task.name, "score": score, "components": components,
            "success": bool(success), "fallen": bool(fallen), "length": int(length)}


def fallen_flags(terms: dict[str, np.ndarray], height: np.ndarray, min_height: float
                 ) -> np.ndarray:
    """``SoccerEnv._fallen`` per row: the ``robot_fallen`` term where the task has one, else
    sai's ``has_robot_fallen`` on the IMU height."""
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
    sim: FastSoccerSim
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
        reward: (N,) float64 training reward (what ``SoccerEnv.step`` returns, as a float).
        terminated, truncated: (N,) bool.
        infos: per slot, the ``SoccerEnv`` info: the requested sai info keys (and
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


def _snapshot(sim: FastSoccerSim, j: int) -> dict[str, Any]:
    a = sim.arrays
    return {"obs": a.obs[j].copy(), "info": {k: v[j].copy() for k, v in a.info.items()},
            "terms": {k: v[j] for k, v in a.terms.items()}, "terminated": a.terminated[j],
            "truncated": a.truncated[j], "height": sim.robot_height[j]}


def _final(sim: FastSoccerSim, snaps: dict[int, dict[str, Any]]) -> Final:
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
    """N soccer slots (``slot_tasks[i]`` is slot i's task) stepped as arrays.

    Args:
        slot_tasks: Task name of every slot (e.g. from ``multitask.plan_slots``).
        control: ``"torque"`` or ``"walker"``.
        reward: ``"env"``, ``"competition"``, ``"shaped"`` or ``"progress"``.
        walker: A ``JoystickWalker`` for N envs (walker control). If its policy is not
            ``batch_invariant``, it is switched to one forward pass per env (with a warning).
        shaping: Parameters of the ``shaped`` reward.
        max_episode_steps: TimeLimit in env steps (default: the registered one).
        info_keys: sai info keys copied into each slot's info dict: ``"all"`` (every key plus
            ``reward_terms``, like sai-mujoco) or a list (which may name ``reward_terms``).
        n_threads, reset_mode: See ``FastSoccerSim``.
        observation: Frame of the unified observation's relative vectors: ``"world"`` or
            ``"heading"`` (see ``Preprocessor``).
    """

    def __init__(self, slot_tasks: Sequence[str], control: str = "torque", reward: str = "env",
                 walker: JoystickWalker | None = None, shaping: ShapingConfig | None = None,
                 max_episode_steps: int | None = None, info_keys: str | Sequence[str] = "all",
                 n_threads: int | None = None, reset_mode: str = "replay",
                 observation: str = "world") -> None:
        if control not in CONTROLS:
            raise UserError(f"unknown control '{control}' (choose one of: {', '.join(CONTROLS)})")
        self.n = n = len(slot_tasks)
        if n < 1:
            raise UserError("the fast soccer backend needs at least one env")
        check_reward_mode(reward)
        self.control = control
        self.walker = walker
        if control == "walker":
            if walker is None or walker.num_envs != n:
                raise ValueError(f"walker control needs a JoystickWalker for {n} envs")
            if not walker.per_row and not batch_invariant(walker.policy, n):
                warnings.warn("the walker policy's outputs depend on the batch they are computed "
                              "in; running one forward pass per env to stay identical to "
                              "single-env walkers (slower)", stacklevel=2)
                walker.per_row = True
        self.info_keys, self.with_terms = _check_info_keys(info_keys)
        tasks = [get_task(t) for t in slot_tasks]
        self.slot_tasks = [t.name for t in tasks]
        self.groups: list[Group] = []
        try:
            for name in dict.fromkeys(self.slot_tasks):
                index = np.flatnonzero(np.array(self.slot_tasks) == name)
                task = get_task(name)
                sim = FastSoccerSim(task.name, len(index), max_episode_steps=max_episode_steps,
                                    n_threads=n_threads, reset_mode=reset_mode)
                self.groups.append(Group(task, index, contiguous(index), sim,
                                         Preprocessor(task_index=task.onehot_index, frame=observation),
                                         RewardTracker(reward, [task] * len(index), shaping)))
        except BaseException:
            self.close()
            raise
        self.max_episode_steps = self.groups[0].sim.max_episode_steps
        dim = 3 if control == "walker" else NUM_JOINTS
        self.action_space = gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (tasks[0].unified_obs_size,),
                                                np.float32)
        self.lengths = np.zeros(n, dtype=np.int64)  # env steps in the current episodes
        self._q = np.zeros((n, NUM_JOINTS), dtype=np.float32)
        self._dq = np.zeros((n, NUM_JOINTS), dtype=np.float32)
        self._quat = np.zeros((n, 4), dtype=np.float32)
        self._gyro = np.zeros((n, 3), dtype=np.float32)

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
            raw, info = g.sim.reset(None, [seeds[i] for i in g.index])
            g.rewards.reset(info)
            obs[g.slots] = g.preprocessor.modify_state(raw, info)
            for i, d in zip(g.index, self._reset_infos(g, np.arange(len(g.index))), strict=True):
                infos[i] = d
        if self.walker is not None:
            self.walker.reset()
        self.lengths[:] = 0
        return obs, infos

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
            command = scale_command(actions, self.walker.config.command_ranges)
            inner = self.walker.config.decimation
            for k in range(inner):
                torques = self.walker.step(*self._walker_inputs(), command)
                torques[~active] = 0.0  # ended slots: stepped, discarded, reset below
                self._physics_step(torques, total, active, snaps, last=k == inner - 1)
                if not active.any():
                    break
        return self._finish(total, snaps)

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
                fallen = fallen_flags(f.terms, f.height, g.sim.lay.min_height)
                lengths = self.lengths[g.slots]
                for j in ended:
                    rec = episode_record(g.task, terms[j], bool(f.info["success"][j]),
                                         bool(fallen[j]), int(lengths[j]))
                    infos[j]["soccer"], score[j] = rec, rec["score"]
            reward = g.rewards.step(total[g.slots], f.info, done, score)
            obs = g.preprocessor.modify_state(f.obs, f.info)
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
        raw, info = g.sim.reset(ended)
        mask = np.zeros(len(g.index), dtype=bool)
        mask[ended] = True
        g.rewards.reset(info, mask)
        if self.walker is not None:
            self.walker.reset(np.isin(np.arange(self.n), g.index[ended]))
        self.lengths[g.index[ended]] = 0
        sub = {k: info[k][ended] for k in PREPROCESSOR_KEYS}
        obs = obs.copy()
        obs[ended] = g.preprocessor.modify_state(raw[ended], sub)
        for j, d in zip(ended, self._reset_infos(g, ended), strict=True):
            out.reset_infos[int(g.index[j])] = d
        return obs

    # ---------------------------------------------------------------------------- misc
    def task_of(self, slot: int) -> SoccerTask:
        """The task slot ``slot`` runs."""
        return get_task(self.slot_tasks[slot])

    def close(self) -> None:
        """Stop the simulators' threads and close their private sai envs."""
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
