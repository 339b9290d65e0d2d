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
