"""Named activations and feature extractors for ``algo.policy_kwargs``.

The YAML names them (``activation_fn: silu``, ``features_extractor_class: residual_mlp``); this
module turns names into classes. Classes defined here are importable by path, so a model that
uses them loads with ``stable_baselines3.<Algo>.load`` wherever soccerlab is installed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from torch import nn

from soccerlab.config import PolicyKwargs, suggest
from soccerlab.errors import UserError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> type[nn.Module]:
    try:
        return ACTIVATIONS[name.lower()]
    except KeyError:
        raise UserError(
            f"unknown activation {name!r}{suggest(name, list(ACTIVATIONS))}; "
            f"known: {', '.join(ACTIVATIONS)}"
        ) from None


class MLPExtractor(BaseFeaturesExtractor):
    """Flatten, then a stack of Linear + activation layers; the last width is the feature size."""

    def __init__(
        self, observation_space: gym.Space, layers: tuple[int, ...] = (256,), activation_fn: str = "relu"
    ) -> None:
        layers = tuple(int(x) for x in layers)
        if not layers:
            raise UserError("features_extractor_kwargs.layers must list at least one width")
        super().__init__(observation_space, features_dim=layers[-1])
        act = activation(activation_fn)
        modules: list[nn.Module] = [nn.Flatten()]
        width = gym.spaces.utils.flatdim(observation_space)
        for size in layers:
            modules += [nn.Linear(width, size), act()]
            width = size
        self.net = nn.Sequential(*modules)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


class ResidualBlock(nn.Module):
    """x + W2 act(W1 norm(x)): a pre-norm residual block that keeps the width."""

    def __init__(self, width: int, act: type[nn.Module], layer_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width) if layer_norm else nn.Identity()
        self.fc1 = nn.Linear(width, width)
        self.act = act()
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class ResidualMLPExtractor(BaseFeaturesExtractor):
    """An input projection followed by pre-norm residual blocks (features_dim = width).

    Deeper than a plain MLP without the optimisation trouble: useful for the 89-dim soccer
    observation, whose entries differ in scale by orders of magnitude.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        width: int = 256,
        blocks: int = 2,
        activation_fn: str = "silu",
        layer_norm: bool = True,
    ) -> None:
        super().__init__(observation_space, features_dim=int(width))
        act = activation(activation_fn)
        self.flatten = nn.Flatten()
        self.inp = nn.Linear(gym.spaces.utils.flatdim(observation_space), int(width))
        self.blocks = nn.Sequential(*(ResidualBlock(int(width), act, layer_norm) for _ in range(blocks)))
        self.out = nn.Sequential(nn.LayerNorm(int(width)) if layer_norm else nn.Identity(), act())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.inp(self.flatten(observations))))


FEATURE_EXTRACTORS: dict[str, type[BaseFeaturesExtractor]] = {
    "flatten": FlattenExtractor,
    "mlp": MLPExtractor,
    "residual_mlp": ResidualMLPExtractor,
}


def resolve_policy_kwargs(spec: PolicyKwargs) -> dict[str, Any]:
    """Turn the config's policy_kwargs (names) into SB3's (classes)."""
    out: dict[str, Any] = dict(spec.model_extra or {})
    if spec.net_arch is not None:
        out["net_arch"] = spec.net_arch
    if spec.activation_fn is not None:
        out["activation_fn"] = activation(spec.activation_fn)
    if spec.features_extractor_class is not None:
        name = spec.features_extractor_class
        if name not in FEATURE_EXTRACTORS:
            raise UserError(
                f"algo.policy_kwargs.features_extractor_class: unknown {name!r}"
                f"{suggest(name, list(FEATURE_EXTRACTORS))}; known: {', '.join(FEATURE_EXTRACTORS)}"
            )
        out["features_extractor_class"] = FEATURE_EXTRACTORS[name]
    if spec.features_extractor_kwargs:
        if spec.features_extractor_class is None:
            raise UserError(
                "algo.policy_kwargs.features_extractor_kwargs needs features_extractor_class"
            )
        out["features_extractor_kwargs"] = dict(spec.features_extractor_kwargs)
    return out
