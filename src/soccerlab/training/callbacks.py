"""Small SB3 callbacks: periodic work, one-shot work, stopping on a signal, progress, and the
competition score of training episodes.

Schedules count env steps (``model.num_timesteps``, summed over envs) and are derived from the
current step, so they continue correctly after a resume without saving anything.
"""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable

from stable_baselines3.common.callbacks import BaseCallback


def next_multiple(step: int, every: int) -> int:
    """The first multiple of ``every`` strictly after ``step``."""
    return (step // every + 1) * every


class Periodic(BaseCallback):
    """Calls ``fn()`` each time the step counter passes a multiple of ``every``."""

    def __init__(self, every: int | None, fn: Callable[[], None]) -> None:
        super().__init__()
        self.every = every
        self.fn = fn
        self._next = math.inf

    def _on_training_start(self) -> None:
        if self.every:
            self._next = next_multiple(self.num_timesteps, self.every)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next = next_multiple(self.num_timesteps, self.every)
            self.fn()
        return True


class AtStep(BaseCallback):
    """Calls ``fn()`` once, when the step counter reaches ``step`` (at once if already past)."""

    def __init__(self, step: int, fn: Callable[[], None]) -> None:
        super().__init__()
        self.step = step
        self.fn = fn
        self.done = False

    def _on_training_start(self) -> None:
        self._on_step()

    def _on_step(self) -> bool:
        if not self.done and self.num_timesteps >= self.step:
            self.done = True
            self.fn()
        return True


class TrainingScores(BaseCallback):
    """Logs the competition score of the training episodes, per task and overall.

    Soccer envs put an episode record in ``info["soccer"]`` at every episode's last step. At
    each rollout's end this records, over the last ``window`` finished episodes of each task
    (stochastic policy, training reward mode whatever it is): ``rollout/comp/<task>``,
    ``rollout/fall_rate/<task>`` and ``rollout/comp/overall`` (the mean over the tasks seen,
    equal weights). Many more episodes than an evaluation, so a smoother learning curve.
    """

    def __init__(self, window: int = 100) -> None:
        super().__init__()
        self.records: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            rec = info.get("soccer")
            if rec is not None:
                self.records[rec["task"]].append(rec)
        return True

    def _on_rollout_end(self) -> None:
        from soccerlab.envs.soccer.behaviour.scoring import aggregate_episodes

        episodes = [rec for recs in self.records.values() for rec in recs]
        if not episodes:
            return
        report = aggregate_episodes(episodes)
        for task, t in sorted(report["tasks"].items()):
            self.logger.record(f"rollout/comp/{task}", t["mean_score"])
            self.logger.record(f"rollout/fall_rate/{task}", t["fall_rate"])
        self.logger.record("rollout/comp/overall", report["overall"]["score"])


class StopRequest:
    """Set by the SIGINT/SIGTERM handler; read by ``StopOnRequest``."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


class StopOnRequest(BaseCallback):
    """Ends ``learn()`` cleanly at the next env step after a stop was requested."""

    def __init__(self, request: StopRequest) -> None:
        super().__init__()
        self.request = request

    def _on_step(self) -> bool:
        return not self.request


class ProgressBar(BaseCallback):
    """A tqdm bar over the run's whole budget: steps, rate, ETA and the latest evaluation."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.bar = None
        self._shown = 0
        self._last = 0.0

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        tty = sys.stderr.isatty()
        self.bar = tqdm(total=self.total, initial=self.num_timesteps, unit="step", unit_scale=True,
                        dynamic_ncols=True, mininterval=0.5 if tty else 30.0, smoothing=0.05,
                        file=sys.stderr)
        self._shown = self.num_timesteps

    def _on_step(self) -> bool:
        # tqdm.update is cheap, but not free: call it at most ~10 times a second
        now = time.monotonic()
        if now - self._last > 0.1:
            self._last = now
            self.bar.update(self.num_timesteps - self._shown)
            self._shown = self.num_timesteps
        return True

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.update(self.num_timesteps - self._shown)
            self.bar.close()
            self.bar = None
