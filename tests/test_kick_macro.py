"""Kick macros: clip extraction and ramps, the macro in the soccer batch, config errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _soccer_fixtures import write_walker
from conftest import one_line_error, write_config
from soccerlab.config import config_from_dict
from soccerlab.envs.soccer import SoccerSpec, WalkerSpec
from soccerlab.envs.soccer.behaviour.kick import (
    KickMacro,
    KickSpec,
    extract_kick,
    kick_targets,
    load_kick,
    mirror_joints,
    read_clip_joints,
    resample,
)
from soccerlab.envs.soccer.behaviour.walker import pd_torques
from soccerlab.errors import UserError

DEFAULT_Q = np.array([-0.2, 0.0, 0.0, 0.4, -0.25, 0.0] * 2)


def clip_joints(frames: int, frequency: float) -> np.ndarray:
    """A smooth made-up kick: joint j at time t is 0.01 j + 0.3 sin(2 t + j)."""
    t = np.arange(frames)[:, None] / frequency
    return 0.01 * np.arange(12) + 0.3 * np.sin(2.0 * t + np.arange(12))


def write_clip(path: Path, frames: int = 300, frequency: float = 500.0) -> Path:
    """A tiny mocap clip (qpos (T, 19), qvel, frequency, and an object array never read)."""
    qpos = np.zeros((frames, 19))
    qpos[:, 2], qpos[:, 3] = 0.65, 1.0
    qpos[:, 7:] = clip_joints(frames, frequency)
    np.savez(path, qpos=qpos, qvel=np.zeros((frames, 18)), frequency=frequency,
             meta=np.array([{"not": "read"}], dtype=object))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("kick")
    pt, cfg = write_walker(d)
    return {"clip": write_clip(d / "tiny_kick.npz"), "walker": pt, "walker_yaml": cfg}


# ------------------------------------------------------------------ clip arithmetic
def test_clip_is_read_without_pickle_and_resampled_linearly(files):
    joints, freq = read_clip_joints(files["clip"])
    assert joints.shape == (300, 12) and freq == 500.0
    np.testing.assert_array_equal(joints, clip_joints(300, 500.0))
    # a 100 Hz clip played at 500 Hz: frame 2.5 is halfway between frames 2 and 3
    slow = clip_joints(50, 100.0)
    out = resample(slow, 100.0, 0.02, 0.03, 0.002)
    assert out.shape == (6, 12)
    np.testing.assert_allclose(out[0], slow[2])
    np.testing.assert_allclose(out[5], slow[3])
    np.testing.assert_allclose(out[2], 0.6 * slow[2] + 0.4 * slow[3])
    # at the clip's own rate the window is the clip's frames, both ends included
    np.testing.assert_allclose(extract_kick(joints, 500.0, (0.1, 0.3), 0.002), joints[50:151])


def test_mirror_swaps_legs_and_flips_roll_and_yaw():
    q = np.arange(12.0)
    m = mirror_joints(q)
    np.testing.assert_array_equal(m, [6, -7, -8, 9, 10, -11, 0, -1, -2, 3, 4, -5])
    np.testing.assert_array_equal(mirror_joints(m), q)


def test_ramp_in_blends_from_the_stance_and_ramp_out_ends_at_the_default_pose():
    clip = clip_joints(25, 500.0)
    q0 = np.full(12, 0.5)
    out = kick_targets(clip, q0, DEFAULT_Q, ramp_in=10, ramp_out=4, decimation=10)
    assert out.shape == (30, 12)  # 25 + 4 = 29 steps, padded to 3 decisions
    np.testing.assert_allclose(out[0], q0)  # starts where the joints are
    np.testing.assert_allclose(out[4], 0.6 * q0 + 0.4 * clip[4])
    np.testing.assert_allclose(out[10:25], clip[10:25])  # then the clip as recorded
    np.testing.assert_allclose(out[25], 0.75 * clip[-1] + 0.25 * DEFAULT_Q)
    np.testing.assert_allclose(out[28:], np.tile(DEFAULT_Q, (2, 1)))
    # no ramps: the clip itself, padded with the default pose
    bare = kick_targets(clip, q0, DEFAULT_Q, 0, 0, 10)
    np.testing.assert_allclose(bare[:25], clip)
    np.testing.assert_allclose(bare[25:], np.tile(DEFAULT_Q, (5, 1)))


def test_load_kick_counts_decisions_and_rejects_bad_input(files, tmp_path):
    kick = load_kick(KickSpec(str(files["clip"]), (0.1, 0.3), ramp_in=0.02, ramp_out=0.04),
                     0.002, 10)
    assert len(kick.joints) == 101 and kick.ramp_in == 10 and kick.ramp_out == 20
    assert kick.steps == 130 and kick.decisions == 13
    with pytest.raises(UserError, match="ends after the clip"):
        load_kick(KickSpec(str(files["clip"]), (0.1, 0.9)), 0.002, 10)
    with pytest.raises(UserError, match="kick clip not found"):
        load_kick(KickSpec(str(tmp_path / "nope.npz"), (0.1, 0.2)), 0.002, 10)
    with pytest.raises(UserError, match="no default window"):
        load_kick(KickSpec(str(files["clip"])), 0.002, 10)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read kick clip"):
        load_kick(KickSpec(str(tmp_path / "junk.npz"), (0.1, 0.2)), 0.002, 10)
    with pytest.raises(UserError, match="start < end"):
        KickSpec("x.npz", (0.3, 0.1))
    with pytest.raises(UserError, match="trigger"):
        KickSpec("x.npz", (0.1, 0.2), trigger=1.0)


def test_macro_state_triggers_idle_envs_only_and_stops_on_reset(files):
    kick = load_kick(KickSpec(str(files["clip"]), (0.1, 0.12), trigger=0.2, ramp_in=0.0,
                              ramp_out=0.0), 0.002, 10)
    assert kick.steps == 20 and kick.decisions == 2  # 11 frames padded to 2 decisions
    macro = KickMacro(kick, DEFAULT_Q, 3)
    q = np.zeros((3, 12))
    actions = np.array([[0, 0, 0, 0.3], [0, 0, 0, 0.2], [0, 0, 0, 0.9]])
    np.testing.assert_array_equal(macro.triggered(actions), [True, False, True])
    macro.start(macro.triggered(actions), q)
    assert not macro.triggered(actions).any()  # kicking envs don't start again
    first, done = macro.targets()
    np.testing.assert_allclose(first[0], kick.joints[0])
    np.testing.assert_allclose(first[1], DEFAULT_Q)  # idle: default pose, unused
    macro.reset(np.array([False, False, True]))  # env 2's episode ended mid-kick
    for _ in range(18):
        assert not macro.targets()[1].any()
    last, done = macro.targets()
    np.testing.assert_array_equal(done, [True, False, False])
    np.testing.assert_allclose(last[0], DEFAULT_Q)  # padding
    assert not macro.active.any()
    both = KickMacro(kick, DEFAULT_Q, 1).joint_mask
    leg = KickMacro(load_kick(KickSpec(str(files["clip"]), (0.1, 0.12), support="walker"),
                              0.002, 10), DEFAULT_Q, 1).joint_mask
    assert both.all() and leg.tolist() == [True] * 6 + [False] * 6  # left: its hip pitch swings forward fastest


# ------------------------------------------------------------------- macro in the batch
class Recording:
    """A physics backend proxy that records each step's joints (before) and torques."""

    def __init__(self, sim) -> None:
        self.sim, self.log = sim, []

    def __getattr__(self, name):
        return getattr(self.sim, name)

    def step(self, torques):
        self.log.append((np.array(self.sim.joint_pos, dtype=np.float64),
                         np.array(self.sim.joint_vel, dtype=np.float64), torques.copy()))
        return self.sim.step(torques)


