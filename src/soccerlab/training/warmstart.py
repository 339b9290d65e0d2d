"""Warm starts: load pretrained weights into the matching parts of a new model; freeze layers.

Accepted files (``algo.init.path``):
- a run directory (e.g. a behaviour-cloning run): its policy model (best, else final, else
  latest checkpoint), and the observation normaliser statistics saved beside it
  (``load_normalizer_into``);
- an SB3 ``.zip``: its policy's state dict (and the normaliser beside it, as for a run);
- a PyTorch file (loaded with ``weights_only=True``) holding a state dict, or a dict with
  ``policy_state_dict`` (names as in ``model.policy``) or ``actor_state_dict`` (names as in the
  actor: ``model.policy.actor`` for SAC/TD3/TQC/CrossQ, ``model.policy`` for PPO/A2C).

Tensors are matched by name. A matching name with a different shape is refused, naming it;
a file where no name matches is refused too. Everything else is reported.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from torch import nn

from soccerlab.errors import UserError


@dataclass
class LoadReport:
    loaded: list[str]
    skipped: list[str]  # in the file, not in the model
    untouched: int  # model tensors left at their fresh initialisation
    target: str

    def __str__(self) -> str:
        msg = f"warm start: loaded {len(self.loaded)} tensors into {self.target}"
        msg += f"; {self.untouched} model tensors keep their fresh initialisation"
        if self.skipped:
            msg += f"; ignored {len(self.skipped)} from the file (e.g. {self.skipped[0]})"
        return msg


def resolve_init_path(path: str | Path) -> Path:
    """The weights file ``algo.init.path`` names: a run directory's policy model, else itself."""
    path = Path(path)
    if path.is_dir():
        from soccerlab import runs

        return runs.RunDir.open(path).policy_model()
    return path


def load_normalizer_into(vecnorm: Any, path: str | Path) -> str | None:
    """Start ``vecnorm``'s observation statistics from those saved beside the init model
    (``vecnormalize.npz``, read without unpickling). Returns what was done, or None."""
    from soccerlab import normalizer, runs

    source = resolve_init_path(path).parent / runs.VECNORM_NPZ
    if vecnorm is None or not vecnorm.norm_obs or not source.is_file():
        return None
    stats = normalizer.obs_statistics(source)
    if stats is None:
        return None
    mean, var, count = stats
    if mean.shape != vecnorm.obs_rms.mean.shape:
        raise UserError(f"algo.init.path: normaliser statistics in {source} have shape "
                        f"{mean.shape}, the env's observations {vecnorm.obs_rms.mean.shape}")
    vecnorm.obs_rms.mean, vecnorm.obs_rms.var, vecnorm.obs_rms.count = mean, var, count
    return f"warm start: observation normaliser statistics from {source} ({count:.0f} samples)"


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors in ``path`` and what they describe: 'policy' or 'actor'."""
    path = resolve_init_path(path)
    if not path.is_file():
        raise UserError(f"algo.init.path: file not found: {path}")
    if _is_sb3_archive(path):
        return _from_sb3_zip(path), "policy"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"algo.init.path: {path} is not a weights file torch can read safely: {first}") from None
    if isinstance(obj, dict):
        for key, kind in (("policy_state_dict", "policy"), ("actor_state_dict", "actor")):
            if key in obj:
                return _tensors(obj[key], path), kind
        return _tensors(obj, path), "policy"
    raise UserError(f"algo.init.path: {path} holds a {type(obj).__name__}, not a state dict")


def _is_sb3_archive(path: Path) -> bool:
    """SB3 zips hold 'data' and 'policy.pth' (torch.save files are zips too, with other names)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return {"data", "policy.pth"} <= set(zf.namelist())


def _from_sb3_zip(path: Path) -> dict[str, torch.Tensor]:
    from stable_baselines3.common.save_util import load_from_zip_file

    try:
        _, params, _ = load_from_zip_file(path, device="cpu", load_data=False)
    except Exception as exc:  # noqa: BLE001 - corrupt archives raise many types
        raise UserError(f"algo.init.path: cannot read SB3 archive {path}: {exc}") from None
    if not params or "policy" not in params:
        raise UserError(f"algo.init.path: {path} has no policy weights")
    return params["policy"]


def _tensors(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"algo.init.path: {path} does not hold a state dict of tensors")
    return obj


def actor_module(model: BaseAlgorithm) -> nn.Module:
    """The module that maps observations to actions (SAC/TD3-style actor, else the policy)."""
    return getattr(model.policy, "actor", None) or model.policy


def load_into(model: BaseAlgorithm, path: str | Path) -> LoadReport:
    """Copy the matching tensors of ``path`` into ``model`` (see the module docstring)."""
    source, kind = read_state_dict(path)
    target_module = actor_module(model) if kind == "actor" else model.policy
    target = target_module.state_dict()
    loaded, skipped, mismatched = [], [], []
    for name, tensor in source.items():
        if name not in target:
            skipped.append(name)
        elif tuple(target[name].shape) != tuple(tensor.shape):
            mismatched.append(f"{name}: file {tuple(tensor.shape)} vs model {tuple(target[name].shape)}")
        else:
            loaded.append(name)
    if mismatched:
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        raise UserError(f"algo.init.path: shapes do not match the model: {mismatched[0]}{more}")
    if not loaded:
        raise UserError(
            f"algo.init.path: no tensor name in {Path(path).name} matches the {kind} of this model "
            f"(file has e.g. {next(iter(source))!r}, model has e.g. {next(iter(target))!r})"
        )
    with torch.no_grad():
        for name in loaded:
            target[name].copy_(source[name].to(target[name].device))
    _sync_targets(model, kind, loaded)
    return LoadReport(loaded, skipped, len(target) - len(loaded), f"the {kind}")


def _sync_targets(model: BaseAlgorithm, kind: str, loaded: list[str]) -> None:
    """Where an actor or critic was loaded without its target copy, start the target equal to it."""
    policy = model.policy
    for net in ("actor", "critic"):
        target = f"{net}_target"
        if not hasattr(policy, target):
            continue
        if kind == "actor":
            got_net, got_target = net == "actor", False
        else:
            got_net = any(n.startswith(f"{net}.") for n in loaded)
            got_target = any(n.startswith(f"{target}.") for n in loaded)
        if got_net and not got_target:
            getattr(policy, target).load_state_dict(getattr(policy, net).state_dict())


# ---------------------------------------------------------------------------------------------
# Freezing
# ---------------------------------------------------------------------------------------------


def actor_layers(model: BaseAlgorithm) -> list[nn.Linear]:
    """The actor's linear layers from input to output."""
    policy = model.policy
    if hasattr(policy, "actor"):
        modules = [policy.actor]
    else:  # on-policy ActorCriticPolicy: the policy path only
        modules = [getattr(policy, "pi_features_extractor", policy.features_extractor),
                   policy.mlp_extractor.policy_net, policy.action_net]
    layers: list[nn.Linear] = []
    for module in modules:
        layers += [m for m in module.modules() if isinstance(m, nn.Linear)]
    return layers


def set_frozen(model: BaseAlgorithm, n_layers: int, frozen: bool) -> list[nn.Linear]:
    """Freeze (or unfreeze) the first ``n_layers`` linear layers of the actor."""
    layers = actor_layers(model)
    if n_layers > len(layers):
        raise UserError(f"algo.init.freeze_layers={n_layers} but the actor has {len(layers)} linear layers")
    for layer in layers[:n_layers]:
        for p in layer.parameters():
            p.requires_grad_(not frozen)
            if frozen:
                p.grad = None
    return layers[:n_layers]
