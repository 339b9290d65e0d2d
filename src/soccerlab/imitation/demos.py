"""Demonstration datasets: one ``.npz`` file, readable with ``allow_pickle=False``.

One row per agent decision (a 50 Hz command under walker control, a 500 Hz torque action
under torque control). The first three arrays are the official collector's BC format:

==========================  ==============  ================================================
key                         shape, dtype    meaning
==========================  ==============  ================================================
``observations``            (N, 89) f32     unified observation the policy saw (``frame``)
``actions``                 (N, 12) f32     joint-level action in [-1, 1]: torque control,
                                            the action (torque / limit); walker control,
                                            the walker's output at that decision (joint
                                            target offsets, clipped)
``done``                    (N,) bool       the episode ended at this step
``commands``                (N, 3) f32      walker-command action in [-1, 1] (vx, vy, yaw);
                                            zeros under torque control
``next_observations``       (N, 89) f32     observation after the step (the episode's last
                                            one where ``done``)
``rewards``                 (N,) f32        training reward of the step (``reward_mode``)
``terminated``              (N,) bool       ``done`` by termination, not by the time limit
``task_index``              (N,) int8       index into ``tasks``
``episode``                 (N,) int32      episode id, 0..E-1
``tasks``                   (T,) str        task names
``episode_task``            (E,) int8       index into ``tasks``
``episode_score``           (E,) f64        competition score of the episode
``episode_success``         (E,) bool
``episode_fallen``          (E,) bool
``episode_length``          (E,) int32      env steps (500 Hz)
``control``                 () str          ``torque`` or ``walker``
``frame``                   () str          observation frame, ``world`` or ``heading``
``reward_mode``             () str          what ``rewards`` holds (``env``, ``shaped``...)
``source``                  () str          who played (an expert's name, a run, a model)
``command_ranges``          (3, 2) f64      walker control: the (low, high) of vx, vy, yaw
                                            that commands -1 and +1 meant (optional)
``steps``                   (N,) int32      env steps the episode had run at the row's
                                            observation (optional; what a policy with
                                            ``env.time_feature`` sees, over the time limit)
``format_version``          () int
==========================  ==============  ================================================

``policy_actions`` returns the column a policy of a given control is trained on: ``commands``
for walker control, ``actions`` for torque control; ``policy_observations`` (and
``policy_next_observations``) the observations a policy sees, with the time feature appended
when it has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from soccerlab.errors import UserError
from soccerlab.runs import atomic_path

FORMAT_VERSION = 1
OBS_SIZE = 89
#: Per-row arrays: name -> (trailing shape, dtype).
ROW_ARRAYS: dict[str, tuple[tuple[int, ...], str]] = {
    "observations": ((OBS_SIZE,), "float32"),
    "actions": ((12,), "float32"),
    "done": ((), "bool"),
    "commands": ((3,), "float32"),
    "next_observations": ((OBS_SIZE,), "float32"),
    "rewards": ((), "float32"),
    "terminated": ((), "bool"),
    "task_index": ((), "int8"),
    "episode": ((), "int32"),
}
#: Per-episode arrays.
EPISODE_ARRAYS: dict[str, str] = {
    "episode_task": "int8",
    "episode_score": "float64",
    "episode_success": "bool",
    "episode_fallen": "bool",
    "episode_length": "int32",
}
SCALARS = ("control", "frame", "reward_mode", "source")


@dataclass
class Demos:
    """A demonstration dataset in memory (see the module docstring for every field)."""

    observations: np.ndarray
    actions: np.ndarray
    done: np.ndarray
    commands: np.ndarray
    next_observations: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    task_index: np.ndarray
    episode: np.ndarray
    tasks: tuple[str, ...]
    episode_task: np.ndarray
    episode_score: np.ndarray
    episode_success: np.ndarray
    episode_fallen: np.ndarray
    episode_length: np.ndarray
    control: str
    frame: str
    reward_mode: str
    source: str
    command_ranges: np.ndarray | None = None
    steps: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.observations)
        for name, (shape, dtype) in ROW_ARRAYS.items():
            arr = np.asarray(getattr(self, name))
            if arr.shape != (n, *shape):
                raise UserError(f"demos: {name} has shape {arr.shape}, expected {(n, *shape)}")
            setattr(self, name, arr.astype(dtype, copy=False))
        e = len(self.episode_score)
        for name, dtype in EPISODE_ARRAYS.items():
            arr = np.asarray(getattr(self, name))
            if arr.shape != (e,):
                raise UserError(f"demos: {name} has shape {arr.shape}, expected ({e},)")
            setattr(self, name, arr.astype(dtype, copy=False))
        self.tasks = tuple(str(t) for t in self.tasks)
        if self.command_ranges is not None:
            self.command_ranges = np.asarray(self.command_ranges, dtype=np.float64).reshape(3, 2)
        if self.steps is not None:
            self.steps = np.asarray(self.steps).astype(np.int32, copy=False)
            if self.steps.shape != (n,):
                raise UserError(f"demos: steps has shape {self.steps.shape}, expected ({n},)")
        if n and (self.episode.min() < 0 or self.episode.max() >= e):
            raise UserError("demos: episode ids out of range")
        if n and (self.task_index.min() < 0 or self.task_index.max() >= len(self.tasks)):
            raise UserError("demos: task_index out of range")

    @property
    def n(self) -> int:
        return len(self.observations)

    @property
    def n_episodes(self) -> int:
        return len(self.episode_score)

    def policy_actions(self, control: str) -> np.ndarray:
        """The actions a policy with ``control`` imitates (see the module docstring)."""
        if control != self.control:
            raise UserError(f"demos were recorded under {self.control} control; a {control}-"
                            "control policy cannot imitate them")
        return self.commands if control == "walker" else self.actions

    def policy_observations(self, time_limit: int | None = None,
                            hide: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
        """``observations``, with the time feature (``steps / time_limit``) appended as a 90th
        column when ``time_limit`` is given (a config with ``env.time_feature``), and the
        blocks of ``hide`` (a config's ``env.hide``) zeroed on their tasks' rows."""
        return self._with_time(self._hidden(self.observations, hide), self.steps, time_limit)

    def policy_next_observations(self, time_limit: int | None = None,
                                 hide: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
        """``next_observations`` as ``policy_observations`` gives ``observations``."""
        nxt_obs = self._hidden(self.next_observations, hide)
        if time_limit is None:
            return nxt_obs
        nxt = None
        if self.steps is not None:  # the next row's steps; the episode's length at its end
            nxt = self.episode_length[self.episode].astype(np.int64)
            same = np.zeros(self.n, dtype=bool)
            same[:-1] = (self.episode[1:] == self.episode[:-1]) & ~self.done[:-1]
            nxt[:-1] = np.where(same[:-1], self.steps[1:], nxt[:-1])
        return self._with_time(nxt_obs, nxt, time_limit)

    @staticmethod
    def _hidden(obs: np.ndarray, hide: Mapping[str, Sequence[str]] | None) -> np.ndarray:
        if not hide:
            return obs
        from soccerlab.envs.soccer.behaviour.submission import Preprocessor
        from soccerlab.envs.soccer.spec import hide_by_index

        return Preprocessor(hide=hide_by_index(hide)).apply_hide(obs.copy())

    def _with_time(self, obs: np.ndarray, steps: np.ndarray | None,
                   time_limit: int | None) -> np.ndarray:
        if time_limit is None:
            return obs
        if steps is None:
            raise UserError(f"the demos (source {self.source}) hold no 'steps' column, which a "
                            "policy with env.time_feature needs: record them again with this "
                            "soccerlab")
        from soccerlab.envs.soccer.batch import time_fraction

        return np.concatenate([obs, time_fraction(steps, time_limit)], axis=1)

    def select_episodes(self, keep: np.ndarray) -> Demos:
        """The dataset restricted to the episodes where ``keep`` (E,) is True (renumbered)."""
        keep = np.asarray(keep, dtype=bool)
        new_id = np.cumsum(keep) - 1
        rows = keep[self.episode]
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ROW_ARRAYS:
            values[name] = values[name][rows]
        if self.steps is not None:
            values["steps"] = self.steps[rows]
        values["episode"] = new_id[self.episode[rows]]
        for name in EPISODE_ARRAYS:
            values[name] = values[name][keep]
        return Demos(**values)

    def concat(self, other: Demos) -> Demos:
        """This dataset followed by ``other`` (same control and frame; its episodes renumbered
        after these, its tasks mapped onto a union of both task lists)."""
        for name in ("control", "frame"):
            if getattr(self, name) != getattr(other, name):
                raise UserError(f"demos differ in {name}: {getattr(self, name)} vs "
                                f"{getattr(other, name)}")
        if (self.steps is None) != (other.steps is None):
            raise UserError("demos: only one of the two datasets has a steps column")
        tasks = tuple(dict.fromkeys((*self.tasks, *other.tasks)))
        remap = np.array([tasks.index(t) for t in other.tasks], dtype=np.int64)
        values: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in (*ROW_ARRAYS, *EPISODE_ARRAYS):
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "episode":
                theirs = theirs + self.n_episodes
            elif name in ("task_index", "episode_task") and len(theirs):
                theirs = remap[theirs]
            values[name] = np.concatenate([mine, theirs])
        if self.steps is not None:
            values["steps"] = np.concatenate([self.steps, other.steps])
        values["tasks"] = tasks
        if self.source != other.source:
            values["source"] = f"{self.source}+{other.source}"
        return Demos(**values)

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` atomically (never half a file)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise UserError(f"demos file must end in .npz, got {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {name: getattr(self, name) for name in (*ROW_ARRAYS, *EPISODE_ARRAYS)}
        arrays["tasks"] = np.array(self.tasks, dtype=str)
        for name in SCALARS:
            arrays[name] = np.array(getattr(self, name), dtype=str)
        if self.command_ranges is not None:
            arrays["command_ranges"] = self.command_ranges
        if self.steps is not None:
            arrays["steps"] = self.steps
        arrays["format_version"] = np.array(FORMAT_VERSION)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path


def load_demos(path: str | Path) -> Demos:
    """Read a demos file (never unpickles); ``UserError`` with one line when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"demos file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in (*ROW_ARRAYS, *EPISODE_ARRAYS, "tasks", *SCALARS) if k not in data]
            if missing:
                raise UserError(f"{path} is not a soccerlab demos file: missing {missing}")
            version = int(data["format_version"]) if "format_version" in data else 0
            if version != FORMAT_VERSION:
                raise UserError(f"{path}: demos format {version}, this soccerlab reads "
                                f"{FORMAT_VERSION}")
            values: dict[str, Any] = {k: data[k] for k in (*ROW_ARRAYS, *EPISODE_ARRAYS)}
            values["tasks"] = tuple(str(t) for t in data["tasks"])
            for name in SCALARS:
                values[name] = str(data[name])
            for name in ("command_ranges", "steps"):
                if name in data:
                    values[name] = data[name]
    except UserError:
        raise
    except (ValueError, OSError, KeyError) as exc:
        raise UserError(f"cannot read demos {path}: {str(exc).splitlines()[0]}") from None
    return Demos(**values)
