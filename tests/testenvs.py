"""Small envs for tests, importable as ``testenvs:<Id>`` env ids (tests/ is on the path)."""

import json
import os
import signal

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv


class CrashingPendulum(PendulumEnv):
    """Pendulum that raises after ``crash_at`` steps (counted over the env's life)."""

    def __init__(self, crash_at: int = 300, **kwargs):
        super().__init__(**kwargs)
        self.crash_at = crash_at
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps >= self.crash_at:
            raise RuntimeError("simulated simulator crash")
        return super().step(action)


gym.register("CrashingPendulum-v0", entry_point=CrashingPendulum, max_episode_steps=200)


class SignalPendulum(PendulumEnv):
    """Pendulum that sends ``signum`` (a name: SIGINT, SIGTERM, SIGKILL) to its own process when
    its ``at``-th step (counted over the env's life) begins, so a test interrupts or kills a run
    at a known step, without timing.

    Fires once in all: only the env that deletes the file ``arm`` fires. The other slots of the
    vector env, the evaluation envs (same id, same kwargs) and a later resume of the run (whose
    config keeps the kwargs) find it gone. Evaluation envs count their own steps too, so pick
    ``at`` below what they reach before the wanted step.
    """

    def __init__(self, signum: str = "SIGKILL", at: int = 100, arm: str = "", **kwargs):
        super().__init__(**kwargs)
        self.signum = getattr(signal, signum)
        self.at = at
        self.arm = arm
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps == self.at:
            try:
                os.remove(self.arm)
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), self.signum)
        return super().step(action)


gym.register("SignalPendulum-v0", entry_point=SignalPendulum, max_episode_steps=200)


class ProbePendulum(PendulumEnv):
    """Pendulum that writes, when built, what its process looks like to ``report_dir/<id>.json``:
    pid, torch threads and whether SIGINT is ignored (what subprocess workers must set up)."""

    def __init__(self, report_dir: str = ".", **kwargs):
        super().__init__(**kwargs)
        import torch

        report = {"pid": os.getpid(), "torch_threads": torch.get_num_threads(),
                  "sigint_ignored": signal.getsignal(signal.SIGINT) == signal.SIG_IGN}
        path = os.path.join(report_dir, f"{os.getpid()}-{id(self)}.json")
        with open(path, "w") as f:
            json.dump(report, f)


gym.register("ProbePendulum-v0", entry_point=ProbePendulum, max_episode_steps=200)


class NonFinitePendulum(PendulumEnv):
    """Pendulum whose every ``every``-th episode (the 3rd, 6th, ... for 3) returns ``value``
    (``nan``, ``inf``, ``-inf``) in its observation, its reward, or both (``what``) at the
    episode's step ``at`` (1-based; 0: the observation returned by reset)."""

    def __init__(self, every: int = 3, at: int = 50, what: str = "obs", value: str = "nan",
                 **kwargs):
        super().__init__(**kwargs)
        self.every, self.at, self.what, self.value = every, at, what, float(value)
        self.episode = -1
        self.t = 0

    @property
    def bad(self) -> bool:
        return self.episode % self.every == self.every - 1

    def reset(self, **kwargs):
        obs, info = super().reset(**kwargs)
        self.episode += 1
        self.t = 0
        if self.bad and self.at == 0:
            obs = np.full_like(obs, self.value)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.t += 1
        if self.bad and self.t == self.at:
            if self.what in ("obs", "both"):
                obs = np.full_like(obs, self.value)
            if self.what in ("reward", "both"):
                reward = self.value
        return obs, reward, terminated, truncated, info


gym.register("NonFinitePendulum-v0", entry_point=NonFinitePendulum, max_episode_steps=200)
