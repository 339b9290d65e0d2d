"""Scripted experts (geometry) and the ``soccerlab demos`` commands (record, info, import-mocap)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from _soccer_fixtures import write_walker
from soccerlab.envs.soccer.behaviour.scripted import chase_action
from soccerlab.errors import UserError
from soccerlab.imitation.demos import load_demos
from soccerlab.imitation.experts import (
    EXPERTS,
    FAST_TASK_PARAMS,
    TASK_PARAMS,
    StrikerParams,
    make_expert,
    parse_settings,
    rotate,
    striker_command,
)

RANGES = np.array([[-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0]])


def yaw_quat(angle: float) -> np.ndarray:
    """x, y, z, w."""
    return np.array([0.0, 0.0, np.sin(angle / 2), np.cos(angle / 2)])


def scene(robot_yaw: float, ball: tuple[float, float], aim: tuple[float, float]) -> dict:
    """Batched info arrays (N = 1): robot at the origin, ``ball`` and the goal ``aim`` in the
    world frame (the goal centre is ``aim``; the other goal far away)."""
    b = np.array([ball[0], ball[1], -0.6])
    goal = np.array([aim[0], aim[1], -0.6])
    return {"robot_quat": yaw_quat(robot_yaw)[None], "ball_xpos_rel_robot": b[None],
            "goal_team_0_rel_ball": (goal - b)[None],
            "goal_team_1_rel_ball": np.array([[100.0, 0.0, 0.0]]),
            "target_xpos_rel_robot": (goal + np.array([0, 0, 0.0]))[None]}


def command(robot_yaw, ball, aim_at, **params) -> np.ndarray:
    return striker_command(scene(robot_yaw, ball, aim_at), [StrikerParams(**params)],
                           np.array([0]))[0]


def test_registry_has_chase_and_striker():
    from soccerlab.imitation.commands import EXPERT_NAMES

    assert {"chase", "striker"} <= set(EXPERTS) and tuple(EXPERTS) == EXPERT_NAMES
    with pytest.raises(UserError, match="unknown expert"):
        make_expert("nope", ["goalie_penalty_kick"], RANGES)
    assert set(TASK_PARAMS) >= {"goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"}


def test_chase_expert_is_chase_action():
    info = {k: v[0] for k, v in scene(0.3, (1.0, 0.5), (5.0, 0.0)).items()}
    expert = make_expert("chase", ["goalie_penalty_kick"], RANGES)
    np.testing.assert_allclose(expert.act(info)[0], chase_action(info, RANGES), atol=1e-7)


@pytest.mark.parametrize("yaw", [0.0, np.pi / 2, -2.5])
def test_striker_pushes_along_the_line_when_lined_up(yaw):
    # robot behind the ball, facing the aim: walk straight on, no sideways, no turn
    d = np.array([np.cos(yaw), np.sin(yaw)])
    cmd = command(yaw, tuple(0.4 * d), tuple(6.0 * d), speed=0.8)
    np.testing.assert_allclose(cmd, [0.8, 0.0, 0.0], atol=1e-9)


def test_striker_corrects_sideways_toward_the_line():
    # facing +x, the line ball -> aim runs 0.1 m to the robot's left (+y): push, stepping left
    cmd = command(0.0, (0.6, 0.1), (6.0, 0.1), speed=0.8, lateral_gain=1.5)
    assert cmd[0] == pytest.approx(0.8) and cmd[1] == pytest.approx(0.15)
    # further off the line: line up first (no push), moving toward the line
    cmd = command(0.0, (0.6, 0.4), (6.0, 0.4), speed=0.8)
    assert cmd[1] > 0.3 and cmd[0] < 0.8


def test_striker_lines_the_ball_up_in_front_of_the_chosen_foot():
    # facing +x, the line ball -> aim along y = 0.12: with the ball in front of the left foot
    # (0.12 m to the robot's left) the robot is lined up and pushes straight on ...
    cmd = command(0.0, (0.6, 0.12), (6.0, 0.12), speed=0.8, foot=-0.12)
    np.testing.assert_allclose(cmd, [0.8, 0.0, 0.0], atol=1e-9)
    # ... while between the feet it steps right to bring the ball before its left foot
    cmd = command(0.0, (0.6, 0.0), (6.0, 0.0), speed=0.8, lateral_gain=1.5, foot=-0.12)
    assert cmd[0] == pytest.approx(0.8) and cmd[1] == pytest.approx(-0.18)
    # the right foot mirrors it
    cmd = command(0.0, (0.6, 0.0), (6.0, 0.0), speed=0.8, lateral_gain=1.5, foot=0.12)
    assert cmd[1] == pytest.approx(0.18)


def test_blended_striker_changes_its_command_smoothly_where_the_hard_one_jumps():
    # facing +x, ball 0.6 m ahead, aim along the x axis; the robot drifts off the line
    def sweep(**params):
        return np.array([command(0.0, (0.6, y), (6.0, y), speed=1.3, **params)
                         for y in np.linspace(0.0, 0.4, 401)])

    hard, smooth = sweep(), sweep(blend=0.15, lateral_tol=0.25)
    assert np.abs(np.diff(hard, axis=0)).max() > 0.3  # lined up or not: push or approach
    assert np.abs(np.diff(smooth, axis=0)).max() < 0.02  # 1 mm steps: no jump
    # on the line it pushes forward along it; far off it, it approaches as the hard one does
    assert smooth[0, 0] > 0.8 and abs(smooth[0, 1]) < 1e-9 and abs(smooth[0, 2]) < 1e-9
    np.testing.assert_allclose(command(0.0, (2.0, 3.0), (8.0, 3.0), blend=0.15),
                               command(0.0, (2.0, 3.0), (8.0, 3.0)), atol=1e-3)


def test_striker_goes_round_the_ball_when_in_front_of_it():
    # the aim is behind the robot: pushing now would kick the ball away from it
    cmd = command(0.0, (0.3, 0.0), (-6.0, 0.0))
    assert abs(cmd[1]) > 0.1 or abs(cmd[2]) > 0.1  # sideways or turning, never straight in
    assert not (cmd[0] > 0.3 and abs(cmd[1]) < 0.05)


def walk_kinematically(robot, yaw, ball, aim, params, steps, dt=0.02):
    """A point robot that moves exactly as commanded (world frame, ``dt`` seconds a decision)
    round a ball that stays put; yields the position, heading and command of every decision."""
    robot = np.asarray(robot, dtype=float)
    for t in range(steps):
        info = scene(yaw, tuple(np.asarray(ball) - robot), tuple(np.asarray(aim) - robot))
        cmd = striker_command(info, [params], np.array([t]))[0]
        yield robot.copy(), yaw, cmd
        c, s = np.cos(yaw), np.sin(yaw)
        robot = robot + dt * np.array([c * cmd[0] - s * cmd[1], s * cmd[0] + c * cmd[1]])
        yaw += dt * cmd[2]


@pytest.mark.parametrize("blend, lateral_tol", [(0.0, 0.12), (0.15, 0.25)])
def test_striker_standing_beside_the_ball_gets_behind_it(blend, lateral_tol):
    # kick_to_target's setting: 0.65 m behind the ball, ball before the left foot. The robot
    # starts beside the ball, 0.24 m behind it and 0.53 m to its right, facing the aim. The
    # waypoint beside the ball once lay where it stood, and it stood there for good (5 % of
    # kick_to_target's seeds never touched the ball, docs/results.md).
    params = replace(FAST_TASK_PARAMS["kick_to_target"], blend=blend, lateral_tol=lateral_tol)
    ball, aim = np.array([0.24, 0.53]), np.array([8.0, 0.53])
    walk = list(walk_kinematically((0.0, 0.0), 0.0, ball, aim, params, steps=200))
    behind = [t for t, (p, _, _) in enumerate(walk) if (p - ball)[0] < -0.5 * params.behind]
    assert behind and behind[0] < 100, "stood beside the ball"
    if blend == 0:
        # and pushes from behind the ball with the ball before its left foot (``foot`` m off)
        pushes = [t for t, (p, _, cmd) in enumerate(walk) if cmd[0] > 0.5 * params.speed
                  and (p - ball)[0] < -0.3 and abs((p - ball)[1] - params.foot) < 0.15]
        assert pushes and pushes[0] < 100, "never lined up behind the ball to push"


def first_push(params, ball, aim, steps=400) -> float:
    """The first decision at which the kinematic robot of ``walk_kinematically`` pushes from
    behind the ball, facing along the line (inf: never in ``steps``)."""
    u = (aim - ball) / np.linalg.norm(aim - ball)
    for t, (p, yaw, cmd) in enumerate(walk_kinematically((0.0, 0.0), 0.0, ball, aim, params,
                                                         steps)):
        velocity = rotate(cmd[None, :2], np.array([yaw]))[0]  # world frame
        facing = np.array([np.cos(yaw), np.sin(yaw)]) @ u > np.cos(0.2)
        if (p - ball) @ u < -0.3 and facing and velocity @ u > 0.5 * params.speed:
            return t
    return float("inf")


@pytest.mark.parametrize("blend, lateral_tol", [(0.0, 0.12), (0.15, 0.25)])
def test_striker_facing_the_line_all_the_way_round_pushes_sooner(blend, lateral_tol):
    # the robot faces the ball 1.5 m ahead; the target lies behind the robot and to its left.
    # Heading for the waypoint, it walks round the ball and then turns on the spot; facing
    # along the line all the way (face_within), it turns while it walks round.
    facing = replace(FAST_TASK_PARAMS["kick_to_target"], blend=blend, lateral_tol=lateral_tol)
    assert facing.face_within > 5  # the tuned setting faces along the line all the way
    heading = replace(facing, face_within=0.8, round_width=0.6)  # the defaults
    ball, aim = np.array([1.5, 0.0]), np.array([-6.0, 2.5])
    first = first_push(facing, ball, aim)
    assert first < 175  # 3.5 s
    assert first < 0.7 * first_push(heading, ball, aim)


def test_striker_waits_then_goes():
    params = [StrikerParams(wait=5)]
    info = scene(0.0, (0.4, 0.0), (6.0, 0.0))
    assert np.all(striker_command(info, params, np.array([0])) == 0.0)  # stands still
    assert striker_command(info, params, np.array([5]))[0, 0] > 0.3


def test_striker_stops_at_the_target():
    # kick_to_target: the ball already lies on the target
    cmd = command(0.0, (0.4, 0.0), (0.5, 0.0), aim="target", stop_radius=0.3)
    assert abs(cmd[0]) < 0.3


def test_striker_uses_its_fast_settings_only_where_the_walker_can_go_that_fast():
    from soccerlab.imitation.experts import FAST_VX

    assert 1.0 < FAST_TASK_PARAMS["goalie_penalty_kick"].speed <= FAST_VX
    tasks = ["goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"]
    stock = make_expert("striker", tasks, RANGES)
    assert stock.params == [TASK_PARAMS[t] for t in tasks]
    wide = RANGES.copy()
    wide[0, 1] = FAST_VX
    assert make_expert("striker", tasks, wide).params == [
        FAST_TASK_PARAMS["goalie_penalty_kick"], FAST_TASK_PARAMS["obstacle_penalty_kick"],
        FAST_TASK_PARAMS["kick_to_target"]]
    wide[0, 1] = FAST_VX - 0.01  # not quite fast enough: the stock settings
    assert make_expert("striker", tasks, wide).params == stock.params


# ------------------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def walker(tmp_path_factory):
    pt, _ = write_walker(tmp_path_factory.mktemp("walker"))
    return pt


@pytest.fixture(scope="module")
def recorded(walker, tmp_path_factory):
    """A small recording made once: striker on two tasks, 3 episodes each, 150 env steps."""
    from soccerlab.cli import main

    out = tmp_path_factory.mktemp("demos") / "striker.npz"
    code = main(["demos", "record", "striker", "--tasks", "goalie_penalty_kick,kick_to_target",
                 "--episodes", "3", "--max-steps", "150", "--n-envs", "2", "--walker", str(walker),
                 "--out", str(out)])
    assert code == 0
    return out


def test_record_round_trip(recorded):
    with np.load(recorded, allow_pickle=False) as data:  # no pickled object anywhere
        assert {"observations", "actions", "done", "commands"} <= set(data.files)
    demos = load_demos(recorded)
    assert demos.tasks == ("goalie_penalty_kick", "kick_to_target")
    assert demos.control == "walker" and demos.frame == "world" and demos.n_episodes == 6
    assert demos.observations.shape == (demos.n, 89) and demos.actions.shape == (demos.n, 12)
    assert np.all(np.abs(demos.commands) <= 1.0) and np.all(np.abs(demos.actions) <= 1.0)
    assert demos.done.sum() == 6 and demos.source == "expert:striker"
    # every episode's rows are contiguous, end with done, and match its recorded length
    for e in range(demos.n_episodes):
        rows = np.flatnonzero(demos.episode == e)
        assert np.array_equal(rows, np.arange(rows[0], rows[-1] + 1))
        assert demos.done[rows[-1]] and not demos.done[rows[:-1]].any()
        assert demos.episode_length[e] <= 10 * len(rows)
        # next_observations continue the episode
        np.testing.assert_array_equal(demos.next_observations[rows[:-1]],
                                      demos.observations[rows[1:]])
    assert np.all(np.isfinite(demos.episode_score))
    # walker outputs are the walker's, not zeros
    assert np.abs(demos.actions).max() > 0.01


def test_record_is_deterministic_and_filters_by_score(recorded, walker, tmp_path, cli):
    full = load_demos(recorded)
    best = float(full.episode_score.max())
    out = tmp_path / "best.npz"
    r = cli("demos", "record", "striker", "--tasks", "goalie_penalty_kick", "kick_to_target",
            "--episodes", "3", "--max-steps", "150", "--n-envs", "3", "--walker", walker,
            "--out", out, "--min-score", best)
    assert r.code == 0, r.err
    assert "kept" in r.out and str(out) in r.out and len(r.out.strip().splitlines()) == 1
    kept = load_demos(out)
    assert 1 <= kept.n_episodes < full.n_episodes
    assert np.all(kept.episode_score >= best)
    # the same episodes, whatever --n-envs: the kept ones equal their rows in the full file
    e_full = int(np.flatnonzero(full.episode_score == best)[0])
    np.testing.assert_array_equal(kept.observations[kept.episode == 0],
                                  full.observations[full.episode == e_full])


def test_striker_settings_change_only_the_named_tasks_fields():
    settings = parse_settings(["kick_to_target.foot=0", "kick_to_target.wait=3",
                               "goalie_penalty_kick.aim_y=0.25"])
    assert settings == {"kick_to_target": {"foot": 0.0, "wait": 3},
                        "goalie_penalty_kick": {"aim_y": 0.25}}
    tasks = ["goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"]
    stock = make_expert("striker", tasks, RANGES).params
    changed = make_expert("striker", tasks, RANGES, settings=settings).params
    assert changed[0] == replace(stock[0], aim_y=0.25)
    assert changed[1] == stock[1]
    assert changed[2] == replace(stock[2], foot=0.0, wait=3)
    with pytest.raises(UserError, match="has no settings"):
        make_expert("chase", tasks, RANGES, settings=settings)


@pytest.mark.parametrize("item, message", [
    ("kick_to_target.foot", "expected TASK.NAME=VALUE"),
    ("foot=0", "expected TASK.NAME=VALUE"),
    ("nowhere.foot=0", "unknown soccer task"),
    ("kick_to_target.shoe=0", "no such setting"),
    ("kick_to_target.wait=1.5", "not an integer"),
    ("kick_to_target.speed=fast", "not a number"),
    ("kick_to_target.speed=inf", "not finite"),
    ("kick_to_target.aim=ball", "'goal' or 'target'"),
])
def test_bad_striker_settings_are_user_errors(item, message):
    with pytest.raises(UserError, match=message):
        parse_settings([item])


def test_record_with_changed_striker_settings(walker, tmp_path, cli):
    files = {}
    for name, extra in [("stock", []), ("set", ["--set", "kick_to_target.foot=0.1",
                                                "--set", "kick_to_target.approach_speed=0.2"])]:
        files[name] = tmp_path / f"{name}.npz"
        r = cli("demos", "record", "striker", "--tasks", "kick_to_target", "--episodes", "1",
                "--max-steps", "40", "--walker", walker, "--out", files[name], *extra)
        assert r.code == 0, r.err
    stock, changed = load_demos(files["stock"]), load_demos(files["set"])
    assert stock.source == "expert:striker"
    assert changed.source == "expert:striker[kick_to_target.approach_speed=0.2,kick_to_target.foot=0.1]"
    assert not np.allclose(stock.commands, changed.commands)  # it played differently
    r = cli("demos", "record", "chase", "--tasks", "kick_to_target", "--walker", walker,
            "--set", "kick_to_target.foot=0", "--out", tmp_path / "chase.npz")
    assert r.code == 2 and "SOURCE must be striker" in r.err
    assert len(r.err.strip().splitlines()) == 1 and not (tmp_path / "chase.npz").exists()


def test_record_with_a_wider_command_range(walker, tmp_path, cli):
    out = tmp_path / "fast.npz"
    r = cli("demos", "record", "striker", "--tasks", "goalie_penalty_kick", "--episodes", "1",
            "--max-steps", "100", "--walker", walker, "--command-range", "vx=-1,1.5",
            "--command-range", "yaw=-0.5,0.5", "--out", out)
    assert r.code == 0, r.err
    # vx and yaw as given; vy stays the fixture YAML's
    np.testing.assert_allclose(load_demos(out).command_ranges,
                               [[-1.0, 1.5], [-0.5, 0.5], [-0.5, 0.5]])


def test_info(recorded, cli):
    r = cli("demos", "info", recorded)
    assert r.code == 0, r.err
    assert "goalie_penalty_kick: 3 episodes" in r.out and "kick_to_target: 3 episodes" in r.out
    assert "control walker" in r.out and "success" in r.out and "fall" in r.out


def test_refuses_to_overwrite(recorded, walker, cli):
    before = recorded.read_bytes()
    r = cli("demos", "record", "chase", "--tasks", "goalie_penalty_kick", "--episodes", "1",
            "--walker", walker, "--out", recorded)
    assert r.code == 2 and "--force" in r.err and len(r.err.strip().splitlines()) == 1
    assert recorded.read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["record", "nobody", "--out", "x.npz"], "unknown SOURCE"),
    (["record", "striker", "--out", "x.npz"], "--walker"),
    (["record", "striker", "--out", "x.txt", "--walker", "w.pt"], ".npz"),
    (["record", "striker", "--tasks", "goalie", "--out", "x.npz", "--walker", "WALKER"],
     "goalie"),
    (["record", "striker", "--episodes", "0", "--out", "x.npz"], "positive"),
    (["record", "striker", "--out", "x.npz", "--walker", "WALKER", "--command-range", "vx=1"],
     "AXIS=LOW,HIGH"),
    (["record", "striker", "--out", "x.npz", "--walker", "WALKER", "--command-range",
      "speed=-1,1"], "unknown walker command axes"),
    (["record", "striker", "--out", "x.npz", "--walker", "WALKER", "--command-range",
      "vx=0.5,1"], "low <= 0"),
    (["info", "missing.npz"], "not found"),
    (["import-mocap", "missing.npz", "--task", "kick_to_target", "--out", "x.npz"],
     "not found"),
])
def test_bad_input_exits_2_with_one_line(args, message, walker, tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [str(walker) if a == "WALKER" else a for a in args]
    r = cli("demos", *args)
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1 and message in r.err
    assert not (tmp_path / "x.npz").exists()


def test_info_refuses_a_file_that_is_not_demos(tmp_path, cli):
    bad = tmp_path / "bad.npz"
    np.savez(bad, qpos=np.zeros(3))
    r = cli("demos", "info", bad)
    assert r.code == 2 and "not a soccerlab demos file" in r.err


# ----------------------------------------------------------------------------- mocap
def synthetic_clip(path, vx=0.5, vy=-0.2, yaw_rate=0.3, seconds=1.0, spike_at=None):
    """A clip whose root moves at (vx, vy) in its heading frame while turning at yaw_rate,
    starting at yaw -90 degrees like the published clips; joints swing slowly."""
    hz = 500.0
    t = np.arange(int(seconds * hz)) / hz
    yaw = -np.pi / 2 + yaw_rate * t
    # integrate exactly: world velocity = R(yaw) (vx, vy)
    if yaw_rate:
        x = (vx * (np.sin(yaw) - np.sin(yaw[0])) + vy * (np.cos(yaw) - np.cos(yaw[0]))) / yaw_rate
        y = (-vx * (np.cos(yaw) - np.cos(yaw[0])) + vy * (np.sin(yaw) - np.sin(yaw[0]))) / yaw_rate
    else:
        x, y = vx * t * np.cos(yaw) - vy * t * np.sin(yaw), vx * t * np.sin(yaw) + vy * t * np.cos(yaw)
    qpos = np.zeros((len(t), 19))
    qpos[:, 0], qpos[:, 1], qpos[:, 2] = x, y + 0.07, 0.68
    qpos[:, 3], qpos[:, 6] = np.cos(yaw / 2), np.sin(yaw / 2)
    qpos[:, 7:] = np.array([-0.2, 0, 0, 0.4, -0.25, 0] * 2) + 0.1 * np.sin(2 * np.pi * t)[:, None]
    qvel = np.zeros((len(t), 18))
    qvel[:, 0] = vx * np.cos(yaw) - vy * np.sin(yaw)
    qvel[:, 1] = vx * np.sin(yaw) + vy * np.cos(yaw)
    qvel[:, 5] = yaw_rate
    if spike_at is not None:
        qvel[spike_at, 0] = 40.0
    np.savez(path, qpos=qpos, qvel=qvel, frequency=np.array(hz),
             joint_names=np.array(["x"] * 12, dtype=object))  # an object array, never read
    return path


def test_import_mocap_labels_match_the_clip(tmp_path, walker, cli):
    clip = synthetic_clip(tmp_path / "walk.npz", spike_at=255)
    out = tmp_path / "mocap.npz"
    r = cli("demos", "import-mocap", clip, "--task", "kick_to_target", "--out", out,
            "--walker", walker, "--smooth", "0")
    assert r.code == 0, r.err
    demos = load_demos(out)
    # 500 frames -> 50 decision frames -> 49 transitions, one dropped (the spike at frame 255)
    assert demos.n == 48 and "1 dropped" in r.out
    assert demos.control == "walker" and demos.tasks == ("kick_to_target",)
    assert np.isnan(demos.episode_score).all() and demos.done[-1] and demos.done.sum() == 1
    # the fixture walker's ranges: vx, yaw +-1, vy +-0.5
    np.testing.assert_allclose(demos.commands, np.tile([0.5, -0.4, 0.3], (48, 1)), atol=2e-3)
    # observations: joints from the clip, the robot's heading frame turning as the clip does
    assert np.all(np.isfinite(demos.observations))
    t = np.arange(0, 500, 10) / 500.0
    q = np.array([-0.2, 0, 0, 0.4, -0.25, 0] * 2) + 0.1 * np.sin(2 * np.pi * t)[:, None]
    keep = np.delete(np.arange(49), 25)
    np.testing.assert_allclose(demos.observations[:, :12], q[keep], atol=1e-5)
    # walker outputs: the next decision's joint targets, (q - default_q) / action_scale
    np.testing.assert_allclose(demos.actions, q[keep + 1] - q[0], atol=1e-5)

    # gait-averaged labels (the default 0.5 s window): the same commands, more rows dropped
    # around the spike (every window that holds frame 255)
    smooth = tmp_path / "smooth.npz"
    r = cli("demos", "import-mocap", clip, "--task", "kick_to_target", "--out", smooth,
            "--walker", walker)
    assert r.code == 0, r.err
    demos = load_demos(smooth)
    assert 20 < 49 - demos.n < 30
    np.testing.assert_allclose(demos.commands, np.tile([0.5, -0.4, 0.3], (demos.n, 1)), atol=2e-3)


# ------------------------------------------------------------------------ runs as sources
def test_record_a_run_under_its_own_control_frame_and_normaliser(walker, tmp_path, cli):
    from conftest import run_dirs, write_config
    from soccerlab.loading import load_policy

    out = tmp_path / "runs"
    cfg = {
        "experiment": {"name": "s", "seed": 0, "output_dir": str(out)},
        "env": {"tasks": {"goalie_penalty_kick": 1.0, "kick_to_target": 1.0}, "n_envs": 2,
                "max_episode_steps": 100, "normalize": True, "control": "walker",
                "walker": {"path": str(walker)}, "reward": "shaped", "observation": "heading",
                "backend": "fast"},
        "algo": {"name": "ppo", "params": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
                 "policy_kwargs": {"net_arch": [16]}},
        "train": {"total_timesteps": 32, "checkpoint_every": None, "progress_bar": False},
        "eval": {"every": None, "episodes": 1, "seeds": [0]},
    }
    assert cli("train", write_config(tmp_path / "c.yaml", cfg)).code == 0
    [run] = run_dirs(out)
    r = cli("demos", "record", run, "--episodes", "2", "--max-steps", "60",
            "--out", tmp_path / "run.npz")
    assert r.code == 0, r.err
    demos = load_demos(tmp_path / "run.npz")
    assert demos.tasks == ("goalie_penalty_kick", "kick_to_target")
    assert (demos.control, demos.frame, demos.reward_mode) == ("walker", "heading", "shaped")
    assert demos.n_episodes == 4 and demos.source.endswith(".zip")
    # the commands are the model's deterministic actions on the normalised observations
    loaded = load_policy(run)
    expected = loaded.model.predict(loaded.vecnorm.normalize_obs(demos.observations[:5]),
                                    deterministic=True)[0]
    np.testing.assert_allclose(demos.commands[:5], expected, atol=1e-6)
    # a run records only in its own frame
    r = cli("demos", "record", run, "--frame", "world", "--out", tmp_path / "w.npz")
    assert r.code == 2 and "heading frame" in r.err


def test_record_a_torque_run(tmp_path, cli):
    from conftest import run_dirs, write_config

    out = tmp_path / "runs"
    cfg = {
        "experiment": {"name": "t", "seed": 0, "output_dir": str(out)},
        "env": {"tasks": {"kick_to_target": 1.0}, "n_envs": 1, "max_episode_steps": 40,
                "backend": "fast", "reward": "competition"},
        "algo": {"name": "ppo", "params": {"n_steps": 16, "batch_size": 16, "n_epochs": 1},
                 "policy_kwargs": {"net_arch": [8]}},
        "train": {"total_timesteps": 16, "checkpoint_every": None, "progress_bar": False},
        "eval": {"every": None, "episodes": 1, "seeds": [0]},
    }
    assert cli("train", write_config(tmp_path / "c.yaml", cfg)).code == 0
    [run] = run_dirs(out)
    r = cli("demos", "record", run / "model.zip", "--episodes", "1", "--max-steps", "30",
            "--out", tmp_path / "t.npz")
    assert r.code == 0, r.err
    demos = load_demos(tmp_path / "t.npz")
    # torque control: one row per env step, the policy's actions, no commands
    assert demos.control == "torque" and demos.reward_mode == "competition" and demos.n == 30
    assert np.all(demos.commands == 0.0) and np.abs(demos.actions).max() > 0.0
    assert np.all(np.abs(demos.actions) <= 1.0)
