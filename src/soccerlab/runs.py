"""The run directory: its layout, crash-safe writes, and finding what is in it.

```
<run>/config.yaml        the resolved config (re-runnable as is)
<run>/meta.json          command, versions, seed, times, status, timesteps
<run>/model.zip          final model (+ vecnormalize.pkl/.npz when normalising)
<run>/best/              best model by evaluation (+ its vecnormalize.pkl, metrics.json)
<run>/checkpoints/<step>/ model.zip, vecnormalize.pkl, replay_buffer.pkl, state.json
<run>/evaluations.csv    one row per evaluation
<run>/tb/                TensorBoard events
<run>/videos/            evaluation videos
```
Every file that must survive a crash is written to a temporary name and renamed into place;
checkpoint and best-model folders are built aside and renamed as a whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from soccerlab.errors import UserError

MODEL = "model.zip"
VECNORM = "vecnormalize.pkl"
VECNORM_NPZ = "vecnormalize.npz"  # the same statistics as plain arrays (soccerlab.normalizer)
REPLAY = "replay_buffer.pkl"
STATE = "state.json"
METRICS = "metrics.json"


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` with the same suffix; rename it into place on success.

    The suffix is kept because SB3 appends '.zip' / '.pkl' to paths that lack it.
    """
    final = Path(final)
    tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Build a folder aside and swap it in for ``final`` (replacing any earlier one)."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        for f in tmp.iterdir():
            _fsync(f)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------------------------
# The run directory
# ---------------------------------------------------------------------------------------------


class RunDir:
    """Paths and metadata of one training run."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # layout ------------------------------------------------------------------------------
    config_file = property(lambda self: self.path / "config.yaml")
    meta_file = property(lambda self: self.path / "meta.json")
    model_file = property(lambda self: self.path / MODEL)
    vecnorm_file = property(lambda self: self.path / VECNORM)
    best_dir = property(lambda self: self.path / "best")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    dagger_dir = property(lambda self: self.path / "dagger")  # BC: each DAgger round's weights
    evaluations_file = property(lambda self: self.path / "evaluations.csv")
    tb_dir = property(lambda self: self.path / "tb")
    videos_dir = property(lambda self: self.path / "videos")
    error_file = property(lambda self: self.path / "error.log")

    @classmethod
    def create(cls, root: Path, env_label: str, algo: str, name: str) -> RunDir:
        """A new, empty run folder ``root/<env>/<algo>/<name>-<timestamp>[-k]``."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        parent = Path(root) / env_label / algo
        parent.mkdir(parents=True, exist_ok=True)
        for k in range(1, 1000):
            path = parent / (f"{name}-{stamp}" if k == 1 else f"{name}-{stamp}-{k}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path)
        raise UserError(f"cannot create a run folder under {parent}")

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        run = cls(Path(path))
        if not run.path.is_dir():
            raise UserError(f"run directory not found: {run.path}")
        if not run.config_file.is_file():
            raise UserError(f"{run.path} is not a soccerlab run (no config.yaml)")
        return run

    # metadata ----------------------------------------------------------------------------
    def read_meta(self) -> dict[str, Any]:
        if not self.meta_file.exists():
            return {}
        try:
            return json.loads(self.meta_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"corrupt {self.meta_file}: {exc}") from None

    def update_meta(self, **fields: Any) -> dict[str, Any]:
        meta = self.read_meta()
        meta.update(fields)
        write_json_atomic(self.meta_file, meta)
        return meta

    # checkpoints -------------------------------------------------------------------------
    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first (folders are renamed into place when complete)."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for p in self.checkpoints_dir.iterdir():
            if p.is_dir() and p.name.isdigit() and (p / MODEL).is_file():
                found.append((int(p.name), p))
        return sorted(found)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def prune_checkpoints(self, keep: int) -> None:
        for _, path in self.checkpoints()[:-keep]:
            shutil.rmtree(path, ignore_errors=True)

    # models ------------------------------------------------------------------------------
    def policy_model(self) -> Path:
        """The model a user means by 'this run': the best one, else the final one, else the latest
        checkpoint."""
        for candidate in (self.best_dir / MODEL, self.model_file):
            if candidate.is_file():
                return candidate
        latest = self.latest_checkpoint()
        if latest:
            return latest[1] / MODEL
        raise UserError(f"{self.path} holds no model yet (no best/, model.zip or checkpoint)")


def run_of_model(model_path: Path) -> Path | None:
    """The run a model file belongs to: its folder or one up to two above it, the first that
    holds a ``config.yaml`` (``best/``, ``checkpoints/N/``, ``dagger/round-R/``); None outside
    any run."""
    for folder in (model_path.parent, *list(model_path.parents)[1:3]):
        if (folder / "config.yaml").is_file():
            return folder
    return None


def versions() -> dict[str, str]:
    """Versions of the packages that decide what a run does."""
    out = {"python": platform.python_version()}
    for name in ("soccerlab", "torch", "stable_baselines3", "sb3_contrib", "gymnasium", "mujoco",
                 "numpy"):
        module = sys.modules.get(name)
        if module is None:
            with contextlib.suppress(ImportError):
                module = __import__(name)
        out[name] = getattr(module, "__version__", "?") if module else "missing"
    try:
        from importlib.metadata import version

        out["sai_mujoco"] = version("sai-mujoco")
    except Exception:  # noqa: BLE001 - optional information
        out["sai_mujoco"] = "missing"
    return out


def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")
