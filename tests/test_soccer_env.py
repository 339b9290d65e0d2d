"""The soccer behaviour (``SoccerBatch`` through its single-env adapter ``SoccerGymEnv``) on the
sai backend, against the real sai-mujoco envs (short episodes only), and task slots."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from _soccer_fixtures import write_walker
from soccerlab.envs.soccer import SoccerSpec, WalkerSpec
from soccerlab.envs.soccer.behaviour.observation import unified_observation
from soccerlab.envs.soccer.behaviour.rewards import ShapingConfig, potential
from soccerlab.envs.soccer.behaviour.scripted import chase_command
from soccerlab.envs.soccer.behaviour.walker import scale_command
from soccerlab.envs.soccer.behaviour.walker_load import load_walker
from soccerlab.envs.soccer.spec import plan_slots
from soccerlab.envs.soccer.vec_env import SoccerGymEnv, SoccerVecEnv
from soccerlab.errors import UserError


def SoccerEnv(task, walker=None, render_mode=None, **spec):  # noqa: N802 - reads like a class
    """One env of ``task`` on the sai backend."""
    return SoccerGymEnv(SoccerSpec(task, walker=WalkerSpec(walker) if walker else None, **spec),
                        render_mode=render_mode)


def sai(env):
    """The sai-mujoco env under a SoccerGymEnv."""
    return env.batch.groups[0].sim.envs[0]


def mj(env):
    """Its MuJoCo (model, data)."""
    return env.batch.mujoco(0)


LIMITS = np.array([45, 45, 30, 65, 24, 15] * 2, dtype=np.float32)
ZERO = np.zeros(12, dtype=np.float32)


def run(env, action, max_steps=10_000):
    """Step until the episode ends; returns (rewards, last info)."""
    rewards = []
    for _ in range(max_steps):
        _, r, terminated, truncated, info = env.step(action)
        rewards.append(r)
        if terminated or truncated:
            return rewards, info
    raise AssertionError("episode did not end")


@pytest.fixture(scope="module")
def zero_gain_walker(tmp_path_factory):
    """A walker whose PD gains are 0: its torques are 0, so it must replay a zero-torque fall."""
    return write_walker(
        tmp_path_factory.mktemp("zw"), name="limp", stiffness=0.0, ankle_stiffness=0.0, damping=0.0
    )


def test_torque_env_spaces_scaling_and_episode_record():
    env = SoccerEnv("kick_to_target")
    assert env.observation_space.shape == (89,) and env.action_space.shape == (12,)
    assert env.action_space.low.min() == -1 and env.action_space.high.max() == 1
    assert np.array_equal(sai(env).action_space.high, LIMITS)
    obs, info = env.reset(seed=3)
    assert obs.shape == (89,) and info["task"] == "kick_to_target"
    np.testing.assert_array_equal(obs[86:], [0, 0, 1])
    action = np.linspace(-1, 1, 12).astype(np.float32)
    _, _, _, _, info = env.step(action)
    model, data = mj(env)
    assert model.nu == 12
    np.testing.assert_allclose(data.ctrl, action * LIMITS, rtol=1e-6)  # [-1, 1] -> N·m
    assert info["task"] == "kick_to_target" and "soccer" not in info
    rewards, info = run(env, ZERO)
    assert set(info["soccer"]) == {"task", "score", "components", "success", "fallen", "length"}
    assert info["soccer"]["fallen"] is True  # from the env's own height check: no fall term here
    assert info["soccer"]["length"] == len(rewards) + 1  # env steps, torque control
    env.close()


@pytest.mark.filterwarnings("ignore:.*infinity")  # unbounded observations are deliberate
def test_penalty_kick_gets_goalie_onehot_and_gymnasium_checker_passes():
    env = SoccerEnv("penalty_kick")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs[86:], [1, 0, 0])  # not inferred from its 39 raw values
    from gymnasium.utils.env_checker import check_env

    check_env(env, skip_render_check=True)
    env.close()


def test_observation_gravity_matches_the_imu_frame_after_a_fall():
    env = SoccerEnv("goalie_penalty_kick")
    env.reset(seed=0)
    model, data = mj(env)
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, sai(env).unwrapped._root_site)
    last = None
    for _ in range(300):  # the last step before the fall ends the episode (and resets it)
        obs, _, terminated, _, info = env.step(ZERO)
        if terminated:
            break
        gravity_body = data.site_xmat[site].reshape(3, 3).T @ np.array([0.0, 0.0, -1.0])
        last = obs, info, gravity_body
    obs, info, gravity_body = last
    assert abs(gravity_body[2]) < 0.9  # falling: gravity is no longer along the body's z
    np.testing.assert_allclose(obs[24:27], gravity_body, atol=1e-3)
    np.testing.assert_allclose(obs[27:30], info["robot_gyro"], atol=1e-6)
    env.close()


def test_shaped_reward_on_the_real_env_telescopes():
    cfg = ShapingConfig(gamma=0.99)
    env = SoccerEnv("obstacle_penalty_kick", reward="shaped", shaping=cfg)
    _, info0 = env.reset(seed=1)
    phi0 = potential(info0, np.array([True]), cfg)[0]
    rewards, info = run(env, ZERO)
    ret = sum(cfg.gamma**k * r for k, r in enumerate(rewards))
    expected = cfg.gamma ** (len(rewards) - 1) * cfg.score_weight * info["soccer"]["score"] - phi0
    assert ret == pytest.approx(expected, rel=1e-6)
    env.close()


def test_walker_control_holds_command_10_steps_and_stops_early(zero_gain_walker):
    pt, _ = zero_gain_walker
    walker_env = SoccerEnv("goalie_penalty_kick", control="walker", walker=str(pt))
    torque_env = SoccerEnv("goalie_penalty_kick")
    assert walker_env.action_space.shape == (3,)
    walker_env.reset(seed=0)
    torque_env.reset(seed=0)
    _, r, _, _, info = walker_env.step(np.array([0.5, 0.0, 0.2], dtype=np.float32))
    assert walker_env.batch.lengths[0] == 10
    inner = [torque_env.step(ZERO)[1] for _ in range(10)]  # zero gains = zero torques
    assert r == pytest.approx(sum(inner), rel=1e-5)
    rewards, info = run(walker_env, np.zeros(3, dtype=np.float32))
    reference, ref_info = run(torque_env, ZERO)
    length = info["soccer"]["length"]
    assert length == ref_info["soccer"]["length"] and length % 10 != 0  # stopped mid agent step
    assert len(rewards) + 1 == -(-length // 10)
    assert info["soccer"]["score"] == pytest.approx(-2.4885, abs=1e-3)
    walker_env.close()
    torque_env.close()


def test_walker_control_feeds_the_walker_from_every_inner_step(tmp_path):
    """Walker control equals a hand-written loop: torque env + the same walker fed each step."""
    pt, _ = write_walker(tmp_path)  # random tiny policy, real PD gains
    walker_env = SoccerEnv("kick_to_target", control="walker", walker=str(pt))
    torque_env = SoccerEnv("kick_to_target")
    manual = load_walker(str(pt))
    walker_env.reset(seed=4)
    raw, info = sai(torque_env).reset(seed=4)
    actions = np.array([[0.6, 0.0, 0.0], [0.2, -0.4, 0.5], [0.0, 0.0, 0.0]], dtype=np.float32)
    for action in actions:
        obs, reward, *_ = walker_env.step(action)
        command = scale_command(action, manual.config.command_ranges)
        total = 0.0
        for _ in range(10):
            torques = manual.step(
                raw[:12], raw[12:24], info["robot_quat"], info["robot_gyro"], command
            )
            raw, r, *_, info = sai(torque_env).step(torques[0])
            total += r
        assert reward == pytest.approx(total, rel=1e-6)
        np.testing.assert_allclose(obs, unified_observation(raw, info, task_index=2), rtol=1e-6)
    assert np.abs(raw[:12] - manual.config.default_q).max() > 0.01  # the walker did move joints
    walker_env.close()
    torque_env.close()


def test_walker_control_needs_a_walker_and_known_modes():
    with pytest.raises(UserError, match="walker control needs a walker"):
        SoccerSpec("goalie_penalty_kick", control="walker")
    with pytest.raises(UserError, match="unknown control 'joint'"):
        SoccerSpec("goalie_penalty_kick", control="joint")
    with pytest.raises(UserError, match="unknown reward mode"):
        SoccerSpec("goalie_penalty_kick", reward="sparse")
    with pytest.raises(UserError, match="one task"):
        SoccerGymEnv(SoccerSpec({"goalie_penalty_kick": 1, "kick_to_target": 1}))


def test_tracking_camera_follows_the_robot():
    env = SoccerEnv("goalie_penalty_kick", render_mode="rgb_array", backend="fast")
    assert env.spec_.backend == "sai"  # rendering runs on sai-mujoco itself
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    assert frame.std() > 20  # a scene, not a blank image
    model, data = mj(env)
    camera = env.batch.groups[0].sim._cameras[0]
    root = model.jnt_bodyid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "robot_0:root")]
    np.testing.assert_allclose(camera.camera.lookat[:2], data.subtree_com[root][:2], atol=0.05)
    assert camera.camera.distance < 6  # close up, unlike the default top-down view
    env.close()


def test_single_env_plays_the_vec_env_episodes():
    """A seedless reset after an episode's end continues like env 0 of a SoccerVecEnv."""
    spec = SoccerSpec("kick_to_target", max_episode_steps=30)
    env, venv = SoccerGymEnv(spec), SoccerVecEnv(spec, 1, seed=5)
    try:
        obs, _ = env.reset(seed=5)
        assert np.array_equal(obs, venv.reset()[0])
        for t in range(70):
            action = np.full(12, np.sin(t), dtype=np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            vobs, vreward, vdone, vinfo = venv.step(action[None])
            assert reward == pytest.approx(float(vreward[0]))
            if terminated or truncated:
                assert vdone[0] and np.array_equal(obs, vinfo[0]["terminal_observation"])
                obs, _ = env.reset()
            assert np.array_equal(obs, vobs[0])
    finally:
        env.close()
        venv.close()


def test_plan_slots_proportions_and_errors():
    weights = {"goalie_penalty_kick": 0.5, "obstacle_penalty_kick": 0.25, "kick_to_target": 0.25}
    plan = plan_slots(weights, 8)
    assert [plan.count(t) for t in weights] == [4, 2, 2]
    assert plan_slots(weights, 5) == ["goalie_penalty_kick"] * 3 + [
        "obstacle_penalty_kick",
        "kick_to_target",
    ]
    assert plan_slots({"kick_to_target": 1, "goalie_penalty_kick": 1, "penalty_kick": 0}, 2) == [
        "goalie_penalty_kick",
        "kick_to_target",
    ]
    with pytest.raises(UserError, match="at least 3 envs"):
        plan_slots(weights, 2)
    with pytest.raises(UserError, match="did you mean"):
        plan_slots({"goalie_penalty_kik": 1.0}, 2)
    with pytest.raises(UserError, match="not all be zero"):
        plan_slots({"kick_to_target": 0.0}, 2)


def test_vec_env_gives_each_env_its_task_and_shared_spaces():
    spec = SoccerSpec({"goalie_penalty_kick": 1.0, "kick_to_target": 1.0, "penalty_kick": 0.0})
    assert list(spec.tasks) == ["goalie_penalty_kick", "kick_to_target"]
    venv = SoccerVecEnv(spec, 4, seed=10)
    try:
        venv.reset()
        assert [info["task"] for info in venv.reset_infos] == ["goalie_penalty_kick"] * 2 + [
            "kick_to_target"] * 2
        assert venv.observation_space == gym.spaces.Box(-np.inf, np.inf, (89,), np.float32)
    finally:
        venv.close()


def test_chase_turns_toward_the_ball_in_the_robot_frame():
    yaw90 = np.array([0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4)])  # robot faces world +y
    ahead = {"robot_quat": yaw90, "ball_xpos_rel_robot": np.array([0.0, 2.0, -0.7])}
    right = {"robot_quat": yaw90, "ball_xpos_rel_robot": np.array([2.0, 0.0, -0.7])}
    np.testing.assert_allclose(chase_command(ahead), [0.5, 0.0, 0.0], atol=1e-6)
    vx, _, yaw = chase_command(right)
    assert vx == 0.0 and yaw == pytest.approx(-1.0)  # ball on the right: turn clockwise
    batch = {k: np.stack([ahead[k], right[k]]) for k in ahead}
    np.testing.assert_allclose(chase_command(batch), [chase_command(ahead), chase_command(right)])
