"""Finding and loading a joystick walker: local paths and ``hf://owner/repo/path`` references.

Threads: a walker forward pass is a small MLP (a few microseconds of math), so torch threads only
add overhead, and N subprocess envs each using all cores oversubscribe the machine. A walker
loaded inside a worker process (one with a multiprocessing parent, as in SB3's SubprocVecEnv)
therefore sets ``torch.set_num_threads(1)``; in the main process torch's setting is left alone,
because the learner shares it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from soccerlab.envs.soccer.behaviour.walker import WALKER_OBS_SIZE, JoystickWalker, WalkerConfig
from soccerlab.errors import UserError

HF_PREFIX = "hf://"


@dataclass(frozen=True)
class WalkerSpec:
    """Where a walker lives and how its commands are scaled.

    Attributes:
        path: Local ``.pt`` TorchScript file, or ``hf://owner/repo/path/in/repo.pt``.
        config: Its YAML (local path or ``hf://``); default: ``path`` with a ``.yaml`` suffix.
        command_ranges: axis (``vx``, ``vy``, ``yaw``) -> (low, high) in m/s and rad/s for
            normalised commands -1 and +1; axes not given keep the YAML's ``commands`` ranges.
        revision: Hub commit to fetch ``hf://`` files at (pins what is downloaded).
        sha256: Expected SHA-256 of the ``.pt`` file; a different file is refused.

    A walker from the hub must be pinned by ``revision`` or ``sha256``: a moving hub file must
    not silently change what a config means.
    """

    path: str
    config: str | None = None
    command_ranges: Mapping[str, tuple[float, float]] | None = None
    revision: str | None = None
    sha256: str | None = None


def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """Quick TCP check of the hub endpoint, so an offline machine fails in seconds, not after
    huggingface_hub's retries (~25 s). Skipped (assumed reachable) behind an HTTP(S) proxy."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return True
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_reference(ref: str, cache_dir: str | Path | None = None,
                      revision: str | None = None) -> Path:
    """Local path of ``ref``: a local file as is, an ``hf://owner/repo/file`` downloaded.

    Raises:
        UserError: the local file does not exist, the reference is malformed, or the hub
            can't be reached and the file isn't cached (the message names the local-path option).
    """
    if not ref.startswith(HF_PREFIX):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise UserError(f"walker file not found: {path}")
        return path
    parts = ref[len(HF_PREFIX) :].split("/")
    if len(parts) < 3 or not all(parts):
        raise UserError(f"bad hub reference '{ref}': expected hf://owner/repo/path/to/file")
    from huggingface_hub import constants, hf_hub_download

    offline = bool(constants.HF_HUB_OFFLINE) or not _hub_reachable(constants.ENDPOINT)
    try:
        return Path(
            hf_hub_download(
                "/".join(parts[:2]),
                "/".join(parts[2:]),
                cache_dir=cache_dir,
                revision=revision,
                local_files_only=offline,
            )
        )
    except Exception as err:  # huggingface_hub raises many types; all mean "no file"
        why = (
            "the Hugging Face Hub is unreachable (offline) and the file is not in the local cache"
            if offline
            else f"download failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        )
        raise UserError(
            f"can't get walker '{ref}': {why}; download it where the hub is reachable and give "
            "its local path instead (walker path: /path/to/walker.pt, config: /path/to/walker.yaml)"
        ) from err


def _default_config_ref(path_ref: str) -> str:
    stem, dot, _ = path_ref.rpartition(".")
    return f"{stem}.yaml" if dot and "/" not in path_ref[len(stem) :] else f"{path_ref}.yaml"


def load_policy(path: Path) -> torch.jit.ScriptModule:
    """``torch.jit.load`` a walker policy on CPU and check it maps (1, 47) -> (1, 12)."""
    try:
        policy = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:
        raise UserError(f"walker {path} is not a TorchScript file ({type(err).__name__})") from err
    policy.eval()
    with torch.inference_mode():
        try:
            out = policy(torch.zeros(1, WALKER_OBS_SIZE))
        except Exception as err:
            raise UserError(
                f"walker {path} does not accept {WALKER_OBS_SIZE} inputs: {err}"
            ) from err
    if tuple(out.shape) != (1, 12):
        raise UserError(
            f"walker {path} outputs shape {tuple(out.shape)} for one input, expected (1, 12)"
        )
    return policy


def load_walker(
    spec: WalkerSpec | str, num_envs: int = 1, cache_dir: str | Path | None = None
) -> JoystickWalker:
    """Load the walker policy and its YAML and return a :class:`JoystickWalker` for N envs."""
    spec = WalkerSpec(spec) if isinstance(spec, str) else spec
    hub = spec.path.startswith(HF_PREFIX)
    if hub and spec.revision is None and spec.sha256 is None:
        raise UserError(f"walker '{spec.path}' comes from the hub: pin it with "
                        "env.walker.revision (a commit) or env.walker.sha256 (the .pt file's hash)")
    if multiprocessing.parent_process() is not None:
        torch.set_num_threads(1)
    path = resolve_reference(spec.path, cache_dir, spec.revision)
    if spec.sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != spec.sha256.lower():
            raise UserError(f"walker {spec.path} has SHA-256 {digest}, but the config records "
                            f"{spec.sha256}: refusing a different file")
    policy = load_policy(path)
    config = WalkerConfig.from_yaml(resolve_reference(
        spec.config or _default_config_ref(spec.path), cache_dir, spec.revision if hub else None))
    if spec.command_ranges:
        config = WalkerConfig(**{**config.__dict__,
                                 "command_ranges": merge_command_ranges(config.command_ranges,
                                                                        spec.command_ranges)})
    return JoystickWalker(policy, config, num_envs=num_envs)


COMMAND_AXES: tuple[str, ...] = ("vx", "vy", "yaw")


def merge_command_ranges(base: np.ndarray, given: Mapping[str, tuple[float, float]]
                         ) -> np.ndarray:
    """(3, 2) ranges: ``base`` (the walker YAML's) with the axes in ``given`` replaced."""
    unknown = sorted(set(given) - set(COMMAND_AXES))
    if unknown:
        raise UserError(f"unknown walker command axes {unknown} (use {', '.join(COMMAND_AXES)})")
    ranges = np.array(base, dtype=np.float64, copy=True)
    for i, axis in enumerate(COMMAND_AXES):
        if axis in given:
            ranges[i] = given[axis]
    if np.any(ranges[:, 0] > 0) or np.any(ranges[:, 1] < 0):
        raise UserError(f"walker command_ranges must be (low <= 0, high >= 0) pairs, got "
                        f"{dict(given)}")
    return ranges


def parse_command_ranges(items: list[str]) -> dict[str, tuple[float, float]]:
    """``["vx=-1,1.5", ...]`` -> ``{"vx": (-1.0, 1.5)}`` (the ``--command-range`` flags); the axes
    are checked where the ranges are merged (``merge_command_ranges``)."""
    ranges: dict[str, tuple[float, float]] = {}
    for item in items:
        axis, _, values = item.partition("=")
        try:
            low, high = (float(v) for v in values.split(","))
        except ValueError:
            raise UserError(f"--command-range: expected AXIS=LOW,HIGH like vx=-1,1.5, got "
                            f"{item!r}") from None
        ranges[axis.strip()] = (low, high)
    return ranges
