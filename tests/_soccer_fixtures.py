"""Small fixtures for the soccer tests: a tiny TorchScript walker and its YAML, made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml


def walker_yaml_dict(
    stiffness: float = 200.0, ankle_stiffness: float = 50.0, damping: float = 5.0
) -> dict:
    """A booster_gym-style walker config with the keys the walker reads."""
    return {
        "init_state": {
            "default_joint_angles": {
                "Hip_Pitch": -0.2, "Knee_Pitch": 0.4, "Ankle_Pitch": -0.25, "default": 0.0
            }
        },
        "control": {
            "stiffness": {"Hip": stiffness, "Knee": stiffness, "Ankle": ankle_stiffness},
            "damping": {"Hip": damping, "Knee": damping, "Ankle": damping / 5},
            "action_scale": 1.0,
            "decimation": 10,
        },
        "normalization": {
            "gravity": 1.0, "lin_vel": 1.0, "ang_vel": 1.0, "dof_pos": 1.0, "dof_vel": 0.1,
            "clip_actions": 1.0,
        },
        "commands": {
            "lin_vel_x": [-1.0, 1.0], "lin_vel_y": [-0.5, 0.5], "ang_vel_yaw": [-1.0, 1.0],
            "gait_frequency": [1.0, 2.0],
        },
        "sim": {"dt": 0.002},
    }  # fmt: skip


class TinyWalker(torch.nn.Module):
    """47 -> 12: a fixed linear map followed by tanh, scaled so outputs can exceed +-1."""

    def __init__(self, weight: torch.Tensor, scale: float):
        super().__init__()
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(x @ self.weight.T)


def tiny_weight(seed: int = 0) -> torch.Tensor:
    """A reproducible (12, 47) weight matrix."""
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.normal(0.0, 0.5, size=(12, 47)), dtype=torch.float32)


def write_walker(
    directory: Path, name: str = "walker", scale: float = 1.5, zero: bool = False, **yaml_kwargs
) -> tuple[Path, Path]:
    """Write ``name.pt`` (TorchScript) and ``name.yaml`` into ``directory``; return both paths."""
    weight = torch.zeros(12, 47) if zero else tiny_weight()
    module = torch.jit.script(TinyWalker(weight, scale))
    pt = directory / f"{name}.pt"
    module.save(str(pt))
    cfg = directory / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(walker_yaml_dict(**yaml_kwargs)), encoding="utf-8")
    return pt, cfg


def reference_policy(obs: np.ndarray, scale: float = 1.5) -> np.ndarray:
    """What ``TinyWalker(tiny_weight(), scale)`` computes, in NumPy."""
    return scale * np.tanh(obs.astype(np.float64) @ tiny_weight().numpy().astype(np.float64).T)
