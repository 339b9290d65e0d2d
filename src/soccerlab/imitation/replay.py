"""Demonstrations in an off-policy replay buffer (``algo.demos``), RLPD-style when asked.

``DemoReplayBuffer`` is SB3's ``ReplayBuffer`` plus a fixed store of demonstration
transitions that the ring buffer never overwrites. A batch draws from both:

- ``batch_share: null`` (default): uniformly over all transitions, demos and online alike,
  which is what pre-filling the buffer with the demos gives, except that they stay;
- ``batch_share: s``: a fixed ``round(s * batch_size)`` rows from the demos and the rest from
  the online buffer (symmetric sampling, as in RLPD, for s = 0.5).

At most ``fraction * buffer_size`` demo transitions are loaded (a random subset, seeded, if
the file holds more). The demos are stored raw, like SB3 stores online transitions under
VecNormalize, and normalised when sampled. They are part of the buffer object, so they are in
every checkpoint's ``replay_buffer.pkl`` and come back on resume.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from soccerlab.config import Config
from soccerlab.errors import UserError
from soccerlab.imitation.demos import load_demos


class DemoReplayBuffer(ReplayBuffer):
    """See the module docstring."""

    def __init__(self, *args: Any, batch_share: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_share = batch_share
        self.demo: dict[str, np.ndarray] = {}

    @property
    def demo_size(self) -> int:
        return len(self.demo["rewards"]) if self.demo else 0

    def add_demos(self, obs: np.ndarray, next_obs: np.ndarray, actions: np.ndarray,
                  rewards: np.ndarray, dones: np.ndarray) -> None:
        """Store demonstration transitions (``dones``: terminated, not truncated)."""
        shape = self.obs_shape
        if tuple(obs.shape[1:]) != tuple(shape) or actions.shape[1:] != (self.action_dim,):
            raise UserError(f"demos have observations {obs.shape[1:]} and actions "
                            f"{actions.shape[1:]}; the model needs {shape} and "
                            f"({self.action_dim},)")
        self.demo = {"obs": obs.astype(self.observation_space.dtype),
                     "next_obs": next_obs.astype(self.observation_space.dtype),
                     "actions": actions.astype(self._maybe_cast_dtype(self.action_space.dtype)),
                     "rewards": rewards.astype(np.float32),
                     "dones": dones.astype(np.float32)}

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        n_demo = self.demo_size
        if n_demo == 0:
            return super().sample(batch_size, env=env)
        n_online = self.size() * self.n_envs
        if self.batch_share is None:
            k = int(np.random.binomial(batch_size, n_demo / (n_demo + n_online)))
        else:
            k = int(round(self.batch_share * batch_size)) if n_online else batch_size
        parts = []
        if batch_size - k > 0:
            parts.append(super().sample(batch_size - k, env=env))
        if k > 0:
            parts.append(self._demo_samples(np.random.randint(0, n_demo, size=k), env))
        if len(parts) == 1:
            return parts[0]
        return ReplayBufferSamples(*(None if a is None else th.cat([a, b])
                                     for a, b in zip(*parts, strict=True)))

    def _demo_samples(self, rows: np.ndarray, env: VecNormalize | None) -> ReplayBufferSamples:
        d = self.demo
        data = (self._normalize_obs(d["obs"][rows], env), d["actions"][rows],
                self._normalize_obs(d["next_obs"][rows], env), d["dones"][rows].reshape(-1, 1),
                self._normalize_reward(d["rewards"][rows].reshape(-1, 1), env))
        online_fields = len(ReplayBufferSamples._fields) - len(data)
        return ReplayBufferSamples(*map(self.to_torch, data), *([None] * online_fields))


def buffer_params(cfg: Config) -> dict[str, Any]:
    """The algorithm parameters that put a ``DemoReplayBuffer`` in the model."""
    if cfg.algo.demos is None:
        return {}
    if "replay_buffer_class" in cfg.algo.params:
        raise UserError("algo.demos brings its own replay buffer: remove "
                        "algo.params.replay_buffer_class")
    return {"replay_buffer_class": DemoReplayBuffer,
            "replay_buffer_kwargs": {**cfg.algo.params.get("replay_buffer_kwargs", {}),
                                     "batch_share": cfg.algo.demos.batch_share}}


def load_demos_into(model: Any, cfg: Config) -> str:
    """Fill the model's ``DemoReplayBuffer`` from ``algo.demos``; returns a line to print."""
    from soccerlab.imitation.bc import check_demos, demo_time_limit, walker_ranges

    spec = cfg.algo.demos
    demos = load_demos(spec.path)
    if spec.min_score is not None:
        demos = demos.select_episodes(demos.episode_score > spec.min_score)
    check_demos(cfg, demos, walker_ranges(model.get_env()))
    if demos.reward_mode != cfg.env.reward:
        raise UserError(f"demos were recorded with env.reward: {demos.reward_mode}, the config "
                        f"trains on {cfg.env.reward}: their rewards would mean something else")
    buffer = model.replay_buffer
    cap = max(1, int(spec.fraction * buffer.buffer_size * buffer.n_envs))  # in transitions
    rows = np.arange(demos.n)
    if demos.n > cap:
        rows = np.sort(np.random.default_rng(cfg.experiment.seed).choice(demos.n, cap,
                                                                          replace=False))
    limit = demo_time_limit(cfg, model.get_env())
    buffer.add_demos(demos.policy_observations(limit, cfg.env.hide)[rows],
                     demos.policy_next_observations(limit, cfg.env.hide)[rows],
                     np.clip(demos.policy_actions(cfg.env.control)[rows], -1.0, 1.0),
                     demos.rewards[rows], demos.terminated[rows])
    share = ("uniform sampling over demos and online transitions" if spec.batch_share is None
             else f"{spec.batch_share:.0%} of every batch from the demos")
    return (f"demos: loaded {len(rows)} of {demos.n} transitions from {spec.path} into the "
            f"replay buffer ({share})")
