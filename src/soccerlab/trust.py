"""Which pickle files may be unpickled: those this machine's soccerlab wrote, or any with
``--trust-pickle``.

Unpickling runs whatever code the file names, so a model zip's ``data`` entry (cloudpickle),
``vecnormalize.pkl`` and ``replay_buffer.pkl`` from someone else are a way to run code on your
machine. ``eval``, ``play`` and ``export`` never unpickle (weights with
``torch.load(weights_only=True)``, statistics from ``vecnormalize.npz``). Resuming needs SB3's
own loaders, which unpickle: the trainer records the SHA-256 of every pickle-bearing file it
writes (an empty file per hash under ``$SOCCERLAB_STATE_DIR/written``, default
``~/.local/state/soccerlab``), and ``train --resume`` loads a checkpoint without asking when
every such file in it is one of them, i.e. when you are resuming your own run on the machine
that wrote it. Anything else needs ``--trust-pickle``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from soccerlab.errors import UserError

FLAG = "--trust-pickle"


def state_dir() -> Path:
    if os.environ.get("SOCCERLAB_STATE_DIR"):
        return Path(os.environ["SOCCERLAB_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "soccerlab"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record(paths: Iterable[Path]) -> None:
    """Remember ``paths`` (files soccerlab just wrote) as safe to unpickle on this machine."""
    folder = state_dir() / "written"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            if Path(path).is_file():
                (folder / _digest(Path(path))).touch()
    except OSError:
        pass  # no state dir: resuming then asks for --trust-pickle, which is safe


def written_here(path: Path) -> bool:
    return (state_dir() / "written" / _digest(Path(path))).is_file()


def check(paths: Iterable[Path], trust_pickle: bool, what: str) -> None:
    """UserError unless every existing file in ``paths`` was written here or ``trust_pickle``."""
    if trust_pickle:
        return
    for path in paths:
        path = Path(path)
        if path.is_file() and not written_here(path):
            raise UserError(
                f"{what} needs to unpickle {path}, which soccerlab did not write on this machine; "
                f"unpickling runs any code the file names, so pass {FLAG} only if you trust "
                "where it came from")
