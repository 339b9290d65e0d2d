"""Where the ball goes at the striker's first touch on kick_to_target (fast backend).

For each seed, plays the ``striker`` expert (its tuned setting for the walker's command ranges,
with ``--set NAME=VALUE`` overrides) until the ball first moves faster than 0.5 m/s, within
``--decisions`` decisions. Prints one JSON object: per seed, the decision of the touch, the
angle between the ball's velocity and the line from the ball to the target, the robot's
heading against that line (both in degrees, taken 5 decisions before the touch for the line
and heading), and where the ball lay in the robot's frame then; plus summaries.

    PYTHONPATH=src python benchmarks/first_touch.py --seeds 300-339 --command-range vx=-1,1.5
    PYTHONPATH=src python benchmarks/first_touch.py --seeds 300-339 --command-range vx=-1,1.5 \\
        --set foot=0 --set speed=0.8
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from soccerlab.cli import parse_seeds
from soccerlab.envs.soccer import SoccerSpec, WalkerSpec
from soccerlab.envs.soccer.batch import SoccerBatch
from soccerlab.envs.soccer.behaviour.walker_load import parse_command_ranges
from soccerlab.imitation.experts import (
    EXPERT_INFO_KEYS,
    StrikerExpert,
    StrikerParams,
    parse_settings,
    robot_yaw,
    rotate,
    stack_infos,
    wrap,
)

DEFAULT_WALKER = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "walker" / "booster_gym_T1.pt"
)
KEYS = (*EXPERT_INFO_KEYS, "ball_velp_rel_robot", "target_velp_rel_robot")
TOUCH_SPEED = 0.5  # m/s: the ball counts as touched from this speed on
LOOK_BACK = 5  # decisions: line and heading are taken this long before the touch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=parse_seeds, default="300-339", help="e.g. 0-9,20")
    parser.add_argument("--decisions", type=int, default=120, help="look for a touch this long")
    parser.add_argument("--walker", default=str(DEFAULT_WALKER))
    parser.add_argument("--command-range", action="append", default=[], metavar="AXIS=LOW,HIGH")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help=f"StrikerParams override ({', '.join(f.name for f in fields(StrikerParams))})")
    args = parser.parse_args()
    torch.set_num_threads(1)
    overrides = parse_settings([f"kick_to_target.{item}" for item in args.set]).get(
        "kick_to_target", {})
    seeds = args.seeds
    walker = WalkerSpec(str(Path(args.walker).resolve()),
                        command_ranges=parse_command_ranges(args.command_range) or None)
    spec = SoccerSpec("kick_to_target", control="walker", walker=walker, backend="fast")
    batch = SoccerBatch(spec, len(seeds), info_keys=list(KEYS))
    try:
        expert = StrikerExpert(["kick_to_target"] * len(seeds), batch.walker.config.command_ranges,
                               **overrides)
        _, infos = batch.reset(seeds)
        history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        touches: dict[int, dict] = {}
        for t in range(args.decisions):
            a = stack_infos(infos, KEYS)
            ball = a["ball_xpos_rel_robot"][:, :2]
            line = a["target_xpos_rel_robot"][:, :2] - ball
            # the target does not move: its velocity relative to the robot is minus the robot's
            ball_vel = a["ball_velp_rel_robot"][:, :2] - a["target_velp_rel_robot"][:, :2]
            yaw = robot_yaw(a["robot_quat"])
            history.append((np.arctan2(line[:, 1], line[:, 0]), yaw, ball))
            for i in np.flatnonzero(np.linalg.norm(ball_vel, axis=1) > TOUCH_SPEED):
                if seeds[i] in touches:
                    continue
                line_dir, heading, ball_then = (h[i] for h in history[max(0, t - LOOK_BACK)])
                in_robot = rotate(ball_then[None], np.array([-heading]))[0]
                touches[seeds[i]] = {
                    "decision": t,
                    "ball_off_line_deg": round(float(np.degrees(wrap(
                        np.arctan2(ball_vel[i, 1], ball_vel[i, 0]) - line_dir))), 1),
                    "heading_off_line_deg": round(float(np.degrees(wrap(heading - line_dir))), 1),
                    "ball_in_robot_frame": [round(float(v), 3) for v in in_robot]}
            infos = list(batch.step(expert.act(infos)).infos)
    finally:
        batch.close()
    lined_up = [v for v in touches.values() if abs(v["heading_off_line_deg"]) < 10]
    off = np.abs([v["ball_off_line_deg"] for v in lined_up]) if lined_up else np.zeros(0)
    print(json.dumps({
        "setting": overrides, "seeds": len(seeds), "touched": len(touches),
        "lined_up": len(lined_up),
        "lined_up_ball_off_line_deg": {"median": float(np.median(off)) if len(off) else None,
                                        "max": float(off.max()) if len(off) else None,
                                        "within_10": int(np.sum(off <= 10))},
        "touches": touches}))


if __name__ == "__main__":
    main()
