"""Offscreen rendering of a policy into an mp4.

On a machine without a display, MuJoCo renders through OSMesa (``MUJOCO_GL=osmesa``, Debian's
``libosmesa6``); soccerlab sets that default before MuJoCo is imported (``soccerlab/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecNormalize

from soccerlab.errors import UserError
from soccerlab.runs import atomic_path

OFFSCREEN_HINT = (
    "offscreen rendering is not available: install OSMesa (sudo apt-get install libosmesa6) "
    "and run with MUJOCO_GL=osmesa"
)


def make_render_env(factory: Callable[..., gym.Env], width: int, height: int) -> gym.Env:
    """Build an ``rgb_array`` env, passing the frame size where the env accepts it."""
    try:
        return factory(render_mode="rgb_array", width=width, height=height)
    except UserError:
        return factory(render_mode="rgb_array")


def render_frame(env: gym.Env) -> np.ndarray:
    try:
        frame = env.render()
    except Exception as exc:  # noqa: BLE001 - GL failures surface as many exception types
        raise UserError(f"{OFFSCREEN_HINT} ({type(exc).__name__}: {exc})") from None
    if frame is None:
        raise UserError("the env returned no frame; does it support render_mode='rgb_array'?")
    return np.asarray(frame)


def record(
    predict: Callable[[Any], np.ndarray],
    env: gym.Env,
    path: Path,
    frames: int | None = None,
    episodes: int | None = None,
    normalizer: VecNormalize | None = None,
    seed: int | None = None,
    fps: int | None = None,
) -> dict[str, Any]:
    """Play the policy on ``env`` and write the frames to ``path`` (mp4).

    Stops after ``frames`` frames or ``episodes`` episodes, whichever comes first.
    Returns the episodes' returns and lengths and the number of frames written.
    """
    import imageio.v2 as imageio

    if frames is None and episodes is None:
        raise ValueError("give frames or episodes")
    # envs that step at hundreds of Hz (soccer torque control: 500) are filmed every k-th step
    env_fps = int(env.metadata.get("render_fps") or 30)
    every = max(1, round(env_fps / 50)) if env_fps > 60 else 1
    fps = fps or max(1, round(env_fps / every))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    returns: list[float] = []
    lengths: list[int] = []
    written = 0
    obs, _ = env.reset(seed=seed)
    steps = rollout(predict, env, obs, normalizer)
    ret, length = 0.0, 0
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(tmp, fps=fps, format="FFMPEG", codec="libx264",
                                    macro_block_size=1, ffmpeg_log_level="error")
        try:
            writer.append_data(render_frame(env))
            written += 1
            while (frames is None or written < frames) and (episodes is None or len(returns) < episodes):
                reward, done = next(steps)
                ret += reward
                length += 1
                if length % every == 0 or done:
                    writer.append_data(render_frame(env))
                    written += 1
                if done:
                    returns.append(ret)
                    lengths.append(length)
                    ret, length = 0.0, 0
        finally:
            writer.close()
    return {"path": str(path), "frames": written, "returns": returns, "lengths": lengths}


def rollout(predict: Callable[[Any], np.ndarray], env: gym.Env, obs: Any,
            normalizer: VecNormalize | None = None) -> Iterator[tuple[float, bool]]:
    """Step the policy on a single env from ``obs`` (its reset observation), without end.

    Yields ``(reward, episode_over)`` after each step, while the env still shows that step
    (so a caller can render it); the env is reset before the next step once an episode is over.
    """
    while True:
        batch = _batch(obs)
        if normalizer is not None:
            batch = normalizer.normalize_obs(batch)
        obs, reward, terminated, truncated, _ = env.step(predict(batch)[0])
        done = bool(terminated or truncated)
        yield float(reward), done
        if done:
            obs, _ = env.reset()


def _batch(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: np.asarray(v)[None] for k, v in obs.items()}
    return np.asarray(obs)[None]
