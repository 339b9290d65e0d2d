"""Vectorised simulation core for the showdown tasks, bit-identical to sai-mujoco 0.1.30.

``FastSoccerSim`` steps N instances of one task in one process (MuJoCo physics in native
threads, observations/info/reward as numpy arrays); ``FastSoccerVecEnv`` is its SB3 adapter
with raw sai-mujoco semantics; ``SoccerBatch`` / ``SoccerVecEnv`` (``make_soccer_vec_env``)
run soccerlab's ``SoccerEnv`` semantics (unified observation, torque or walker control,
reward modes, episode records) on it. See ``docs/fast_backend.md``.
"""

from soccerlab.envs.soccer.fast.sim import FastSoccerSim, StepArrays
from soccerlab.envs.soccer.fast.tasks import FAST_TASKS, FastTask, get_fast_task

__all__ = ["FAST_TASKS", "FastSoccerSim", "FastSoccerVecEnv", "FastTask", "SoccerVecEnv",
           "StepArrays", "get_fast_task", "make_soccer_vec_env"]


def __getattr__(name: str):
    """The VecEnvs import stable-baselines3 (and torch): only on first use."""
    if name == "FastSoccerVecEnv":
        from soccerlab.envs.soccer.fast.vec_env import FastSoccerVecEnv

        return FastSoccerVecEnv
    if name in ("SoccerVecEnv", "make_soccer_vec_env"):
        from soccerlab.envs.soccer.fast import soccer_vec_env

        return getattr(soccer_vec_env, name)
    raise AttributeError(name)
