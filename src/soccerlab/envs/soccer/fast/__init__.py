"""Vectorised simulation core for the showdown tasks, bit-identical to sai-mujoco 0.1.30.

``FastSoccerSim`` steps N instances of one task in one process (MuJoCo physics in native
threads, observations/info/reward as numpy arrays); ``FastSoccerVecEnv`` is its SB3 adapter.
See ``docs/fast_backend.md``.
"""

from soccerlab.envs.soccer.fast.sim import FastSoccerSim, StepArrays
from soccerlab.envs.soccer.fast.tasks import FAST_TASKS, FastTask, get_fast_task

__all__ = ["FAST_TASKS", "FastSoccerSim", "FastSoccerVecEnv", "FastTask", "StepArrays",
           "get_fast_task"]


def __getattr__(name: str):
    """``FastSoccerVecEnv`` imports stable-baselines3 (and torch): only on first use."""
    if name == "FastSoccerVecEnv":
        from soccerlab.envs.soccer.fast.vec_env import FastSoccerVecEnv

        return FastSoccerVecEnv
    raise AttributeError(name)
