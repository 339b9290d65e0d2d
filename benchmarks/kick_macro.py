"""Kick macros from realistic approach states: how often the robot falls, how fast the ball goes.

For every kick setting (``--kicks``: ``clip[:start-end][:mirror]``, clips from ``--clips-dir``)
and every task in ``--tasks``, ``--episodes`` episodes (seeds ``--seed`` ...) are played on the
chosen backend with walker control and the kick macro (``env.kick``), in two scenarios:

- ``walk``: the tuned scripted striker (``imitation.experts``) walks up behind the ball toward
  the task's aim and pushes it; the kick is triggered (4th action = 1) as soon as the ball's
  centre is within reach ahead of the robot (robot frame, |lateral offset of the ball from the
  kicking foot| < ``--lateral``), at most once per episode;
- ``stand``: the same striker, pushing slowly (0.4 m/s, no waiting), stops (zero command) once the ball is
  within reach and stands for 0.5 s; then the kick is triggered.

The reach differs per episode: episode i of a task uses the i-th of ``--episodes`` distances
spread evenly over ``--reach`` (``lo-hi`` metres), so deterministic tasks (goalie, penalty kick:
the start does not depend on the seed) still give different approach states.

The expert lines the kicking foot (not the robot's centre) up with the ball: it sees the ball
``--foot-offset`` metres to the other side (left-footed clips: the ball appears on the right).

Per kick, over the ``--after`` seconds after the trigger (the kick itself plus the walker
standing at zero command once it has handed back): fallen (the episode ended with the robot
fallen, or its IMU was below sai's threshold), the ball's maximum speed in the first second
(finite differences of its position between decisions), that velocity's direction relative to
the robot's heading at the trigger (degrees, + to the left), and touched (the maximum speed
exceeds the speed at the trigger by 0.3 m/s). Episodes in which no trigger happened are
counted as ``no_trigger``. Prints JSON on stdout, one line per setting on stderr.

    PYTHONPATH=src MUJOCO_GL=osmesa python benchmarks/kick_macro.py --episodes 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from soccerlab.envs.soccer import SoccerSpec, WalkerSpec
from soccerlab.envs.soccer.batch import SoccerBatch
from soccerlab.envs.soccer.behaviour.kick import KICK_WINDOWS, KickSpec
from soccerlab.imitation.experts import EXPERT_INFO_KEYS, make_expert, robot_yaw, rotate

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DEFAULT_WALKER = SHARED / "walker" / "booster_gym_T1.pt"
DEFAULT_CLIPS = SHARED / "mocap" / "booster_lower_t1"
#: The foot each shipped clip kicks with in its default window (+1 left, -1 right).
KICK_FOOT = {"kick_ball1": -1, "kick_ball2": 1, "kick_ball3": 1, "powerful_kick": 1,
             "goal_kick": -1, "pass_ball1": 1}
INFO_KEYS = (*EXPERT_INFO_KEYS, "ball_velp_rel_robot")
DECISION_DT = 0.02


def parse_kick(text: str, clips: Path) -> tuple[KickSpec, int, str]:
    """``clip[:start-end][:mirror][:walker][:in=s][:out=s]`` -> (spec, kicking foot, label)."""
    parts = text.split(":")
    name, window, mirror = parts[0], None, "mirror" in parts[1:]
    support = "walker" if "walker" in parts[1:] else "clip"
    ramps = {}
    for p in parts[1:]:
        if "=" in p:  # in=0.2 / out=0.4: ramp seconds
            key, value = p.split("=")
            ramps[{"in": "ramp_in", "out": "ramp_out"}[key]] = float(value)
        elif "-" in p:
            a, b = p.split("-")
            window = (float(a), float(b))
    spec = KickSpec(str(clips / f"{name}.npz"), window, mirror=mirror, support=support, **ramps)
    foot = KICK_FOOT.get(name, 1) * (-1 if mirror else 1)
    w = window or KICK_WINDOWS.get(name)
    label = f"{name}[{w[0]:g}-{w[1]:g}]" + ("-mirror" if mirror else "") \
        + ("+walker" if support == "walker" else "") \
        + "".join(f" {k}={v:g}" for k, v in ramps.items())
    return spec, foot, label


def run_setting(spec: SoccerSpec, task: str, scenario: str, foot: int, args, seeds: list[int]
                ) -> list[dict]:
    """Play ``len(seeds)`` episodes with one kick each; per-kick measurements."""
    n = len(seeds)
    batch = SoccerBatch(spec.replace(tasks=task), n, info_keys=list(INFO_KEYS))
    ranges = batch.walker.config.command_ranges
    overrides = {"speed": 0.4, "wait": 0} if scenario == "stand" else {}
    lo, hi = (float(x) for x in args.reach.split("-"))
    reach_at = np.linspace(lo, hi, n) if n > 1 else np.array([lo])
    expert = make_expert("striker", [task] * n, ranges, **overrides)
    obs, infos = batch.reset(seeds)
    expert.reset()
    after = int(round(args.after / DECISION_DT))
    trig = np.full(n, -1)  # decision of the trigger
    done = np.zeros(n, dtype=bool)  # measured (or episode over)
    still = np.zeros(n, dtype=int)
    stopped = np.zeros(n, dtype=bool)
    rec: list[dict] = [{"seed": s, "triggered": False} for s in seeds]
    speeds: list[list[float]] = [[] for _ in range(n)]
    vels: list[list[np.ndarray]] = [[] for _ in range(n)]
    prev_ball = None
    min_h = batch.groups[0].sim.min_height
    for t in range(batch.max_episode_steps // batch.walker.config.decimation):
        arrays = {k: np.stack([np.asarray(d[k], dtype=np.float64) for d in infos])
                  for k in INFO_KEYS}
        yaw = robot_yaw(arrays["robot_quat"])
        ball_world = -arrays["goal_team_0_rel_ball"]  # minus a constant (the goal)
        vel = (ball_world - prev_ball) / DECISION_DT if prev_ball is not None else None
        prev_ball = ball_world
        ball_robot = rotate(arrays["ball_xpos_rel_robot"][:, :2], -yaw)  # robot frame
        # the expert lines up the kicking foot: show it the ball shifted to the other side
        seen = dict(arrays)
        shift = rotate(np.tile([0.0, -foot * args.foot_offset], (n, 1)), yaw)
        seen["ball_xpos_rel_robot"] = arrays["ball_xpos_rel_robot"].copy()
        seen["ball_xpos_rel_robot"][:, :2] += shift
        for key in ("goal_team_0_rel_ball", "goal_team_1_rel_ball"):
            seen[key] = arrays[key].copy()
            seen[key][:, :2] -= shift
        action = np.zeros((n, 4), dtype=np.float32)
        action[:, :3] = expert.act([{k: seen[k][i] for k in EXPERT_INFO_KEYS} for i in range(n)])
        action[:, 3] = -1.0
        lateral = ball_robot[:, 1] - foot * args.foot_offset
        reach = (ball_robot[:, 0] > 0.05) & (ball_robot[:, 0] < reach_at) \
            & (np.abs(lateral) < args.lateral)
        if scenario == "stand":
            stopped |= reach
            action[stopped, :3] = 0.0
            still = np.where(stopped, still + 1, 0)
            reach = stopped & (still > 25) & (ball_robot[:, 0] > 0.05) \
                & (ball_robot[:, 0] < hi + 0.1)
        for i in np.flatnonzero((trig < 0) & ~done & reach):
            trig[i] = t
            action[i, 3] = 1.0
            speed0 = 0.0 if vel is None else float(np.linalg.norm(vel[i, :2]))
            rec[i].update(triggered=True, t=round(t * DECISION_DT, 2), yaw=float(yaw[i]),
                          reach=round(float(reach_at[i]), 3),
                          ball_x=round(float(ball_robot[i, 0]), 3),
                          ball_y=round(float(ball_robot[i, 1]), 3), speed0=speed0)
        if vel is not None:
            for i in np.flatnonzero((trig >= 0) & ~done & (trig < t)):
                speeds[i].append(float(np.linalg.norm(vel[i, :2])))
                vels[i].append(vel[i, :2])
        step = batch.step(action)
        heights = batch.groups[0].sim.robot_height
        for i in np.flatnonzero(~done):
            if "soccer" in step.infos[i]:
                r = step.infos[i]["soccer"]
                if trig[i] >= 0:
                    rec[i].update(fallen=bool(r["fallen"]), ended=True,
                                  end_after=round((t + 1 - trig[i]) * DECISION_DT, 2))
                else:
                    rec[i].update(ended_before=True, fallen_before=bool(r["fallen"]))
                done[i] = True
            elif trig[i] >= 0 and (t + 1 - trig[i] >= after or heights[i] <= min_h):
                rec[i].update(fallen=bool(heights[i] <= min_h), ended=False)
                done[i] = True
        infos = step.infos
        if done.all():
            break
    batch.close()
    window = int(round(1.0 / DECISION_DT))
    for i in range(n):
        r = rec[i]
        if not r["triggered"]:
            continue
        s = speeds[i][:window]
        k = int(np.argmax(s)) if s else 0
        r["max_speed"] = round(max(s), 3) if s else 0.0
        v = vels[i][k] if s else np.zeros(2)
        ang = np.arctan2(v[1], v[0]) - r.pop("yaw")
        r["direction_deg"] = round(float(np.degrees((ang + np.pi) % (2 * np.pi) - np.pi)), 1)
        r["touched"] = bool(r["max_speed"] > r.pop("speed0") + 0.3)
        r.setdefault("fallen", False)
    return rec


def summarise(kicks: list[dict]) -> dict:
    done = [k for k in kicks if k["triggered"]]
    if not done:
        return {"kicks": 0, "no_trigger": len(kicks)}
    touched = [k for k in done if k["touched"]]
    speed = np.array([k["max_speed"] for k in touched]) if touched else np.zeros(1)
    return {
        "kicks": len(done), "no_trigger": len(kicks) - len(done),
        "fall_rate": round(float(np.mean([k["fallen"] for k in done])), 3),
        "touch_rate": round(len(touched) / len(done), 3),
        "ball_speed_mean": round(float(speed.mean()), 3),
        "ball_speed_median": round(float(np.median(speed)), 3),
        "ball_speed_max": round(float(speed.max()), 3),
        "direction_abs_mean_deg": round(float(np.mean([abs(k["direction_deg"]) for k in touched]))
                                        if touched else 0.0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kicks", default="kick_ball2,powerful_kick,goal_kick,pass_ball1",
                        help="comma-separated clip[:start-end][:mirror]")
    parser.add_argument("--clips-dir", default=str(DEFAULT_CLIPS))
    parser.add_argument("--walker", default=str(DEFAULT_WALKER), help="walker .pt (YAML next to it)")
    parser.add_argument("--tasks", default="goalie_penalty_kick,obstacle_penalty_kick,"
                                           "kick_to_target",
                        help="comma-separated (penalty_kick's 2 s episodes end before most kicks)")
    parser.add_argument("--scenarios", default="walk,stand")
    parser.add_argument("--episodes", type=int, default=5, help="seeds per task and scenario")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="fast", choices=("fast", "sai"))
    parser.add_argument("--reach", default="0.25-0.4",
                        help="trigger distances ahead lo-hi [m], spread over the episodes")
    parser.add_argument("--lateral", type=float, default=0.12,
                        help="max |ball - kicking foot| sideways at the trigger [m]")
    parser.add_argument("--foot-offset", type=float, default=0.1,
                        help="the kicking foot's lateral offset from the robot's centre [m]")
    parser.add_argument("--after", type=float, default=3.0, help="seconds watched after a trigger")
    parser.add_argument("--details", action="store_true", help="every kick in the JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    walker = WalkerSpec(str(Path(args.walker).resolve()))
    seeds = list(range(args.seed, args.seed + args.episodes))
    start_all = time.perf_counter()
    result: dict[str, object] = {"seeds": seeds, "backend": args.backend, "reach": args.reach,
                                 "settings": {}}
    for text in args.kicks.split(","):
        kick, foot, label = parse_kick(text, Path(args.clips_dir))
        spec = SoccerSpec("goalie_penalty_kick", control="walker", walker=walker,
                          backend=args.backend, kick=kick)
        start = time.perf_counter()
        per: dict[str, object] = {}
        every: list[dict] = []
        for scenario in args.scenarios.split(","):
            kicks = []
            for task in args.tasks.split(","):
                got = run_setting(spec, task, scenario, foot, args, seeds)
                for k in got:
                    k["task"] = task
                kicks += got
            per[scenario] = summarise(kicks)
            every += [{**k, "scenario": scenario} for k in kicks]
        per["all"] = summarise(every)
        if args.details:
            per["details"] = every
        result["settings"][label] = per
        a = per["all"]
        print(f"{label:28s} kicks {a.get('kicks', 0):3d} fall {a.get('fall_rate', 0):.2f} "
              f"touch {a.get('touch_rate', 0):.2f} speed {a.get('ball_speed_mean', 0):.2f} "
              f"m/s (max {a.get('ball_speed_max', 0):.2f}) "
              f"[{time.perf_counter() - start:.0f}s]", file=sys.stderr)
    result["seconds"] = round(time.perf_counter() - start_all, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
