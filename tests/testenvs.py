"""Small envs for tests, importable as ``testenvs:<Id>`` env ids (tests/ is on the path)."""

import gymnasium as gym
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


class SelfKillingPendulum(PendulumEnv):
    """Pendulum whose process SIGKILLs itself at its ``kill_at``-th step, once per ``claim`` file.

    The first env (in any process) to reach the step creates ``claim`` (O_EXCL) and kills its
    own process: a worker dying mid-trial at a known point, exactly once.
    """

    def __init__(self, kill_at: int = 100, claim: str = "", **kwargs):
        super().__init__(**kwargs)
        self.kill_at, self.claim, self.steps = kill_at, claim, 0

    def step(self, action):
        import os
        import signal

        self.steps += 1
        if self.steps == self.kill_at and self.claim:
            try:
                os.close(os.open(self.claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().step(action)


gym.register("SelfKillingPendulum-v0", entry_point=SelfKillingPendulum, max_episode_steps=200)
