"""A camera that follows the robot, for videos a person can actually read.

The envs' own default camera is a far top-down view where the robot is a few pixels. This one
tracks the robot's subtree centre of mass from a few metres away, looking along the robot's
heading at the episode start (turned by ``azimuth_offset``), so the robot, the ball and the goal
or target in front of it stay in view.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from soccerlab.envs.soccer.behaviour.submission import Preprocessor


@dataclass(frozen=True)
class CameraSpec:
    """Tracking camera settings: frame size in pixels, distance in metres, angles in degrees."""

    width: int = 640
    height: int = 480
    distance: float = 4.0
    elevation: float = -25.0
    azimuth_offset: float = 35.0


def heading_degrees(quat_xyzw: np.ndarray) -> float:
    """Yaw of a base orientation (x, y, z, w) in degrees (0 = facing +x)."""
    return float(np.degrees(Preprocessor.heading(np.asarray(quat_xyzw).reshape(1, 4))[0]))


class TrackingCamera:
    """Offscreen renderer with a tracking camera on body ``body_id`` of ``model``."""

    def __init__(self, model: mujoco.MjModel, body_id: int, spec: CameraSpec | None = None):
        self.spec = spec or CameraSpec()
        self.model = model
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, self.spec.width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, self.spec.height)
        self.renderer: mujoco.Renderer | None = None
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.camera.trackbodyid = body_id
        self.camera.distance = self.spec.distance
        self.camera.elevation = self.spec.elevation
        self.camera.azimuth = self.spec.azimuth_offset

    def aim(self, quat_xyzw: np.ndarray) -> None:
        """Point the camera along the robot heading given by ``quat_xyzw`` (call at reset)."""
        self.camera.azimuth = heading_degrees(quat_xyzw) + self.spec.azimuth_offset

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """An RGB frame (height, width, 3) uint8 of the current state."""
        if self.renderer is None:
            self.renderer = mujoco.Renderer(self.model, self.spec.height, self.spec.width)
        self.renderer.update_scene(data, camera=self.camera)
        return self.renderer.render()

    def close(self) -> None:
        """Free the GL context."""
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