def kick_batch(files, kick: KickSpec | None):
    from soccerlab.envs.soccer.batch import SoccerBatch

    spec = SoccerSpec("kick_to_target", control="walker", backend="fast",
                      walker=WalkerSpec(str(files["walker"])), kick=kick)
    batch = SoccerBatch(spec, 2, info_keys=[])
    batch.groups[0].sim = rec = Recording(batch.groups[0].sim)
    return batch, rec


def play(files, ignored: np.ndarray):
    """Env 0 kicks at the first agent step; ``ignored`` are its actions during the kick."""
    kick = KickSpec(str(files["clip"]), (0.1, 0.3), ramp_in=0.02, ramp_out=0.04)
    batch, rec = kick_batch(files, kick)
    assert batch.action_space.shape == (4,)
    batch.reset([0, 1])
    k = batch.kick.kick.decisions
    walker_cmd = np.array([0.3, 0.0, 0.1, -1.0], dtype=np.float32)
    q0 = np.array(rec.sim.joint_pos[0], dtype=np.float64)
    kicking = []
    for t in range(k + 2):
        actions = np.stack([ignored[t] if 0 < t < k else walker_cmd, walker_cmd])
        if t == 0:
            actions[0, 3] = 1.0  # trigger
        batch.step(actions)
        kicking.append(batch.kicking.tolist())
        if t == k - 1:  # handed back: the walker starts afresh
            state = (batch.walker.actions[0].copy(), batch.walker.phase[0],
                     batch.walker.counter[0])
    batch.close()
    return rec.log, q0, k, kicking, state


