"""``soccerlab demos record | info | import-mocap``: the demonstration commands.

``add_demos_parser(sub)`` registers the group on the main parser's subcommands; every user
error is a ``UserError`` (one line on stderr, exit 2, from ``cli.main``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from soccerlab.errors import UserError

#: The registry's names (``experts.EXPERTS``), here so that building the parser does not
#: import torch; a test keeps the two equal.
EXPERT_NAMES = ("chase", "striker")


def _tasks(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    from soccerlab.envs.soccer.behaviour.tasks import get_task

    names = [t.strip() for v in values for t in v.split(",") if t.strip()]
    if not names:
        raise UserError("--tasks: give at least one task")
    return list(dict.fromkeys(get_task(t).name for t in names))


def _check_out(out: str, force: bool) -> Path:
    path = Path(out)
    if path.suffix != ".npz":
        raise UserError(f"--out must end in .npz, got {out}")
    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to overwrite it")
    return path


def add_demos_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``demos`` and its subcommands on ``sub`` (the main parser's subparsers)."""
    from soccerlab.cli import _positive  # cli imports this module inside build_parser
    demos = sub.add_parser("demos", help="record, inspect and import demonstration datasets",
                           description="Demonstration datasets (.npz, see README "
                                       "'Demonstrations'): record a scripted expert or a trained "
                                       "policy, import mocap clips, print a file's summary.")
    dsub = demos.add_subparsers(dest="demos_command", required=True, parser_class=parser_class)

    p = dsub.add_parser("record", help="play an expert, a run or a model and save every step",
                        description="Play SOURCE (a scripted expert by name: "
                                    f"{', '.join(EXPERT_NAMES)}; a run directory; or a model .zip "
                                    "inside a run) for N episodes per task on the fast backend "
                                    "(deterministic; episode i seeded with SEED + i) and write a "
                                    "demos .npz.")
    p.add_argument("source", metavar="SOURCE", help="expert name, run directory or model .zip")
    p.add_argument("--tasks", nargs="+", metavar="TASK",
                   help="soccer tasks (space- or comma-separated; default: experts all three "
                        "competition tasks, runs their own tasks)")
    p.add_argument("--episodes", type=_positive, default=10, help="episodes per task (default 10)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="the dataset to write")
    p.add_argument("--walker", metavar="PATH",
                   help="walker .pt (YAML next to it); required for experts, replaces a run's")
    p.add_argument("--command-range", action="append", default=[], metavar="AXIS=LOW,HIGH",
                   help="experts: a walker command range other than the YAML's, e.g. "
                        "vx=-1,1.5 (axes vx, vy in m/s, yaw in rad/s; repeatable). It must match the "
                        "config's env.walker.command_ranges that will learn from the demos")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="TASK.NAME=VALUE",
                   dest="settings", help="striker: change one field of a task's tuned setting, "
                   "e.g. kick_to_target.foot=0 (repeatable)")
    p.add_argument("--min-score", type=float, metavar="X",
                   help="keep only episodes whose competition score is at least X")
    p.add_argument("--frame", choices=("world", "heading"),
                   help="observation frame (default: experts world, runs their own; a run "
                        "records only in its own frame)")
    p.add_argument("--reward", choices=("env", "competition", "shaped", "progress"),
                   help="reward mode stored in 'rewards' (default: experts env, runs their own)")
    p.add_argument("--n-envs", type=_positive, default=8,
                   help="episodes played at once (default 8; results do not depend on it)")
    p.add_argument("--max-steps", type=_positive, metavar="N",
                   help="end episodes after N env steps (default: the task's limit; quick looks "
                        "and tests)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(fn=cmd_record)

    p = dsub.add_parser("info", help="print a demos file's size, tasks and score distribution",
                        description="Print FILE's size, control, frame, and per task the "
                                    "episodes, transitions and score distribution.")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(fn=cmd_info)

    p = dsub.add_parser("import-mocap", help="replay mocap clips in a task's scene as demos",
                        description="Replay mocap CLIPs kinematically in TASK's scene, subsample "
                                    "to 50 Hz, label walker commands from the root motion and "
                                    "write a demos .npz (scores NaN: nothing is played).")
    p.add_argument("clips", nargs="+", metavar="CLIP.npz")
    p.add_argument("--out", required=True, metavar="FILE.npz")
    p.add_argument("--task", required=True, help="the scene (soccer task) to replay in")
    p.add_argument("--walker", metavar="PATH",
                   help="walker .pt whose YAML gives command ranges, default pose and action "
                        "scale (default: +-1 m/s, +-1 rad/s and the T1 default pose)")
    p.add_argument("--frame", choices=("world", "heading"), default="world",
                   help="observation frame (default world)")
    p.add_argument("--seed", type=int, default=0, help="seed of the scene's reset (default 0)")
    p.add_argument("--max-speed", type=float, default=5.0,
                   help="root speed [m/s] above which a frame counts as a spike (default 5)")
    p.add_argument("--smooth", type=float, default=0.5, metavar="SECONDS",
                   help="label commands from the root motion over the 0.02 s step widened by "
                        "this window (default 0.5, about a gait cycle; 0: the step alone)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(fn=cmd_import_mocap)


def _walker_spec(path: str, command_ranges: list[str] | None = None):
    from soccerlab.envs.soccer.behaviour.walker_load import WalkerSpec, parse_command_ranges

    if not path.startswith("hf://"):
        if not Path(path).is_file():
            raise UserError(f"walker not found: {path}")
        path = str(Path(path).resolve())
    return WalkerSpec(path, command_ranges=parse_command_ranges(command_ranges or []) or None)


def cmd_record(args: argparse.Namespace) -> int:
    from soccerlab.envs.soccer.behaviour.tasks import COMPETITION_TASKS
    from soccerlab.envs.soccer.behaviour.walker_load import load_walker
    from soccerlab.envs.soccer.spec import SoccerSpec
    from soccerlab.imitation.experts import (
        EXPERTS,
        describe_expert,
        make_expert,
        parse_settings,
    )
    from soccerlab.imitation.record import ExpertPolicy, ModelPolicy, record_demos

    out = _check_out(args.out, args.force)
    tasks = _tasks(args.tasks)
    if args.min_score is not None and not np.isfinite(args.min_score):
        raise UserError(f"--min-score must be a finite number, got {args.min_score}")
    if args.settings and args.source != "striker":
        raise UserError("--set changes the striker's settings: SOURCE must be striker")
    if args.source in EXPERTS:
        if not args.walker:
            raise UserError(f"expert '{args.source}' plays under walker control: pass --walker PATH")
        settings = parse_settings(args.settings)
        walker = _walker_spec(args.walker, args.command_range)
        tasks = tasks or list(COMPETITION_TASKS)
        spec = SoccerSpec(tasks[0], control="walker", walker=walker, backend="fast",
                          observation=args.frame or "world", reward=args.reward or "env")
        ranges = load_walker(walker).config.command_ranges
        name = args.source

        def make_policy(task: str, n: int) -> Any:
            return ExpertPolicy(make_expert(name, [task] * n, ranges, settings=settings))
        source = f"expert:{describe_expert(name, settings)}"
    elif Path(args.source).exists():
        from soccerlab.loading import load_policy

        loaded = load_policy(args.source)
        env = loaded.cfg.env
        if not env.is_soccer:
            raise UserError(f"{args.source} is not a soccer run (env {env.id}); demos record "
                            "needs one")
        spec = SoccerSpec.from_config(env)
        if args.frame and args.frame != spec.observation:
            raise UserError(f"the run observes in the {spec.observation} frame; it cannot "
                            f"record in --frame {args.frame}")
        changes: dict[str, Any] = {"backend": "sai" if spec.env_kwargs else "fast"}
        if args.reward:
            changes["reward"] = args.reward
        if args.command_range:
            raise UserError("--command-range is for experts: a run records with its own "
                            "walker's ranges")
        if args.walker:
            if spec.control != "walker":
                raise UserError("--walker: the run uses torque control")
            changes["walker"] = _walker_spec(args.walker)
        spec = spec.replace(**changes)
        tasks = tasks or list(spec.tasks)

        def make_policy(task: str, n: int) -> Any:
            return ModelPolicy(loaded.model, loaded.vecnorm)
        source = str(loaded.path)
    else:
        raise UserError(f"unknown SOURCE '{args.source}': not an expert ({', '.join(EXPERTS)}), "
                        "a run directory or a model .zip")
    if args.max_steps:
        spec = spec.replace(max_episode_steps=args.max_steps)
    start = time.perf_counter()
    demos = record_demos(spec, tasks, make_policy, args.episodes, args.seed, source,
                         n_envs=args.n_envs)
    total = demos.n_episodes
    kept_note = ""
    if args.min_score is not None:
        demos = demos.select_episodes(demos.episode_score >= args.min_score)
        kept_note = f" (kept {demos.n_episodes} of {total} with score >= {args.min_score:g})"
        if demos.n_episodes == 0:
            raise UserError(f"no episode scored at least {args.min_score:g}; nothing written")
    demos.save(out)
    per_task = ", ".join(
        f"{t} {np.mean(demos.episode_score[demos.episode_task == i]):+.3f}"
        for i, t in enumerate(demos.tasks) if np.any(demos.episode_task == i))
    print(f"recorded {demos.n_episodes} episodes{kept_note}, {demos.n} transitions "
          f"[{per_task}] in {time.perf_counter() - start:.0f}s -> {out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from soccerlab.imitation.demos import load_demos
    from soccerlab.imitation.record import demos_summary

    path = Path(args.file)
    demos = load_demos(path)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    for line in demos_summary(demos):
        print(line)
    return 0


def cmd_import_mocap(args: argparse.Namespace) -> int:
    from soccerlab.envs.soccer.behaviour.tasks import get_task
    from soccerlab.imitation.mocap import import_mocap

    out = _check_out(args.out, args.force)
    task = get_task(args.task).name
    kwargs: dict[str, Any] = {}
    if args.walker:
        from soccerlab.envs.soccer.behaviour.walker_load import load_walker

        cfg = load_walker(_walker_spec(args.walker)).config
        kwargs = {"command_ranges": cfg.command_ranges, "default_q": cfg.default_q,
                  "action_scale": cfg.action_scale}
    if not np.isfinite(args.max_speed) or args.max_speed <= 0:
        raise UserError(f"--max-speed must be a positive number, got {args.max_speed}")
    if not np.isfinite(args.smooth) or args.smooth < 0:
        raise UserError(f"--smooth must be a number >= 0, got {args.smooth}")
    demos, stats = import_mocap(args.clips, task, frame=args.frame, seed=args.seed,
                                max_speed=args.max_speed, smooth=args.smooth, **kwargs)
    if demos.n == 0:
        raise UserError("no usable transition in these clips; nothing written")
    demos.save(out)
    for s in stats:
        print(f"  {s['clip']}: {s['frames']} frames -> {s['transitions']} transitions "
              f"({s['dropped']} dropped), vx {s['vx_min']:+.2f}..{s['vx_max']:+.2f} m/s, "
              f"|vy| <= {s['vy_absmax']:.2f} m/s, |yaw rate| <= {s['yaw_absmax']:.2f} rad/s, "
              f"saturated {s['saturated']:.0%}")
    print(f"imported {len(stats)} clips, {demos.n} transitions in {task}'s scene -> {out}")
    return 0
