"""soccerlab: train, evaluate, record and export RL agents from one YAML experiment file."""

import os as _os

__version__ = "0.1.0"

# MuJoCo picks its GL backend when it is first imported. Without a display, offscreen rendering
# works through OSMesa; set that default here, before anything imports mujoco. A user's own
# MUJOCO_GL always wins.
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY"):
    _os.environ["MUJOCO_GL"] = "osmesa"
    _os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