def test_kick_plays_the_clip_for_k_decisions_then_the_walker_takes_over(files):
    rng = np.random.default_rng(0)
    ignored = rng.uniform(-1, 1, (20, 4)).astype(np.float32)
    ignored[:, 3] = 1.0  # asking for another kick mid-kick does nothing
    log, q0, k, kicking, state = play(files, ignored)
    assert k == 13
    # kicking during agent steps 0 .. k - 2 (the flag is read after each step), done after k - 1
    assert [row[0] for row in kicking] == [True] * (k - 1) + [False] * 3
    assert not any(row[1] for row in kicking)
    # every env step of the kick: PD (walker gains and limits) on the clip's targets
    joints, _ = read_clip_joints(files["clip"])
    targets = kick_targets(joints[50:151], q0, DEFAULT_Q, 10, 20, 10)
    from soccerlab.envs.soccer.behaviour.walker import WalkerConfig

    cfg = WalkerConfig.from_yaml(files["walker_yaml"])
    for step in range(10 * k):
        q, dq, torques = log[step]
        expected = pd_torques(targets[step][None], q[:1], dq[:1], cfg)[0]
        np.testing.assert_allclose(torques[0], expected.astype(np.float32), rtol=0, atol=1e-5)
    np.testing.assert_allclose(targets[10:101], joints[60:151])  # the clip's own joint angles
    # handed back with a fresh walker state; its torques are the walker's again
    assert np.all(state[0] == 0.0) and state[1] == 0.0 and state[2] == 0
    q, dq, torques = log[10 * k]
    kick_like = pd_torques(DEFAULT_Q[None], q[:1], dq[:1], cfg)[0]
    assert not np.allclose(torques[0], kick_like, atol=1e-3)
    # the actions during the kick were ignored: other ones give the same trajectory
    log2, *_ = play(files, np.zeros((20, 4), dtype=np.float32))
    for (_, _, a), (_, _, b) in zip(log[: 10 * k], log2[: 10 * k], strict=True):
        np.testing.assert_array_equal(a, b)


def test_without_a_kick_the_action_space_stays_three_dim(files):
    batch, _ = kick_batch(files, None)
    assert batch.action_space.shape == (3,) and not batch.kicking.any()
    batch.close()


# ------------------------------------------------------------------------------- config
def soccer_cfg(tmp_path: Path, files, **env) -> dict:
    return {"experiment": {"name": "k", "output_dir": str(tmp_path / "runs")},
            "env": {"tasks": {"kick_to_target": 1.0}, "backend": "fast", "control": "walker",
                    "walker": {"path": str(files["walker"])}, **env}}


def test_config_kick_section_builds_the_spec(files, tmp_path):
    cfg = config_from_dict(soccer_cfg(tmp_path, files, kick={"clip": str(files["clip"]),
                                                            "window": [0.1, 0.3]}))
    spec = SoccerSpec.from_config(cfg.env)
    assert spec.kick == KickSpec(str(files["clip"]), (0.1, 0.3), 0.5, False, 0.1, 0.2, "clip")
    assert SoccerSpec.from_config(config_from_dict(soccer_cfg(tmp_path, files)).env).kick is None
    with pytest.raises(UserError, match="env.kick needs env.control: walker"):
        config_from_dict(soccer_cfg(tmp_path, files, control="torque",
                                    kick={"clip": "x.npz"}))
    with pytest.raises(UserError, match="window"):
        config_from_dict(soccer_cfg(tmp_path, files, kick={"clip": "x", "window": [0.5, 0.2]}))


@pytest.mark.parametrize("kick, fragment", [
    ({"clip": "missing_kick.npz", "window": [0.1, 0.2]}, "kick clip not found"),
    ({"window": [0.1, 2.0]}, "ends after the clip"),
])
def test_bad_clip_or_window_is_one_line(cli, files, tmp_path, kick, fragment):
    kick = {"clip": str(files["clip"]), **kick}
    path = write_config(tmp_path / "k.yaml", soccer_cfg(tmp_path, files, kick=kick))
    one_line_error(cli("train", path), fragment)
    assert not (tmp_path / "runs").exists()
