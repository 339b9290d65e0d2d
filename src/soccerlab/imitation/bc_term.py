"""A behaviour-cloning term beside RL (``algo.bc_term``), for any algorithm, PPO included.

RL fine-tuning of a behaviour-cloned policy tends to move it off what it imitated before its
critic has learnt anything (measured: ``docs/results.md``). ``BCTerm`` keeps pulling the policy
toward the demonstrations while RL learns, less and less: before every policy update (at the
end of each rollout) it takes gradient steps on the mean squared error between the policy's
deterministic action and the demos' action on demo states, with its own Adam whose learning
rate falls linearly from ``learning_rate`` at step 0 to zero at ``until`` env steps; after that
it does nothing. Alternating steps of the two losses rather than one summed loss keeps SB3's
algorithms untouched; the decaying learning rate is the decaying weight.

How many BC steps per update: ``steps`` when given, otherwise as many as the algorithm's own
gradient steps per update (PPO/A2C: epochs × minibatches; off-policy: ``gradient_steps``).
Observations are normalised as the policy sees them (the run's VecNormalize, at each update).
Logged: ``train/bc_term_loss`` and ``train/bc_term_lr``. The BC optimiser's moments are not
checkpointed (a resumed run restarts them; the schedule follows the step count).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from soccerlab.config import Config
from soccerlab.imitation.demos import load_demos


def default_steps(model: Any) -> int:
    """The algorithm's own gradient steps per policy update."""
    if hasattr(model, "n_epochs"):  # PPO
        rows = model.n_steps * model.n_envs
        return int(model.n_epochs * math.ceil(rows / model.batch_size))
    if hasattr(model, "gradient_steps"):
        return max(1, int(model.gradient_steps))
    return 1  # A2C: one gradient step per update


class BCTerm(BaseCallback):
    """See the module docstring. ``observations``/``targets``: the demos as the policy sees
    them (time feature included) and the actions it should take."""

    def __init__(self, observations: np.ndarray, targets: np.ndarray, learning_rate: float,
                 until: int, batch_size: int, steps: int | None, seed: int) -> None:
        super().__init__()
        self.observations = observations
        self.targets = torch.as_tensor(np.clip(targets, -1.0, 1.0), dtype=torch.float32)
        self.learning_rate = learning_rate
        self.until = until
        self.batch_size = batch_size
        self.steps = steps
        self.rng = np.random.default_rng(seed)
        self.optimizer: torch.optim.Optimizer | None = None

    def _on_step(self) -> bool:
        return True

    def rate(self, step: int) -> float:
        """The BC learning rate at env step ``step``."""
        return self.learning_rate * max(0.0, 1.0 - step / self.until)

    def _on_rollout_end(self) -> None:
        lr = self.rate(self.num_timesteps)
        if lr <= 0.0:
            return
        from soccerlab.imitation.bc import policy_action

        model = self.model
        policy = model.policy
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad],
                                              lr=lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        vecnorm = model.get_vec_normalize_env()
        policy.set_training_mode(True)
        losses = []
        for _ in range(self.steps or default_steps(model)):
            rows = self.rng.integers(0, len(self.observations), self.batch_size)
            obs = self.observations[rows]  # normalised per batch, as the policy sees them now
            if vecnorm is not None:
                obs = vecnorm.normalize_obs(obs)
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=model.device)
            y = self.targets[rows].to(model.device)
            loss = torch.nn.functional.mse_loss(policy_action(model, x), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        policy.set_training_mode(False)
        self.logger.record("train/bc_term_loss", float(np.mean(losses)))
        self.logger.record("train/bc_term_lr", lr)


def bc_term_callback(cfg: Config, venv: Any) -> tuple[BCTerm, str]:
    """The ``BCTerm`` of ``algo.bc_term`` for a run on ``venv``, and a line to print."""
    from soccerlab.imitation.bc import check_demos, demo_time_limit, walker_ranges

    spec = cfg.algo.bc_term
    demos = load_demos(spec.demos)
    if spec.min_score is not None:
        demos = demos.select_episodes(demos.episode_score > spec.min_score)
    check_demos(cfg, demos, walker_ranges(venv))
    obs = demos.policy_observations(demo_time_limit(cfg, venv), cfg.env.hide)
    term = BCTerm(obs, demos.policy_actions(cfg.env.control), spec.learning_rate, spec.until,
                  spec.batch_size, spec.steps, cfg.experiment.seed)
    return term, (f"bc term: {demos.n} demo transitions from {spec.demos}, learning rate "
                  f"{spec.learning_rate:g} falling to 0 at step {spec.until}")
