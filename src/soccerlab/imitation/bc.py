"""Behaviour cloning: the actor an RL config will use, trained to imitate demonstrations.

``soccerlab bc CONFIG`` builds exactly what ``soccerlab train CONFIG`` would build (envs,
VecNormalize, the algorithm's policy network) and, instead of RL, fits the policy's
deterministic action to the demonstrations' actions (mean squared error, Adam), with a
validation split by episode, early stopping on the validation loss (the best epoch's weights
are kept) and the experiment seed for everything random. The observation normaliser, when the
config has one, starts from the demonstrations' statistics.

With ``bc.dagger`` (walker control) DAgger follows: the clone plays episodes on the fast
backend, a scripted expert labels every state it visits (``record.LabelledPolicy``), the rows
join the dataset and the clone is fitted again from its weights; after the last round it plays
once more, and the weights whose episodes scored best (mean over the tasks) are kept; the
aggregated dataset is saved as ``dagger.npz`` in the run (``algo.bc_term`` can use it). A clone
that is slightly off drifts into states the expert never visited, where plain cloning has
nothing to teach it. Every round's weights are kept too, in ``dagger/round-R/`` (``model.zip``,
the normaliser files and ``scores.json``, what they scored in that round): the round best on
one task is often not the best on average, and ``eval``, ``play``, ``search`` and ``export``
take such a model like any other (``RUN/dagger/round-R/model.zip``).

Its output is an ordinary run directory (``<name>-bc-<time>``): ``model.zip`` and the
normaliser files, ``config.yaml``, ``meta.json`` (``kind: bc`` and the BC summary), TensorBoard
curves ``bc/train_loss`` and ``bc/val_loss`` (x axis: epoch), and the final evaluation with
the competition score. ``eval``, ``play`` and ``export`` take it like any run, and
``algo.init.path: <BC run>`` warm-starts RL from it, normaliser statistics included.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from soccerlab import runs
from soccerlab.config import Config, config_from_dict, load_config
from soccerlab.errors import UserError
from soccerlab.imitation.demos import Demos, load_demos
from soccerlab.training.trainer import Trainer, TrainResult


def start(config_path: str, overrides: list[str], command: str) -> TrainResult:
    """``soccerlab bc CONFIG [overrides]``."""
    cfg = load_config(config_path, overrides)
    if cfg.bc is None:
        raise UserError(f"{config_path} has no bc: section (bc.demos: a demos file is needed)")
    data = cfg.to_dict()
    data["experiment"]["name"] = f"{cfg.experiment.name}-bc"
    return BCTrainer(config_from_dict(data), command).run()


def check_demos(cfg: Config, demos: Demos, command_ranges: np.ndarray | None = None) -> None:
    """UserError where the demonstrations cannot teach this config's policy (``command_ranges``:
    the config's walker command ranges, to compare with the demos')."""
    if not cfg.env.is_soccer:
        raise UserError("behaviour cloning needs a soccer config (env.tasks): demos hold the "
                        "unified soccer observation")
    if demos.control != cfg.env.control:
        raise UserError(f"demos were recorded under {demos.control} control, the config uses "
                        f"env.control: {cfg.env.control}")
    if demos.frame != cfg.env.observation:
        raise UserError(f"demos hold {demos.frame}-frame observations, the config uses "
                        f"env.observation: {cfg.env.observation}")
    if demos.n == 0:
        raise UserError("the demos hold no transitions (after min_score)")
    if (command_ranges is not None and demos.command_ranges is not None
            and not np.allclose(command_ranges, demos.command_ranges)):
        raise UserError(f"demos' commands were scaled by walker command ranges "
                        f"{demos.command_ranges.tolist()}, the config's are "
                        f"{np.asarray(command_ranges).tolist()}: set env.walker.command_ranges "
                        "to the demos' (a command of 1 must mean the same speed)")


def walker_ranges(venv) -> np.ndarray | None:
    """The command ranges of a soccer VecEnv's walker (None under torque control)."""
    return venv.get_attr("command_ranges", [0])[0]


