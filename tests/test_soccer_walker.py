"""Joystick walker: config from YAML, PD math, 50 Hz cadence, phase, masked reset, batching,
loading (local, hf:// offline)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from _soccer_fixtures import (
    TinyWalker,
    reference_policy,
    tiny_weight,
    walker_yaml_dict,
    write_walker,
)
from soccerlab.batching import POLICY_BATCH_MULTIPLE
from soccerlab.envs.soccer.behaviour.walker import (
    JoystickWalker,
    WalkerConfig,
    batch_invariant,
    command_to_action,
    pd_torques,
    scale_command,
)
from soccerlab.envs.soccer.behaviour.walker_load import WalkerSpec, load_walker, resolve_reference
from soccerlab.errors import UserError

LIMITS = np.array([45, 45, 30, 65, 24, 15] * 2, dtype=float)
DEFAULT_Q = np.array([-0.2, 0, 0, 0.4, -0.25, 0] * 2)


@pytest.fixture(scope="module")
def walker_files(tmp_path_factory):
    return write_walker(tmp_path_factory.mktemp("walker"))


@pytest.fixture()
def config():
    return WalkerConfig.from_dict(walker_yaml_dict())


class Recorder:
    """Wraps a policy and keeps every batch of inputs it was called with."""

    def __init__(self, policy):
        self.policy, self.calls = policy, []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.numpy().copy())
        return self.policy(x)


def states(n: int, seed: int):
    rng = np.random.default_rng(seed)
    q = DEFAULT_Q + rng.normal(0, 0.1, (n, 12))
    dq = rng.normal(0, 1.0, (n, 12))
    quat = rng.normal(size=(n, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    return q, dq, quat, rng.normal(0, 0.5, (n, 3))


def test_config_reads_per_joint_values_from_yaml(config):
    np.testing.assert_allclose(config.default_q, DEFAULT_Q)
    np.testing.assert_allclose(config.kp, [200, 200, 200, 200, 50, 50] * 2)
    np.testing.assert_allclose(config.kd, [5, 5, 5, 5, 1, 1] * 2)
    np.testing.assert_allclose(config.command_ranges, [[-1, 1], [-0.5, 0.5], [-1, 1]])
    assert (config.decimation, config.gait_frequency, config.dt, config.norm_dof_vel) == (
        10,
        1.5,
        0.002,
        0.1,
    )
    broken = walker_yaml_dict()
    del broken["control"]["decimation"]
    with pytest.raises(UserError, match="missing key 'control.decimation'"):
        WalkerConfig.from_dict(broken)


def test_pd_math_and_clipping(config):
    targets = DEFAULT_Q + 0.02
    q, dq = DEFAULT_Q.copy(), np.full(12, 0.3)
    expected = config.kp * 0.02 - config.kd * 0.3  # hip/knee 4 - 1.5, ankle 1 - 0.3
    np.testing.assert_allclose(expected, [2.5, 2.5, 2.5, 2.5, 0.7, 0.7] * 2)
    np.testing.assert_allclose(
        pd_torques(targets[None], q[None], dq[None], config)[0], expected, atol=1e-9
    )
    big = pd_torques((DEFAULT_Q + 1.0)[None], q[None], np.zeros((1, 12)), config)[0]
    np.testing.assert_allclose(big, LIMITS)  # 200 or 50 N·m/rad * 1 rad exceeds every bound


def test_policy_runs_every_10_steps_and_sees_the_documented_inputs(config):
    policy = Recorder(TinyWalker(tiny_weight(), 1.5))
    walker = JoystickWalker(policy, config, num_envs=1)
    q, dq, quat, gyro = states(1, seed=0)
    command = np.array([[0.5, -0.2, 0.3]])
    torques = [walker.step(q, dq, quat, gyro, command) for _ in range(25)]
    assert len(policy.calls) == 3  # steps 0, 10, 20
    first, second = policy.calls[0][0], policy.calls[1][0]
    x, y, z, w = quat[0]
    gravity = -np.array([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])
    np.testing.assert_allclose(first[0:3], gravity, atol=1e-5)
    np.testing.assert_allclose(first[3:6], gyro[0], atol=1e-6)
    np.testing.assert_allclose(first[6:9], command[0], atol=1e-6)
    np.testing.assert_allclose(first[9:11], [1.0, 0.0], atol=1e-6)  # phase 0
    np.testing.assert_allclose(first[11:23], q[0] - DEFAULT_Q, atol=1e-6)
    np.testing.assert_allclose(first[23:35], 0.1 * dq[0], atol=1e-6)
    np.testing.assert_array_equal(first[35:47], 0.0)
    phase = 10 * 0.002 * 1.5
    np.testing.assert_allclose(
        second[9:11], [np.cos(2 * np.pi * phase), np.sin(2 * np.pi * phase)], atol=1e-6
    )
    actions = np.clip(reference_policy(first[None]), -1, 1)[0]
    assert np.abs(reference_policy(first[None])).max() > 1  # the clip matters in this test
    np.testing.assert_allclose(second[35:47], actions, atol=1e-5)
    expected = np.clip(
        config.kp * (DEFAULT_Q + actions - q[0]) - config.kd * dq[0], -LIMITS, LIMITS
    )
    for k in range(10):  # targets held for the 10 steps after the first policy step
        np.testing.assert_allclose(torques[k][0], expected, rtol=1e-5, atol=1e-4)


def test_phase_advances_only_while_commanded(config):
    walker = JoystickWalker(Recorder(lambda x: torch.zeros(x.shape[0], 12)), config, num_envs=2)
    q, dq, quat, gyro = states(2, seed=1)
    command = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.4]])
    for _ in range(250):
        walker.step(q, dq, quat, gyro, command)
    assert walker.phase[0] == 0.0
    assert walker.phase[1] == pytest.approx((250 * 0.003) % 1.0)
    np.testing.assert_array_equal(walker.policy.calls[-1][0, 9:11], 0.0)  # no clock at zero command
    for _ in range(150):
        walker.step(q, dq, quat, gyro, command)
    assert walker.phase[1] == pytest.approx((400 * 0.003) % 1.0)  # wrapped past 1


def test_masked_reset_and_batch_equals_single_envs(config):
    policy = Recorder(TinyWalker(tiny_weight(), 1.5))
    batched = JoystickWalker(policy, config, num_envs=3)
    singles = [JoystickWalker(TinyWalker(tiny_weight(), 1.5), config, 1) for _ in range(3)]
    commands = np.array([[0.5, 0.0, 0.0], [0.0, 0.3, -0.5], [0.0, 0.0, 0.0]])
    for t in range(37):
        q, dq, quat, gyro = states(3, seed=100 + t)
        if t == 13:
            batched.reset(np.array([False, True, False]))
            singles[1].reset()
            assert batched.counter.tolist() == [13, 0, 13] and batched.phase[1] == 0.0
            np.testing.assert_array_equal(batched.actions[1], 0.0)
            assert np.abs(batched.actions[0]).sum() > 0
        out = batched.step(q, dq, quat, gyro, commands)
        for i, single in enumerate(singles):
            ref = single.step(q[i], dq[i], quat[i], gyro[i], commands[i])
            np.testing.assert_array_equal(out[i], ref[0])  # bit for bit: padded batches
    # one forward pass per policy tick, covering only the envs due at that step (plus zero
    # rows up to a multiple of POLICY_BATCH_MULTIPLE)
    assert [int(np.any(c != 0, axis=1).sum()) for c in policy.calls] == [3, 3, 1, 2, 1, 2, 1]
    assert all(len(c) == POLICY_BATCH_MULTIPLE for c in policy.calls)


def test_batch_invariance_check_and_per_row_mode(config):
    assert batch_invariant(TinyWalker(tiny_weight(), 1.5), 37)

    def batch_dependent(x: torch.Tensor) -> torch.Tensor:
        return x[:, :12] + float(x.abs().sum())  # each row sees the whole batch

    assert not batch_invariant(batch_dependent, 5)
    per_row = JoystickWalker(Recorder(batch_dependent), config, num_envs=3, per_row=True)
    singles = [JoystickWalker(batch_dependent, config, 1) for _ in range(3)]
    q, dq, quat, gyro = states(3, seed=5)
    commands = np.array([[0.5, 0.0, 0.0], [0.0, 0.3, -0.5], [0.0, 0.0, 0.0]])
    out = per_row.step(q, dq, quat, gyro, commands)
    for i, single in enumerate(singles):
        np.testing.assert_array_equal(out[i], single.step(q[i], dq[i], quat[i], gyro[i],
                                                          commands[i])[0])
    assert len(per_row.policy.calls) == 3


def test_command_scaling():
    ranges = np.array([[-0.5, 1.0], [-0.3, 0.3], [-1.0, 2.0]])
    np.testing.assert_allclose(scale_command(np.zeros(3), ranges), 0.0)
    np.testing.assert_allclose(
        scale_command(np.array([1.0, -1.0, -0.5]), ranges), [1.0, -0.3, -0.5]
    )
    np.testing.assert_allclose(scale_command(np.array([3.0, 0.0, 0.0]), ranges), [1.0, 0, 0])
    a = np.array([[0.2, -0.7, 0.9], [-0.4, 0.5, -1.0]])
    np.testing.assert_allclose(command_to_action(scale_command(a, ranges), ranges), a)


def test_load_walker_from_local_files(walker_files, tmp_path):
    pt, _ = walker_files
    walker = load_walker(str(pt), num_envs=2)
    assert walker.num_envs == 2 and walker.config.decimation == 10
    out = walker.policy(torch.ones(1, 47)).numpy()
    np.testing.assert_allclose(out, reference_policy(np.ones((1, 47))), rtol=1e-5)
    custom = load_walker(WalkerSpec(str(pt), command_ranges={"vx": (-0.5, 0.8), "vy": (-0.2, 0.2),
                                                             "yaw": (-1, 1)}))
    np.testing.assert_allclose(custom.config.command_ranges[0], [-0.5, 0.8])
    with pytest.raises(UserError, match="walker file not found"):
        load_walker(str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a TorchScript file"):
        load_walker(str(tmp_path / "junk.pt"))
    wrong = torch.jit.script(torch.nn.Linear(47, 5))
    wrong.save(str(tmp_path / "wrong.pt"))
    with pytest.raises(UserError, match=r"expected \(1, 12\)"):
        load_walker(WalkerSpec(str(tmp_path / "wrong.pt"), config=str(walker_files[1])))
    with pytest.raises(UserError, match="command_ranges"):
        load_walker(WalkerSpec(str(pt), command_ranges={"vx": (0.5, 1.0)}))


def test_partial_command_ranges_keep_the_walker_yaml_for_other_axes(walker_files, tmp_path):
    """env.walker.command_ranges with only vx: vy and yaw keep the YAML's ranges, not +-1."""
    from soccerlab.config import config_from_dict
    from soccerlab.envs.factory import soccer_spec

    pt, _ = walker_files
    yaml_ranges = load_walker(str(pt)).config.command_ranges
    assert not np.array_equal(yaml_ranges[1:], [[-1.0, 1.0], [-1.0, 1.0]])  # else no test
    cfg = config_from_dict({"env": {"tasks": {"kick_to_target": 1}, "control": "walker", "walker": {
        "path": str(pt), "command_ranges": {"vx": [-0.3, 0.9]}}}})
    ranges = load_walker(soccer_spec(cfg.env).walker).config.command_ranges
    np.testing.assert_array_equal(ranges[0], [-0.3, 0.9])
    np.testing.assert_array_equal(ranges[1:], yaml_ranges[1:])


def test_walker_hash_is_checked_and_hub_walkers_must_be_pinned(walker_files):
    import hashlib

    pt, _ = walker_files
    digest = hashlib.sha256(pt.read_bytes()).hexdigest()
    assert load_walker(WalkerSpec(str(pt), sha256=digest.upper())).num_envs == 1
    with pytest.raises(UserError, match="refusing a different file"):
        load_walker(WalkerSpec(str(pt), sha256="0" * 64))
    with pytest.raises(UserError, match="pin it with env.walker.revision"):
        load_walker("hf://someone/walkers/t1/walker.pt")


def test_hf_reference_offline_gives_clear_error_fast(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(UserError, match="unreachable.*local path"):
        resolve_reference("hf://someone/walkers/t1/walker.pt", cache_dir=tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(UserError, match="unreachable.*local path"):
        load_walker(WalkerSpec("hf://someone/walkers/t1/walker.pt", revision="a" * 40),
                    cache_dir=tmp_path)
    assert time.monotonic() - start < 10
    with pytest.raises(UserError, match="expected hf://owner/repo/path"):
        resolve_reference("hf://only-owner/file.pt")
