"""The fast backend: N instances of one showdown task in one process, bit-identical to
sai-mujoco 0.1.30 (MuJoCo physics in native threads, observations/info/reward as numpy
arrays). ``FastSoccerSim`` implements ``backends.base.TaskPhysics``; see
``docs/fast_backend.md``.
"""

from soccerlab.envs.soccer.backends.base import StepArrays
from soccerlab.envs.soccer.backends.fast.sim import FastSoccerSim
from soccerlab.envs.soccer.backends.fast.tasks import FAST_TASKS, FastTask, get_fast_task

__all__ = ["FAST_TASKS", "FastSoccerSim", "FastTask", "StepArrays", "get_fast_task"]