#: The dataset a DAgger run ends with (demos + every labelled round), in its run directory.
DAGGER_FILE = "dagger.npz"
#: Beside each DAgger round's model (``dagger/round-R/``): what that round's episodes scored.
ROUND_SCORES = "scores.json"


def check_dagger(cfg: Config) -> None:
    """UserError where ``bc.dagger`` cannot run for this config."""
    from soccerlab.imitation.experts import EXPERTS, expert_settings

    dagger = cfg.bc.dagger
    if cfg.env.control != "walker":
        raise UserError("bc.dagger needs env.control: walker (the scripted experts give walker "
                        "commands)")
    if dagger.expert not in EXPERTS:
        raise UserError(f"bc.dagger.expert: unknown expert '{dagger.expert}' "
                        f"(experts: {', '.join(EXPERTS)})")
    try:
        expert_settings(dagger.expert, dagger.settings)
    except UserError as err:
        raise UserError(f"bc.dagger.settings: {err}") from None


def demo_time_limit(cfg: Config, venv) -> int | None:
    """The time limit that turns demos' ``steps`` into the time feature, when the config's
    policy sees one (``env.time_feature``); None otherwise."""
    if not (cfg.env.is_soccer and cfg.env.time_feature):
        return None
    return int(venv.get_attr("time_limit", [0])[0])


def policy_action(model: BaseAlgorithm, obs: torch.Tensor) -> torch.Tensor:
    """The policy's deterministic action for a batch of (normalised) observations, with
    gradients: the Gaussian mean for PPO/A2C, the squashed mean for SAC/TQC/CrossQ, the actor's
    output for TD3/DDPG."""
    return model.policy._predict(obs, deterministic=True)  # noqa: SLF001 - SB3's own forward


@dataclass
class Split:
    train: np.ndarray  # row indices
    val: np.ndarray


def held_out_episodes(n_episodes: int, fraction: float, seed: int) -> np.ndarray:
    """Which of ``n_episodes`` episodes to hold out (E,) bool: ``fraction`` of them, at least
    one and at least one left to train on."""
    episodes = np.random.default_rng(seed).permutation(n_episodes)
    n_val = min(max(1, round(fraction * n_episodes)), n_episodes - 1)
    if n_val < 1:
        raise UserError("behaviour cloning needs at least 2 demo episodes (one to validate on)")
    held = np.zeros(n_episodes, dtype=bool)
    held[episodes[:n_val]] = True
    return held


def split_rows(demos: Demos, held: np.ndarray) -> Split:
    """Rows of the held-out episodes ``held`` (E,) and of the others."""
    val = held[demos.episode]
    return Split(np.flatnonzero(~val), np.flatnonzero(val))


