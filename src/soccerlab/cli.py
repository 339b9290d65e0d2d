"""The ``soccerlab`` command: train, bc, eval, play, export, submit, tasks, sweep, report,
demos. Each command is a short function.

User mistakes end with one line on stderr and exit code 2; a failed training run with 1; an
interrupted one (Ctrl-C, SIGTERM) with 130 after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from soccerlab import __version__
from soccerlab.errors import UserError
from soccerlab.training.search_settings import SPACES, SearchSettings

if TYPE_CHECKING:
    from soccerlab.training.trainer import TrainResult


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


#: ``soccerlab search``'s defaults, shown in its --help.
_SEARCH = SearchSettings()


def parse_seeds(text: str) -> list[int]:
    """Comma-separated integers and inclusive ranges: ``0,1,2``, ``10-29``, ``0-4,100``."""
    seeds: list[int] = []
    try:
        for item in (s.strip() for s in text.split(",")):
            first, dash, last = item.partition("-")
            if dash and first.strip():  # a range a-b (a leading '-' is a negative seed)
                seeds += range(int(first), int(last) + 1)
            elif item:
                seeds.append(int(item))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers or ranges like "
                                         f"10-29, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET",
                   help="a run directory (its best model, else its final model) or a model .zip")
    p.add_argument("--env", metavar="ENV_ID",
                   help="env id for a .zip outside a run (or to evaluate a run's model elsewhere)")
    p.add_argument("--algo", metavar="NAME", help="algorithm of a .zip outside a run (usually guessed)")
    _add_trust_arg(p, "read an old run's vecnormalize.pkl (a pickle: it can run code) when it has "
                      "no vecnormalize.npz; the policy weights are never unpickled")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--deterministic", dest="deterministic", action="store_true", default=True,
                      help="act with the policy's mean/greedy action (default)")
    mode.add_argument("--stochastic", dest="deterministic", action="store_false",
                      help="sample actions from the policy")


def _add_trust_arg(p: argparse.ArgumentParser, why: str) -> None:
    p.add_argument("--trust-pickle", action="store_true",
                   help=f"{why}; only for files from a source you trust")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="soccerlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"soccerlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train from a YAML experiment file, or resume a run",
                       description="Train from CONFIG (with key.path=value overrides), or continue "
                                   "a run with --resume RUN_DIR. Prints the run directory last.")
    p.add_argument("args", nargs="*", metavar="CONFIG | key.path=value",
                   help="the experiment YAML, then overrides such as train.total_timesteps=5000")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue this run from its latest checkpoint; overrides may change only "
                        "train.*, eval.*, video.* and logging.*")
    _add_trust_arg(p, "with --resume: load a checkpoint whose pickles (SB3 model data, normaliser, "
                      "replay buffer) soccerlab did not write on this machine")
    p.add_argument("--seeds", type=parse_seeds, metavar="0,1,2",
                   help="a seed group: one run per seed (experiment.seed) in a group folder, and a "
                        "summary (mean and 95%% confidence interval of final and best scores)")
    p.add_argument("--parallel", type=_positive, default=1, metavar="K",
                   help="with --seeds: run K seeds at a time, as separate processes (default 1)")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("bc", help="behaviour cloning: train a config's actor on demonstrations",
                       description="Train the policy CONFIG's RL run would use (same network, "
                                   "normaliser and observation frame) to imitate the demos in its "
                                   "bc: section. Writes an ordinary run directory (printed last); "
                                   "warm-start RL from it with algo.init.path=RUN_DIR.")
    p.add_argument("args", nargs="+", metavar="CONFIG | key.path=value",
                   help="the experiment YAML (with a bc: section), then overrides")
    p.set_defaults(fn=cmd_bc)

    p = sub.add_parser("sweep", help="tune hyperparameters with Optuna (the config's sweep: section)",
                       description="Search the config's sweep.params with Optuna. Each trial is a "
                                   "run directory under <output_dir>/sweeps/<study>/; any number "
                                   "of workers (here with --jobs, or on other machines with the "
                                   "same --storage) share the study; rerunning continues it.")
    p.add_argument("args", nargs="+", metavar="CONFIG | key.path=value",
                   help="the experiment YAML (with a sweep: section), then overrides")
    p.add_argument("--trials", type=_positive, default=20, metavar="N",
                   help="the study's total of finished trials (default 20), whatever the workers")
    p.add_argument("--storage", metavar="URL",
                   help="sqlite:///FILE (default: <output_dir>/sweeps/<study>/study.db), "
                        "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB, or journal:FILE")
    p.add_argument("--study", metavar="NAME", help="study name (default: experiment.name)")
    p.add_argument("--jobs", type=_positive, default=1, metavar="K",
                   help="worker processes on this machine (default 1)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(fn=cmd_sweep)

    p = sub.add_parser("report", help="plots, tables and one HTML file for runs, seed groups, studies",
                       description="Read runs, seed groups or sweep studies (TensorBoard events and "
                                   "evaluations.csv) and write PNG plots, a markdown table and one "
                                   "self-contained report.html with plots, tables and videos.")
    p.add_argument("targets", nargs="+", metavar="TARGET",
                   help="a run directory, a seed group folder or a study folder (sweeps/<study>)")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default: <first target>/report)")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("eval", help="evaluate a trained policy over several episodes and seeds",
                       description="Evaluate TARGET and print a table (mean ± std return, length, "
                                   "success rate where the env reports one).")
    _add_policy_args(p)
    p.add_argument("--episodes", type=_positive, help="episodes per seed (default: the run's eval.episodes)")
    p.add_argument("--seeds", type=parse_seeds, help="comma-separated seeds, e.g. 0,1,2 (default: the run's eval.seeds)")
    p.add_argument("--json", metavar="PATH", help="also write the full report (every episode) as JSON")
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("play", help="run a policy, optionally recording an mp4 offscreen",
                       description="Run TARGET for some episodes and print their returns; with "
                                   "--video, render offscreen and write an mp4.")
    _add_policy_args(p)
    p.add_argument("--episodes", type=_positive, default=1, help="episodes to play (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    p.add_argument("--video", metavar="OUT.mp4", help="write the episodes to this mp4 file")
    p.add_argument("--width", type=_positive, default=640, help="video width in pixels (default 640)")
    p.add_argument("--height", type=_positive, default=480, help="video height in pixels (default 480)")
    p.add_argument("--task", help="soccer: the task to play (default: the run's first task)")
    p.set_defaults(fn=cmd_play)

    p = sub.add_parser("search", help="improve a run's deterministic score by random search",
                       description="Basic random search (antithetic pairs) of TARGET's "
                                   "deterministic evaluation score (soccer: the competition "
                                   "score) over a small part of its policy: the action layer "
                                   "(--space last-layer) or, for multi-task soccer runs, one "
                                   "first-layer shift per task that only that task sees (--space "
                                   "task). Writes a copy of the run with the best weights and "
                                   "search.json to --out; prints the folder last.")
    p.add_argument("target", metavar="RUN", help="a run directory (PPO or A2C), or a model .zip "
                                                 "inside one (e.g. RUN/dagger/round-5/model.zip)")
    p.add_argument("--out", metavar="DIR", required=True, help="the new run folder to write")
    p.add_argument("--space", choices=SPACES, default=_SEARCH.space,
                   help=f"what to search (default {_SEARCH.space})")
    p.add_argument("--tasks", metavar="T1,T2",
                   help="--space task: the tasks to search (default: all the run's)")
    p.add_argument("--seeds", type=parse_seeds, metavar="1000,1001", default=list(_SEARCH.seeds),
                   help="seeds that score each candidate (default "
                        f"{','.join(map(str, _SEARCH.seeds))}; the report uses the run's eval "
                        "seeds)")
    p.add_argument("--check-seeds", type=parse_seeds, metavar="2000-2039", default=[],
                   help="seeds a new best must also score better on than the kept one (against "
                        "keeping a candidate that was lucky on --seeds; default: none)")
    p.add_argument("--iterations", type=_positive, default=_SEARCH.iterations,
                   help=f"iterations (default {_SEARCH.iterations})")
    p.add_argument("--pairs", type=_positive, default=_SEARCH.pairs,
                   help=f"antithetic pairs per iteration (default {_SEARCH.pairs})")
    p.add_argument("--noise", type=float, default=_SEARCH.noise,
                   help=f"perturbation size (default {_SEARCH.noise}: relative to the weights' "
                        "std for last-layer, in pre-activation units for task)")
    p.add_argument("--step", type=float, default=_SEARCH.step,
                   help=f"step size, same units (default {_SEARCH.step})")
    p.add_argument("--seed", type=int, default=_SEARCH.seed,
                   help=f"seed of the search directions (default {_SEARCH.seed})")
    p.add_argument("--jobs", type=_positive, default=_SEARCH.jobs, metavar="K",
                   help=f"--space task: search K tasks at once, one process each (default "
                        f"{_SEARCH.jobs}; the result is the same)")
    p.add_argument("--walker", metavar="PATH", help="soccer walker control: use this walker file")
    _add_trust_arg(p, "read a run whose pickles soccerlab did not write on this machine")
    p.set_defaults(fn=cmd_search)

    p = sub.add_parser("export", help="write a soccer run as an SAI submission folder, checked",
                       description="Export TARGET (a soccer run, or a model inside one) as a folder "
                                   "SAI accepts as it is: model, preprocessor.py, action_function.py, "
                                   "manifest.json, README.md. Before it is written, the files run "
                                   "through the SAI benchmark's loop in a fresh process without "
                                   "soccerlab; its scores must equal soccerlab's evaluation on the "
                                   "run's eval seeds. Prints the folder last.")
    p.add_argument("target", metavar="TARGET", help="a soccer run directory or a model .zip inside one")
    p.add_argument("--out", metavar="DIR", help="the folder to write (default: RUN/submission-FORMAT)")
    p.add_argument("--format", dest="fmt", choices=("torchscript", "onnx"), default="torchscript",
                   help="model file: torchscript (model.pt, default; walker control needs it) or "
                        "onnx (model.onnx, torque control)")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    _add_trust_arg(p, "read an old run's vecnormalize.pkl when it has no vecnormalize.npz")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("submit", help="submit an exported folder to the SAI competition (sai-rl)",
                       description="Submit DIR (made by soccerlab export) with sai-rl. Needs "
                                   "pip install 'soccerlab[sai]', an API key (sai login or "
                                   "SAI_API_KEY) and the network.")
    p.add_argument("folder", metavar="DIR", help="a folder written by soccerlab export")
    p.add_argument("--name", required=True, help="the submission's name")
    p.add_argument("--competition", default="booster-soccer-showdown",
                   help="SAI competition id (default: booster-soccer-showdown)")
    p.set_defaults(fn=cmd_submit)

    p = sub.add_parser("tasks", help="list the soccer showdown tasks",
                       description="List the soccer tasks: env id, raw and unified observation "
                                   "sizes, episode limit, competition index and scoring weights.")
    p.set_defaults(fn=cmd_tasks)

    from soccerlab.imitation.commands import add_demos_parser

    add_demos_parser(sub, _Parser)
    return parser


def cmd_tasks(args: argparse.Namespace) -> int:
    from soccerlab.envs.soccer import format_task_table

    print(format_task_table())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from soccerlab.training import trainer

    if args.trust_pickle and not args.resume:
        raise UserError("--trust-pickle applies to --resume (a new run unpickles nothing)")
    if args.seeds and args.resume:
        raise UserError("--seeds starts new runs; it cannot be combined with --resume")
    if args.seeds:
        from soccerlab import seeds

        return seeds.run(*_config_and_overrides(args.args, "train --seeds"), args.seeds,
                         args.parallel)
    if args.resume:
        _check_overrides(args.args)
        return _report(trainer.resume(args.resume, args.args, _command(), args.trust_pickle))
    return _report(trainer.start(*_config_and_overrides(args.args, "train"), _command()))


def cmd_bc(args: argparse.Namespace) -> int:
    from soccerlab.imitation import bc

    return _report(bc.start(*_config_and_overrides(args.args, "bc"), _command()))


def cmd_sweep(args: argparse.Namespace) -> int:
    from soccerlab import sweep

    config, overrides = _config_and_overrides(args.args, "sweep")
    return sweep.run(config, overrides, args.trials, args.storage, args.study, args.jobs,
                     _command(), worker=args.worker)


def _command() -> str:
    """This command line, as recorded in a run's meta.json."""
    return "soccerlab " + shlex.join(sys.argv[1:])


