"""Scripted experts at the walker-command level, batched over N envs.

An expert maps the envs' info dicts to walker-control actions in [-1, 1] (vx, vy, yaw rate,
normalised by the walker's command ranges). Everything it reads is in sai's ``info``: the
robot's orientation (``robot_quat``) and the world-frame offsets ``ball_xpos_rel_robot``,
``goal_team_*_rel_ball`` and ``target_xpos_rel_robot``. Its only state is a per-env decision
counter (time is not observed; the counter restarts with ``reset``).

``striker`` lines up behind the ball on the line from the ball to an aim point, then pushes
the ball along that line at a set speed, correcting sideways with ``vy`` and turning to face
the line. A robot in front of the ball first walks round its side, to a point beside and
behind it. What it aims at, how fast it pushes and when it starts are per task
(``StrikerParams``; the defaults in ``TASK_PARAMS`` were found by a small search on the fast
backend, see ``docs/results.md``):

- goalie / penalty kick: the goal, at ``aim_y`` metres off its centre, pushing at
  ``speed`` after ``wait`` decisions (the keeper moves on a fixed schedule: start time and
  aim decide whether the ball gets past it, and how fast);
- obstacle: a ground ball crossing the goal line anywhere but on the raised target is -3, so
  the expert stands behind the ball and times the push (``wait``) to end the episode with the
  ball still in the field and rolling fast toward the goal;
- kick_to_target: the target (``stop_radius`` and ``slow_radius`` can stop or slow the push
  near it; the tuned setting uses neither). The ball rolls on this pitch with almost no loss,
  so what decides a kick is the direction the ball leaves in. Lined up with the ball between
  its feet, the robot strikes it with the inside of one foot and sends it off up to 40 degrees
  from the line; ``foot`` lines up with the ball in front of one foot instead.

A walker whose forward range reaches ``FAST_VX`` (1.5 m/s; the YAML stops at 1) gets the
settings in ``FAST_TASK_PARAMS`` instead: goalie pushes at 1.45 m/s, obstacle starts its
push at another decision, and kick_to_target pushes at 1.3 m/s with the ball in front of the
left foot (``task_params`` picks). kick_to_target's fast setting also blends approach and push
smoothly (``blend``), walks up at 1.2 m/s and faces along the line while it walks round the
ball (``face_within``, ``round_width``): time, not aim, decides most of its misses.

``settings`` (``{task: {field: value}}``; ``parse_settings`` reads ``TASK.FIELD=VALUE`` items)
change single fields of a task's tuned setting, e.g. to record with a setting found by
``benchmarks/expert_search.py`` or to keep an earlier one.

``chase`` (turn toward the ball and walk into it) stays in the registry. ``EXPERTS`` lists the
names; ``make_expert(name, tasks, command_ranges)`` builds one for N envs with the given tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from soccerlab.envs.soccer.behaviour.scripted import chase_command
from soccerlab.envs.soccer.behaviour.tasks import get_task
from soccerlab.envs.soccer.behaviour.walker import command_to_action
from soccerlab.errors import UserError

#: The info keys experts read.
EXPERT_INFO_KEYS = ("robot_quat", "ball_xpos_rel_robot", "goal_team_0_rel_ball",
                    "goal_team_1_rel_ball", "target_xpos_rel_robot")


def stack_infos(infos: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                keys: Sequence[str] = EXPERT_INFO_KEYS) -> dict[str, np.ndarray]:
    """Batched arrays (N, ...) of ``keys`` from one info dict (N = 1), a dict of batched
    arrays, or a list of per-env dicts."""
    if isinstance(infos, Mapping):
        out = {k: np.asarray(infos[k], dtype=np.float64) for k in keys}
        return {k: v[None] if v.ndim == 1 else v for k, v in out.items()}
    return {k: np.stack([np.asarray(d[k], dtype=np.float64) for d in infos]) for k in keys}


def robot_yaw(quat: np.ndarray) -> np.ndarray:
    """Heading angle (N,) of quaternions (N, 4) in x, y, z, w order."""
    x, y, z, w = (quat[..., i] for i in range(4))
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def rotate(vec: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate planar vectors (N, 2) by ``angle`` (N,)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * vec[:, 0] - s * vec[:, 1], s * vec[:, 0] + c * vec[:, 1]], axis=1)


def wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


@dataclass(frozen=True)
class StrikerParams:
    """One task's striker settings (lengths in metres, speeds in m/s, times in decisions).

    Attributes:
        aim: ``goal`` (the opponent goal's centre) or ``target`` (``target_xpos``).
        aim_y: World-y offset added to the aim point.
        speed: Push speed along the line.
        approach_speed: Speed while getting behind the ball.
        behind: Distance behind the ball where the push starts.
        wait: Decisions to hold (line up, then stand) before pushing.
        stop_radius: Stop pushing when the ball is this close to the aim (0: never).
        slow_radius: Push slower (down to half ``speed``) when the ball is closer than this to
            the aim (0: never).
        foot: Where the ball sits across the robot when lined up: metres to the robot's right
            (> 0: in front of the right foot, < 0: the left; 0: between the feet).
        blend: 0: switch between approaching and pushing (and between heading for the
            waypoint and along the line) at hard thresholds. > 0: blend them smoothly
            instead, the push weighted by how lined up the robot is: a sigmoid of its distance
            behind the ball (width ``blend`` metres) times a Gaussian of its distance off the
            line (width ``lateral_tol``) times a sigmoid of its heading error (width
            ``BLEND_WIDTH``). A smooth expert is easier to clone: a network fits its commands
            about twice as closely (docs/results.md).
        lateral_tol: Lined up means within this distance of the line (plus a quarter of
            the distance beyond the spot)...
        heading_tol: ... and facing along the line within this angle [rad].
        lateral_gain: Sideways correction per metre off the line, while pushing.
        turn_gain: Yaw rate per radian of heading error.
        face_within: While approaching, the robot heads for its waypoint when farther than
            this from it and faces along the line within it [m]. Large: it faces along the line
            all the way, turning while it walks (sideways or backwards) instead of turning on
            the spot once there.
        round_width: A robot in front of the ball goes round it by a point this far to the
            side of the line [m].
    """

    aim: str = "goal"
    aim_y: float = 0.0
    speed: float = 0.6
    approach_speed: float = 0.6
    behind: float = 0.35
    wait: int = 0
    stop_radius: float = 0.0
    slow_radius: float = 0.0
    foot: float = 0.0
    blend: float = 0.0
    lateral_tol: float = 0.12
    heading_tol: float = 0.5
    lateral_gain: float = 1.5
    turn_gain: float = 2.0
    face_within: float = 0.8
    round_width: float = 0.6


#: Tuned per-task defaults (see the module docstring and docs/results.md).
TASK_PARAMS: dict[str, StrikerParams] = {
    "goalie_penalty_kick": StrikerParams(aim="goal", aim_y=-0.5, speed=0.95, wait=47,
                                         behind=0.5),
    "penalty_kick": StrikerParams(aim="goal", aim_y=-0.5, speed=0.95, wait=47, behind=0.5),
    "obstacle_penalty_kick": StrikerParams(aim="goal", aim_y=0.0, speed=1.0, wait=330),
    "kick_to_target": StrikerParams(aim="target", speed=0.8, behind=0.65),
}


#: The striker's settings for walkers allowed to walk forward at ``FAST_VX`` m/s or more
#: (``walker.command_ranges: {vx: [-1, 1.5]}``; the YAML's range stops at 1 m/s). The T1 walker
#: pushes at 1.45 m/s without falling: goalie's ball then crosses faster, and obstacle's push,
#: no longer clipped at 1 m/s while it corrects sideways, needs another start.
#: kick_to_target pushes faster, striking with one foot (docs/results.md, "A faster walker"
#: and "kick_to_target: strike with one foot").
FAST_VX = 1.5
#: ``blend`` > 0: the width of the heading-error sigmoid [rad] and of the sigmoid that turns
#: the approach heading from the waypoint to the line near the waypoint [m].
BLEND_WIDTH = 0.1
#: How far the waypoint beside the ball lies behind the line where the robot counts as in
#: front of the ball (``0.5 * behind`` behind the ball) [m].
ROUND_MARGIN = 0.2

FAST_TASK_PARAMS: dict[str, StrikerParams] = {
    "goalie_penalty_kick": StrikerParams(aim="goal", aim_y=-0.5, speed=1.45, wait=52,
                                         behind=0.55),
    "obstacle_penalty_kick": StrikerParams(aim="goal", aim_y=0.0, speed=1.0, wait=310),
    # blended, walking up at 1.2 m/s and facing along the line all the way round the ball
    "kick_to_target": StrikerParams(aim="target", speed=1.3, behind=0.65, foot=-0.12,
                                    blend=0.15, lateral_tol=0.25, approach_speed=1.2,
                                    face_within=10.0, round_width=1.0),
}


def task_params(task: str, command_ranges: np.ndarray) -> StrikerParams:
    """The striker's tuned settings for ``task`` with a walker of these command ranges."""
    if task in FAST_TASK_PARAMS and np.asarray(command_ranges)[0, 1] >= FAST_VX:
        return FAST_TASK_PARAMS[task]
    return TASK_PARAMS[task]


def check_settings(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{task: {field: value}}`` with task names made canonical and values cast to the
    ``StrikerParams`` field's type; UserError for an unknown task, field or value."""
    types = {f.name: str(f.type) for f in fields(StrikerParams)}
    casts = {"str": str, "int": int, "float": float}
    out: dict[str, dict[str, Any]] = {}
    for task, changes in settings.items():
        name = get_task(task).name
        for field, value in changes.items():
            if field not in types:
                raise UserError(f"striker setting {task}.{field}: no such setting (settings: "
                                f"{', '.join(types)})")
            try:
                cast = casts[types[field]](value)
            except (TypeError, ValueError):
                kind = {"str": "a string", "int": "an integer", "float": "a number"}[types[field]]
                raise UserError(f"striker setting {task}.{field}: {value!r} is not "
                                f"{kind}") from None
            if field == "aim" and cast not in ("goal", "target"):
                raise UserError(f"striker setting {task}.aim: 'goal' or 'target', not {cast!r}")
            if isinstance(cast, float) and not np.isfinite(cast):
                raise UserError(f"striker setting {task}.{field}: {value!r} is not finite")
            out.setdefault(name, {})[field] = cast
    return out


def parse_settings(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["kick_to_target.foot=0", ...]`` -> ``{"kick_to_target": {"foot": 0.0}}``."""
    raw: dict[str, dict[str, str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        task, dot, field = key.partition(".")
        if not (eq and dot and task and field and value):
            raise UserError(f"striker setting {item!r}: expected TASK.NAME=VALUE, e.g. "
                            "kick_to_target.foot=0")
        raw.setdefault(task, {})[field] = value
    return check_settings(raw)


def describe_expert(name: str, settings: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The expert's name for a demos file's ``source``, with its changed settings as
    ``TASK.NAME=VALUE`` items: ``striker[kick_to_target.foot=0.0,...]``."""
    if not settings:
        return name
    items = ",".join(f"{task}.{k}={v}" for task, changes in sorted(check_settings(settings).items())
                     for k, v in sorted(changes.items()))
    return f"{name}[{items}]"


def striker_command(arrays: Mapping[str, np.ndarray], params: Sequence[StrikerParams],
                    step: np.ndarray) -> np.ndarray:
    """Physical commands (N, 3) of the striker for batched info ``arrays`` (``stack_infos``),
    one ``StrikerParams`` per env and each env's decision count ``step`` (N,)."""
    n = len(step)
    yaw = robot_yaw(arrays["robot_quat"])
    ball = arrays["ball_xpos_rel_robot"][:, :2]  # world-frame offset robot -> ball
    g0, g1 = arrays["goal_team_0_rel_ball"][:, :2], arrays["goal_team_1_rel_ball"][:, :2]
    goal = np.where((np.linalg.norm(g0, axis=1) <= np.linalg.norm(g1, axis=1))[:, None], g0, g1)
    target = arrays["target_xpos_rel_robot"][:, :2] - ball  # ball -> target
    use_target = np.array([p.aim == "target" for p in params])
    aim = np.where(use_target[:, None], target, goal)  # ball -> aim point, world frame
    aim = aim + np.stack([np.zeros(n), np.array([p.aim_y for p in params])], axis=1)
    dist_aim = np.linalg.norm(aim, axis=1)
    u = aim / np.maximum(dist_aim, 1e-6)[:, None]  # push direction
    nrm = np.stack([-u[:, 1], u[:, 0]], axis=1)
    rel = -ball  # robot relative to the ball
    s = np.sum(rel * u, axis=1)  # along the line (negative: behind the ball)
    foot = np.array([p.foot for p in params])
    lat = np.sum(rel * nrm, axis=1) - foot  # off the line (the line shifted by ``foot``)

    behind = np.array([p.behind for p in params])
    speed = np.array([p.speed for p in params])
    approach = np.array([p.approach_speed for p in params])
    wait = np.array([p.wait for p in params])
    stop = np.array([p.stop_radius for p in params])
    slow = np.array([p.slow_radius for p in params])
    speed = np.where(slow > 0, speed * np.clip(dist_aim / np.maximum(slow, 1e-6), 0.5, 1.0),
                     speed)
    kl = np.array([p.lateral_gain for p in params])
    kt = np.array([p.turn_gain for p in params])

    # Where to stand: behind the ball on the line; coming from in front, go round its side.
    spot = ball - behind[:, None] * u + foot[:, None] * nrm
    side = np.where(lat >= 0, 1.0, -1.0)
    front_line = -0.5 * behind  # along the line: closer to the ball than this is in front
    in_front = s > front_line
    # the point beside the ball lies behind the in-front line: reached, the robot turns to the
    # spot (with a point level with that line, a robot standing on it never moved on)
    side_width = np.array([p.round_width for p in params])
    round_side = (ball + (side_width * side)[:, None] * nrm
                  + (front_line - ROUND_MARGIN)[:, None] * u)
    wide = np.abs(lat) > side_width - 0.15  # already this far to the side: straight to the spot
    waypoint = np.where((in_front & ~wide)[:, None], round_side, spot)
    to_wp = waypoint  # waypoint offsets are already robot-relative
    dist_wp = np.linalg.norm(to_wp, axis=1)
    lat_tol = np.array([p.lateral_tol for p in params])
    head_tol = np.array([p.heading_tol for p in params])
    lined_up = (s < -0.1) & (np.abs(lat) < lat_tol + 0.25 * np.clip(-s - behind, 0, 2)) \
        & (np.abs(wrap(np.arctan2(u[:, 1], u[:, 0]) - yaw)) < head_tol)

    go = (step >= wait) & ~((stop > 0) & (dist_aim < stop))
    push = lined_up & go
    # Approach: velocity toward the waypoint (slowing near it), heading toward the waypoint
    # when far, along the line within ``face_within`` of it.
    v_app = to_wp * (np.minimum(approach, 1.5 * dist_wp) / np.maximum(dist_wp, 1e-6))[:, None]
    face = np.array([p.face_within for p in params])
    head_app = np.where(dist_wp > face, np.arctan2(to_wp[:, 1], to_wp[:, 0]),
                        np.arctan2(u[:, 1], u[:, 0]))
    # Push: along the line, pulled back onto it sideways.
    v_push = speed[:, None] * u - (kl * lat)[:, None] * nrm
    head_push = np.arctan2(u[:, 1], u[:, 0])
    v = np.where(push[:, None], v_push, v_app)
    head = np.where(push, head_push, head_app)
    blend = np.array([p.blend for p in params])
    smooth = blend > 0
    if np.any(smooth):
        v[smooth], head[smooth] = _blended(
            u[smooth], yaw[smooth], s[smooth], lat[smooth], behind[smooth], lat_tol[smooth],
            head_tol[smooth], blend[smooth], go[smooth], to_wp[smooth], dist_wp[smooth],
            v_push[smooth], v_app[smooth], face[smooth])
    hold = ~push & lined_up  # waiting behind the ball, or stopped near the aim
    v = np.where(hold[:, None], 0.0, v)
    v_robot = rotate(v, -yaw)
    yaw_rate = np.clip(kt * wrap(head - yaw), -1.0, 1.0)
    cmd = np.stack([v_robot[:, 0], v_robot[:, 1], yaw_rate], axis=1)
    # Stand still (zero command) only when nothing is left to do: a tiny command still walks.
    still = hold & (np.abs(yaw_rate) < 0.05)
    cmd[still] = 0.0
    return cmd


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _blended(u, yaw, s, lat, behind, lat_tol, head_tol, blend, go, to_wp, dist_wp, v_push,
             v_app, face):
    """World velocity and heading of ``striker_command`` with ``blend`` > 0 (see
    ``StrikerParams.blend``): the push and approach velocities weighted by how lined up the
    robot is, and the heading turned smoothly from the waypoint to the line."""
    heading_error = np.abs(wrap(np.arctan2(u[:, 1], u[:, 0]) - yaw))
    width = lat_tol + 0.25 * np.clip(-s - behind, 0, 2)  # as ``lined_up``'s tolerance
    w = (_sigmoid((-s - 0.1) / blend) * np.exp(-((lat / width) ** 2))
         * _sigmoid((head_tol - heading_error) / BLEND_WIDTH) * go)[:, None]
    v = w * v_push + (1.0 - w) * v_app
    far = _sigmoid((dist_wp - face) / BLEND_WIDTH)[:, None]
    approach_dir = far * to_wp / np.maximum(dist_wp, 1e-6)[:, None] + (1.0 - far) * u
    direction = w * u + (1.0 - w) * approach_dir
    return v, np.arctan2(direction[:, 1], direction[:, 0])


class Expert:
    """A scripted command policy for N envs (``act(infos)`` -> (N, 3) actions in [-1, 1])."""

    name = "expert"

    def __init__(self, tasks: Sequence[str], command_ranges: np.ndarray) -> None:
        self.tasks = [get_task(t).name for t in tasks]
        self.n = len(self.tasks)
        self.ranges = np.asarray(command_ranges, dtype=np.float64)
        self.step = np.zeros(self.n, dtype=np.int64)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Restart the state (decision counters) of the envs in ``mask`` (all when None)."""
        mask = np.ones(self.n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.step[mask] = 0

    def command(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def act(self, infos: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Actions (N, 3) float32 for the envs' current infos; advances the counters."""
        arrays = stack_infos(infos)
        if len(arrays["robot_quat"]) != self.n:
            raise ValueError(f"{len(arrays['robot_quat'])} infos for an expert of {self.n} envs")
        action = command_to_action(self.command(arrays), self.ranges).astype(np.float32)
        self.step += 1
        return action


class ChaseExpert(Expert):
    """``behaviour.scripted.chase_command``: turn toward the ball and walk into it."""

    name = "chase"

    def command(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return chase_command(arrays)


class StrikerExpert(Expert):
    """Line up behind the ball toward the task's aim point, then push (``striker_command``).

    ``params`` overrides the tuned settings (``task_params``: ``TASK_PARAMS``, or
    ``FAST_TASK_PARAMS`` where the walker's range allows): one ``StrikerParams`` for every env,
    or a list with one per env (parameter searches run one setting per env). ``settings``
    (``{task: {field: value}}``, see ``check_settings``) instead changes fields of the tuned
    settings of the tasks it names."""

    name = "striker"

    def __init__(self, tasks: Sequence[str], command_ranges: np.ndarray,
                 params: StrikerParams | Sequence[StrikerParams] | None = None,
                 settings: Mapping[str, Mapping[str, Any]] | None = None,
                 **overrides: Any) -> None:
        super().__init__(tasks, command_ranges)
        if params is not None and settings:
            raise ValueError("settings change the tuned settings: pass params or settings")
        if params is None:
            changes = check_settings(settings or {})
            plist = [replace(task_params(t, self.ranges), **changes.get(t, {}))
                     for t in self.tasks]
        elif isinstance(params, StrikerParams):
            plist = [params] * self.n
        else:
            plist = list(params)
        if len(plist) != self.n:
            raise ValueError(f"{len(plist)} parameter sets for {self.n} envs")
        self.params = [replace(p, **overrides) for p in plist]

    def command(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return striker_command(arrays, self.params, self.step)


EXPERTS: dict[str, type[Expert]] = {"chase": ChaseExpert, "striker": StrikerExpert}


def make_expert(name: str, tasks: Sequence[str], command_ranges: np.ndarray,
                **kwargs: Any) -> Expert:
    """The expert ``name`` for envs running ``tasks`` (one task per env)."""
    if name not in EXPERTS:
        raise UserError(f"unknown expert '{name}' (experts: {', '.join(EXPERTS)})")
    settings = kwargs.pop("settings", None)
    if settings:
        kwargs["settings"] = expert_settings(name, settings)
    return EXPERTS[name](tasks, command_ranges, **kwargs)


def expert_settings(name: str, settings: Mapping[str, Mapping[str, Any]]
                    ) -> dict[str, dict[str, Any]]:
    """``check_settings(settings)`` for expert ``name``; UserError if it takes none."""
    if settings and name != "striker":
        raise UserError(f"expert '{name}' has no settings (only striker's can be changed)")
    return check_settings(settings)