class BCTrainer(Trainer):
    """A ``Trainer`` whose learning phase is behaviour cloning (see the module docstring)."""

    def _build(self) -> None:
        super()._build()
        bc = self.cfg.bc
        demos = load_demos(bc.demos)
        if bc.min_score is not None:
            demos = demos.select_episodes(demos.episode_score > bc.min_score)
        check_demos(self.cfg, demos, walker_ranges(self.venv))
        if bc.dagger is not None:
            check_dagger(self.cfg)
        self.demos = demos
        self.held_out = held_out_episodes(demos.n_episodes, bc.validation_fraction,
                                          self.cfg.experiment.seed)
        self.observations = demos.policy_observations(demo_time_limit(self.cfg, self.venv),
                                                     self.cfg.env.hide)
        self.targets = demos.policy_actions(self.cfg.env.control)

    def _learn(self) -> TrainResult:
        bc = self.cfg.bc
        start = time.perf_counter()
        self._fit_normalizer()
        self.epoch = 0
        fit = self._fit("demos")
        rounds = []
        if bc.dagger is not None:
            best = None  # (mean score, round, weights): rollouts judge the weights they play
            for r in range(bc.dagger.rounds + 1):
                played = self._dagger_round(r, label=r < bc.dagger.rounds)
                folder = self._save_round(r, played)
                rounds.append({"round": r, **played,
                               "model": str((folder / runs.MODEL).relative_to(self.run_dir.path))})
                if best is None or played["mean_score"] > best[0]:
                    best = (played["mean_score"], r, copy.deepcopy(self.model.policy.state_dict()))
                if r < bc.dagger.rounds:
                    fit = self._fit(f"DAgger round {r + 1}")
            self.model.policy.load_state_dict(best[2])
            print(f"DAgger: keeping the weights after round {best[1]} (they scored "
                  f"{best[0]:+.3f} on average over the tasks)")
            fit["kept_round"] = best[1]
            self.demos.save(self.run_dir.path / DAGGER_FILE)
            print(f"DAgger: demos and labelled rows in {self.run_dir.path / DAGGER_FILE}; each "
                  f"round's weights in {self.run_dir.dagger_dir}/round-R/")
        seconds = time.perf_counter() - start
        summary = {"demos": str(bc.demos), "transitions": int(self.demos.n),
                   "episodes": int(self.demos.n_episodes), **fit,
                   "seconds": round(seconds, 2)}
        if rounds:
            summary["dagger"] = rounds
        self.run_dir.update_meta(kind="bc", bc=summary)
        print(f"best validation loss {fit['best_val_loss']:.4f} at epoch {fit['best_epoch']} "
              f"({seconds:.1f} s)")
        return self._finish()

    def _fit(self, what: str) -> dict[str, float | int]:
        """Fit the policy to the dataset's targets from its current weights, early-stopped on
        held-out episodes; keeps the best epoch's weights. Epochs count on across calls
        (TensorBoard). ``what`` names the data in the printed line."""
        bc = self.cfg.bc
        split = split_rows(self.demos, self.held_out)
        x = torch.as_tensor(self._normalized(self.observations), device=self.model.device)
        y = torch.as_tensor(self.targets, device=self.model.device)
        policy = self.model.policy
        optimizer = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad],
                                     lr=bc.learning_rate, weight_decay=bc.weight_decay)
        rng = torch.Generator().manual_seed(self.cfg.experiment.seed + self.epoch)
        first = self.epoch
        best = (self._loss(x, y, split.val), first, copy.deepcopy(policy.state_dict()))
        if first == 0:
            self._log(0, self._loss(x, y, split.train), best[0])
        stale = 0
        print(f"behaviour cloning on {len(split.train)} transitions "
              f"({len(split.val)} held out) from {what}: validation loss {best[0]:.4f} at "
              f"the start")
        for _ in range(bc.epochs):
            self.epoch += 1
            policy.set_training_mode(True)
            order = split.train[torch.randperm(len(split.train), generator=rng).numpy()]
            losses = []
            for i in range(0, len(order), bc.batch_size):
                rows = torch.as_tensor(order[i:i + bc.batch_size], device=x.device)
                loss = torch.nn.functional.mse_loss(policy_action(self.model, x[rows]), y[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            val = self._loss(x, y, split.val)
            self._log(self.epoch, float(np.mean(losses)), val)
            if val < best[0]:
                best, stale = (val, self.epoch, copy.deepcopy(policy.state_dict())), 0
            else:
                stale += 1
            if stale >= bc.patience:
                break
        policy.load_state_dict(best[2])
        print(f"  best validation loss {best[0]:.4f} at epoch {best[1]}")
        return {"train_rows": len(split.train), "val_rows": len(split.val),
                "epochs_run": self.epoch - first, "best_epoch": best[1],
                "best_val_loss": best[0]}

    def _dagger_round(self, r: int, label: bool = True) -> dict:
        """The clone plays ``dagger.episodes`` episodes per task (seeds of round ``r``) and the
        expert labels every state; with ``label`` the labelled rows join the dataset (played
        again by the mixture of the clone and the expert where ``dagger.beta`` > 0). Returns
        the clone's own mean score per task and over the tasks in those episodes."""
        dagger = self.cfg.bc.dagger
        played = self._play(r, beta=0.0)
        scores = {t: float(np.mean(played.episode_score[played.episode_task == k]))
                  for k, t in enumerate(played.tasks)}
        log = self.model.logger
        for t, v in scores.items():
            log.record(f"dagger/score_{t}", v)
        log.dump(r)
        mean = float(np.mean(list(scores.values())))
        beta = dagger.beta * 0.5 ** r
        if label and beta > 0.0:
            played = self._play(r, beta)
        print(f"DAgger round {r}: the clone scored "
              + ", ".join(f"{t} {v:+.3f}" for t, v in scores.items())
              + f" (mean {mean:+.3f}) over {dagger.episodes} episodes per task"
              + (f"; {played.n} labelled transitions" if label else "")
              + (f" (expert's share of the decisions: {beta:.3f})" if label and beta else ""))
        if label:  # new episodes held out in the same share; the old ones keep their side
            held = (held_out_episodes(played.n_episodes, self.cfg.bc.validation_fraction,
                                      self.cfg.experiment.seed + r + 1)
                    if played.n_episodes > 1 else np.zeros(played.n_episodes, dtype=bool))
            self.held_out = np.concatenate([self.held_out, held])
            self.demos = self.demos.concat(played)
            self.observations = self.demos.policy_observations(
                demo_time_limit(self.cfg, self.venv), self.cfg.env.hide)
            self.targets = self.demos.policy_actions(self.cfg.env.control)
        return {"transitions": int(played.n) if label else 0, "scores": scores,
                "mean_score": mean}

    def _save_round(self, r: int, played: dict) -> Path:
        """Keep the weights round ``r`` played with (and what they scored) in
        ``dagger/round-R/``."""
        folder = self.run_dir.dagger_dir / f"round-{r}"
        folder.parent.mkdir(parents=True, exist_ok=True)
        with runs.atomic_dir(folder) as tmp:
            self._save_policy(tmp)
            runs.write_json_atomic(tmp / ROUND_SCORES, {
                "round": r, "episodes": self.cfg.bc.dagger.episodes,
                "scores": played["scores"], "mean_score": played["mean_score"]})
        return folder

    def _play(self, r: int, beta: float) -> Demos:
        """Round ``r``'s episodes, played by the clone (the expert's action at a decision with
        probability ``beta``), labelled by the expert."""
        from soccerlab.envs.factory import soccer_spec
        from soccerlab.imitation.experts import describe_expert, make_expert
        from soccerlab.imitation.record import LabelledPolicy, ModelPolicy, record_demos

        dagger = self.cfg.bc.dagger
        ranges = walker_ranges(self.venv)
        spec = soccer_spec(self.cfg.env).replace(backend="fast")
        tasks = list(spec.tasks)
        learner = ModelPolicy(self.model, self.vecnorm)

        def make_policy(task: str, n: int) -> LabelledPolicy:
            seed = self.cfg.experiment.seed + 1000 * r + tasks.index(task)
            expert = make_expert(dagger.expert, [task] * n, ranges, settings=dagger.settings)
            return LabelledPolicy(learner, expert, beta, seed)

        self.model.policy.set_training_mode(False)
        return record_demos(spec, tasks, make_policy, dagger.episodes,
                            dagger.seed + r * dagger.episodes,
                            source=f"dagger:{describe_expert(dagger.expert, dagger.settings)}")

    # ---------------------------------------------------------------------------------
    def _fit_normalizer(self) -> None:
        """Start the observation statistics from the demonstrations (what RL will see)."""
        vecnorm = self.vecnorm
        if vecnorm is None or not vecnorm.norm_obs:
            return
        obs = self.observations.astype(np.float64)
        vecnorm.obs_rms.mean = obs.mean(axis=0)
        vecnorm.obs_rms.var = obs.var(axis=0)
        vecnorm.obs_rms.count = float(len(obs))

    def _normalized(self, obs: np.ndarray) -> np.ndarray:
        if self.vecnorm is None:
            return obs.astype(np.float32)
        return np.asarray(self.vecnorm.normalize_obs(obs), dtype=np.float32)

    def _loss(self, x: torch.Tensor, y: torch.Tensor, rows: np.ndarray) -> float:
        self.model.policy.set_training_mode(False)
        with torch.no_grad():
            idx = torch.as_tensor(rows, device=x.device)
            return float(torch.nn.functional.mse_loss(policy_action(self.model, x[idx]), y[idx]))

    def _log(self, epoch: int, train: float, val: float) -> None:
        log = self.model.logger
        log.record("bc/train_loss", train)
        log.record("bc/val_loss", val)
        log.dump(epoch)