def _config_and_overrides(items: Sequence[str], command: str) -> tuple[str, list[str]]:
    """CONFIG and its key.path=value overrides from a command's positional arguments."""
    if not items:
        raise UserError(f"{command} needs a CONFIG file" + (" (or --resume RUN_DIR)"
                                                             if command == "train" else ""))
    config, overrides = items[0], list(items[1:])
    if "=" in config:
        raise UserError(f"expected a CONFIG file first, got the override {config!r}")
    _check_overrides(overrides)
    return config, overrides


def _report(result: TrainResult) -> int:
    """A training or BC run's closing message, then its directory as the last line."""
    print(result.message, file=sys.stdout if result.status == "finished" else sys.stderr)
    print(result.run)
    return result.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from soccerlab import report

    return report.run(args.targets, args.out)


def _check_overrides(overrides: Sequence[str]) -> None:
    for item in overrides:
        if "=" not in item:
            raise UserError(f"expected key.path=value, got {item!r}")


def cmd_eval(args: argparse.Namespace) -> int:
    from soccerlab.evaluation import evaluate_config, model_predictor
    from soccerlab.loading import load_policy
    from soccerlab.runs import write_json_atomic

    loaded = load_policy(args.target, args.env, args.algo, args.trust_pickle)
    cfg = loaded.cfg
    seeds = args.seeds or cfg.eval.seeds
    episodes = args.episodes or cfg.eval.episodes
    predict = model_predictor(loaded.model, args.deterministic)
    report = evaluate_config(cfg, predict, seeds, episodes, loaded.vecnorm, args.deterministic)
    print(f"model: {loaded.path}")
    print(report.table())
    if args.json:
        from pathlib import Path

        write_json_atomic(Path(args.json), {"model": str(loaded.path), **report.to_dict()})
        print(f"report: {args.json}")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from soccerlab.envs.factory import env_factory
    from soccerlab.evaluation import model_predictor
    from soccerlab.loading import load_policy
    from soccerlab.video import make_render_env, record

    loaded = load_policy(args.target, args.env, args.algo, args.trust_pickle)
    predict = model_predictor(loaded.model, args.deterministic)
    env_cfg = loaded.cfg.env
    if args.task is not None and (not env_cfg.is_soccer or env_cfg.tasks.get(args.task, 0) <= 0):
        raise UserError(f"--task {args.task!r}: the run's soccer tasks are "
                        f"{', '.join(t for t, w in (env_cfg.tasks or {}).items() if w > 0) or 'none'}")

    def factory(**kwargs):
        return env_factory(env_cfg, task=args.task, **kwargs)()

    if args.video:
        if not args.video.endswith(".mp4"):
            raise UserError(f"--video expects a path ending in .mp4, got {args.video!r}")
        env = make_render_env(factory, args.width, args.height)
        try:
            out = record(predict, env, args.video, episodes=args.episodes,
                         normalizer=loaded.vecnorm, seed=args.seed)
        finally:
            env.close()
        _print_episodes(out["returns"], out["lengths"])
        print(f"video: {out['path']} ({out['frames']} frames)")
        return 0
    env = factory()
    try:
        returns, lengths = _play(predict, env, args.episodes, args.seed, loaded.vecnorm)
    finally:
        env.close()
    _print_episodes(returns, lengths)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from soccerlab.training.search import search_run

    settings = SearchSettings(
        space=args.space,
        tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()) if args.tasks else None,
        seeds=tuple(args.seeds), iterations=args.iterations, pairs=args.pairs, noise=args.noise,
        step=args.step, seed=args.seed, jobs=args.jobs, check_seeds=tuple(args.check_seeds))
    result = search_run(args.target, args.out, settings, args.walker, args.trust_pickle,
                        progress=lambda line: print(line, flush=True))
    for task in result["before"]["tasks"]:
        print(f"  {task:<24} {result['before']['tasks'][task]:+8.3f} -> "
              f"{result['after']['tasks'][task]:+8.3f}")
    print(f"search took {result['seconds']:.0f} s; best weights and search.json in:")
    print(args.out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from soccerlab.export import ExportCheckFailed, export_run

    try:
        result = export_run(args.target, args.out, args.fmt, args.force, args.trust_pickle,
                            progress=lambda line: print(line, flush=True))
    except ExportCheckFailed as exc:
        print(f"soccerlab export: check failed, nothing written: {exc}", file=sys.stderr)
        return 1
    manifest = result.manifest
    print(f"exported {manifest['source']['model']} (step {manifest['source']['step']}, "
          f"{manifest['control']} control) in {result.seconds:.1f} s")
    print(f"SAI-style check passed: scores equal soccerlab eval on seeds "
          f"{manifest['check']['seeds']} ({manifest['check']['episodes']} episode(s) each):")
    for task, score in manifest["scores"]["tasks"].items():
        print(f"  {task:<24} {score:8.3f}")
    print(f"  {'overall':<24} {manifest['scores']['overall']:8.3f}")
    print(result.folder)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from soccerlab.export.submit import submit

    answer = submit(args.folder, args.name, args.competition)
    print(f"submitted {args.folder} as {args.name!r}: {answer}")
    return 0


def _play(predict, env, episodes: int, seed: int, normalizer) -> tuple[list[float], list[int]]:
    from soccerlab.video import rollout

    returns, lengths = [], []
    obs, _ = env.reset(seed=seed)
    ret, length = 0.0, 0
    for reward, done in rollout(predict, env, obs, normalizer):
        ret += reward
        length += 1
        if done:
            returns.append(ret)
            lengths.append(length)
            ret, length = 0.0, 0
            if len(returns) == episodes:
                break
    return returns, lengths


def _print_episodes(returns: list[float], lengths: list[int]) -> None:
    for i, (r, n) in enumerate(zip(returns, lengths, strict=True)):
        print(f"episode {i}: return {r:.2f}, length {n}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("eval", "play", "export"):
        import torch

        torch.set_num_threads(1)  # one small policy forward per step: threads only add overhead
    try:
        return args.fn(args)
    except UserError as exc:
        print(f"soccerlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"soccerlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
