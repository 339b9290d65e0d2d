"""A validation loss for off-policy algorithms: the critic's TD error on held-out transitions.

While the held-out set is not full, each call of the replay buffer's ``add`` is diverted to it
with probability ``fraction`` (a seeded draw), so held-out transitions are never stored in the
replay buffer and never trained on. Every ``every`` steps the critic's mean squared TD error on
them is logged as ``train/val_td_error`` (with the current normaliser and target networks, and
the target policy without exploration noise). A critic that overfits its replay buffer shows up
as a rising validation error while ``train/critic_loss`` keeps falling.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from soccerlab.config import ValidationConfig
from soccerlab.errors import UserError

SUPPORTED = ("sac", "td3", "ddpg", "tqc")
FILE = "validation.npz"


class HoldoutSet:
    """Raw (unnormalised) transitions taken out of the replay buffer's stream."""

    def __init__(self, size: int, fraction: float, seed: int) -> None:
        self.size = size
        self.fraction = fraction
        self.rng = np.random.default_rng(seed)
        self.data: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "next_obs", "action", "reward", "done")}
        self._buffer: Any = None

    def __len__(self) -> int:
        return sum(len(x) for x in self.data["reward"])

    @property
    def full(self) -> bool:
        return len(self) >= self.size

    def attach(self, buffer: Any) -> None:
        """Intercept ``buffer.add`` (on the instance only; the class and SB3 files stay plain)."""
        self._buffer = buffer
        buffer.add = self._add

    @contextmanager
    def detached(self):
        """Remove the interception while the buffer is pickled."""
        buffer = self._buffer
        if buffer is not None and "add" in vars(buffer):
            del buffer.add
        try:
            yield
        finally:
            if buffer is not None:
                buffer.add = self._add

    def _add(self, obs, next_obs, action, reward, done, infos) -> None:
        if not self.full and self.rng.random() < self.fraction:
            timeouts = np.array([info.get("TimeLimit.truncated", False) for info in infos])
            self.data["obs"].append(np.array(obs))
            self.data["next_obs"].append(np.array(next_obs))
            self.data["action"].append(np.array(action))
            self.data["reward"].append(np.array(reward, dtype=np.float32).reshape(-1))
            self.data["done"].append((np.array(done) & ~timeouts).astype(np.float32).reshape(-1))
            return
        type(self._buffer).add(self._buffer, obs, next_obs, action, reward, done, infos)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v)[: self.size] for k, v in self.data.items()}

    def save(self, path: Path) -> None:
        if len(self):
            np.savez(path, **self.arrays())

    def load(self, path: Path) -> None:
        if path.exists():
            with np.load(path, allow_pickle=False) as f:
                self.data = {k: [f[k]] for k in self.data}


def check_supported(algo: str, observation_space: Any) -> None:
    if algo not in SUPPORTED:
        raise UserError(f"train.validation is supported for {', '.join(SUPPORTED)}, not {algo}")
    if not hasattr(observation_space, "shape") or observation_space.shape is None:
        raise UserError("train.validation needs a Box observation space")


@torch.no_grad()
def td_error(model: BaseAlgorithm, algo: str, data: dict[str, np.ndarray]) -> float:
    """Mean squared TD error of ``model``'s critics on the transitions in ``data``."""
    env = model.get_vec_normalize_env()
    obs, next_obs, reward = data["obs"], data["next_obs"], data["reward"]
    if env is not None:
        obs, next_obs = env.normalize_obs(obs), env.normalize_obs(next_obs)
        reward = env.normalize_reward(reward)
    policy = model.policy
    t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32), device=model.device)  # noqa: E731
    obs_t, next_t, act_t = t(obs), t(next_obs), t(data["action"])
    rew_t, done_t = t(reward).reshape(-1, 1), t(data["done"]).reshape(-1, 1)
    policy.set_training_mode(False)
    if algo == "tqc":
        return _tqc_td_error(model, obs_t, next_t, act_t, rew_t, done_t)
    if algo == "sac":
        next_a, next_logp = policy.actor.action_log_prob(next_t)
        next_q = torch.cat(policy.critic_target(next_t, next_a), dim=1).min(dim=1, keepdim=True)[0]
        next_q = next_q - _ent_coef(model) * next_logp.reshape(-1, 1)
    else:  # td3, ddpg: deterministic target policy
        next_a = policy.actor_target(next_t)
        next_q = torch.cat(policy.critic_target(next_t, next_a), dim=1).min(dim=1, keepdim=True)[0]
    target = rew_t + (1 - done_t) * model.gamma * next_q
    current = policy.critic(obs_t, act_t)
    return float(sum(((q - target) ** 2).mean() for q in current) / len(current))


def _ent_coef(model: Any) -> torch.Tensor:
    if getattr(model, "log_ent_coef", None) is not None:
        return torch.exp(model.log_ent_coef.detach())
    return model.ent_coef_tensor


def _tqc_td_error(model: Any, obs, next_obs, act, rew, done) -> float:
    policy = model.policy
    next_a, next_logp = policy.actor.action_log_prob(next_obs)
    next_quantiles = policy.critic_target(next_obs, next_a)  # (batch, n_critics, n_quantiles)
    next_quantiles, _ = torch.sort(next_quantiles.reshape(len(obs), -1))
    keep = next_quantiles.shape[1] - model.top_quantiles_to_drop_per_net * policy.critic.n_critics
    next_q = next_quantiles[:, :keep].mean(dim=1, keepdim=True) - _ent_coef(model) * next_logp.reshape(-1, 1)
    target = rew + (1 - done) * model.gamma * next_q
    current = policy.critic(obs, act).mean(dim=2)  # (batch, n_critics)
    return float(((current - target) ** 2).mean())


class ValidationCallback(BaseCallback):
    """Diverts held-out transitions from the replay buffer and logs their TD error."""

    def __init__(self, cfg: ValidationConfig, algo: str, seed: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.algo = algo
        self.holdout = HoldoutSet(cfg.size, cfg.fraction, seed)
        self._next = 0

    def _on_training_start(self) -> None:
        self.holdout.attach(self.model.replay_buffer)
        self._next = (self.num_timesteps // self.cfg.every + 1) * self.cfg.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next = (self.num_timesteps // self.cfg.every + 1) * self.cfg.every
            if len(self.holdout):
                self.logger.record("train/val_td_error", td_error(self.model, self.algo, self.holdout.arrays()))
                self.logger.record("train/val_transitions", len(self.holdout))
        return True
