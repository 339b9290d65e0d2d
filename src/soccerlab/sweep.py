"""``soccerlab sweep``: hyperparameter search with Optuna over ordinary training runs.

The search space is the config's ``sweep:`` section (key path -> distribution). Every trial is
a normal run directory under ``<output_dir>/sweeps/<study>/``, trained by the same Trainer as
``soccerlab train``; each evaluation is reported to the trial so the pruner can stop it early.
The study lives in an Optuna storage (SQLite file by default, PostgreSQL for many machines, a
journal file for a shared filesystem), so any number of workers on any number of machines can
run the same command: they share one study, and running the command again continues it.

A worker that dies (``kill -9``, a lost machine) leaves its trial ``RUNNING``; with an RDB
storage every trial sends a heartbeat, and after ``sweep.grace`` seconds without one any other
worker marks it failed and Optuna's ``RetryFailedTrialCallback`` queues the same parameters
again. Workers therefore stay until the study has its N finished trials, even while the last
ones run elsewhere, so that a retry is picked up.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soccerlab.config import Config, SweepParam, config_from_dict, dump_yaml, load_config, suggest
from soccerlab.errors import UserError
from soccerlab.runs import write_json_atomic, write_text_atomic

STUDY_FILE = "study.json"
BEST_FILE = "best.yaml"
MAX_FAILURES_IN_A_ROW = 3


class TrialFailed(Exception):
    """A trial's training run failed (its run directory holds error.log)."""


@dataclass
class Sweep:
    """Everything a worker needs: the base config, the study and where trials go."""

    cfg: Config
    base: dict[str, Any]  # the config as a dict, without the sweep section
    study_name: str
    storage_url: str
    root: Path  # <output_dir>/sweeps/<study>
    trials: int
    command: str

    @property
    def objective(self) -> str:
        name = self.cfg.sweep.objective
        if name == "auto":
            return "comp/overall" if self.cfg.env.is_soccer else "mean_return"
        return name


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def run(config_path: str, overrides: list[str], trials: int, storage: str | None,
        study: str | None, jobs: int, command: str, worker: bool = False) -> int:
    """Run (or join, or continue) a study until it has ``trials`` finished trials."""
    sweep = prepare(config_path, overrides, trials, storage, study, command)
    optuna_study = open_study(sweep)
    sweep.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(sweep.root / STUDY_FILE, {
        "study": sweep.study_name, "storage": sweep.storage_url, "direction": sweep.cfg.sweep.direction,
        "objective": sweep.objective, "value": sweep.cfg.sweep.value, "trials": trials,
        "config": sweep.cfg.to_dict()})
    if not worker:
        print(f"study {sweep.study_name!r} on {_masked(sweep.storage_url)}: {trials} trials, "
              f"{jobs} worker{'s' if jobs > 1 else ''} here; objective {sweep.objective} "
              f"({sweep.cfg.sweep.value}, {sweep.cfg.sweep.direction})")
        print(f"trials: {sweep.root}")
    if jobs > 1:
        code = _spawn_workers(config_path, overrides, sweep, jobs)
    else:
        code = work(sweep, optuna_study)
    if worker:
        return code
    done = _finished(optuna_study)
    print(summary(sweep, optuna_study))
    return 0 if done >= trials else (code or 1)


def prepare(config_path: str, overrides: list[str], trials: int, storage: str | None,
            study: str | None, command: str) -> Sweep:
    _quiet_optuna()
    cfg = load_config(config_path, overrides)
    if cfg.sweep is None or not cfg.sweep.params:
        raise UserError(f"{config_path} has no sweep.params: add a sweep section "
                        "(key path -> distribution, see the README)")
    name = study or cfg.experiment.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"--study {name!r}: use letters, digits, '.', '_' and '-' only")
    check_space(cfg)
    base = cfg.to_dict()
    base.pop("sweep")
    root = Path(cfg.experiment.output_dir) / "sweeps" / name
    if storage is None:  # the SQLite file goes in the study folder
        root.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(root / 'study.db').resolve()}"
    return Sweep(cfg, base, name, url, root, trials, command)


def check_space(cfg: Config) -> None:
    """Every value a parameter can take gives a valid config, and algo.params keys exist."""
    import inspect

    from soccerlab.algos import _OWNED, get_algo

    accepted = inspect.signature(get_algo(cfg.algo.name).cls.__init__).parameters
    base = cfg.to_dict()
    base.pop("sweep")
    for path, param in cfg.sweep.params.items():
        parts = path.split(".")
        if parts[:2] == ["algo", "params"] and len(parts) > 2:
            key = parts[2]
            if key in _OWNED or key not in accepted:
                options = [k for k in accepted if k not in _OWNED and k != "self"]
                raise UserError(f"sweep.params: unknown key path {path!r} for {cfg.algo.name}"
                                f"{suggest(key, options)}")
        for value in _extremes(param):
            data = copy.deepcopy(base)
            set_path(data, path, value)
            try:
                config_from_dict(data)
            except UserError as exc:
                raise UserError(f"sweep.params.{path}: the value {value!r} gives a bad config: "
                                f"{str(exc).removeprefix('config: ')}") from None


def _extremes(param: SweepParam) -> list[Any]:
    if param.type == "categorical":
        return list(param.choices)
    cast = int if param.type == "int" else float
    return [cast(param.low), cast(param.high)]


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


# ---------------------------------------------------------------------------------------------
# Storage and study
# ---------------------------------------------------------------------------------------------


def open_storage(url: str, heartbeat: int, grace: int | None, retries: int) -> Any:
    """An Optuna storage for ``url``; a storage that can't be reached is a one-line UserError."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    _quiet_optuna()
    if _is_journal(url):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise UserError(f"--storage {url}: cannot open the journal file: {exc}") from None
    if "://" not in url:
        raise UserError(f"--storage {url!r}: expected sqlite:///FILE, postgresql://USER@HOST/DB "
                        "or journal:FILE")
    engine: dict[str, Any] = {}
    if url.startswith("postgresql"):
        engine["connect_args"] = {"connect_timeout": 10}
        if url.startswith("postgresql://"):  # the driver we ship (SQLAlchemy 2.0 would pick psycopg2)
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    import sqlalchemy.exc

    for attempt in range(5):
        try:
            return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                              grace_period=grace,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(retries))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers starting together on a fresh database race to create Optuna's tables:
            # the loser sees "already exists"; the tables are there a moment later
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
        except (optuna.exceptions.OptunaError, ImportError, ValueError, Exception) as exc:  # noqa: BLE001
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise UserError(f"cannot open storage {_masked(url)}: {detail[:300]}") from None
    raise AssertionError("unreachable")


def open_study(sweep: Sweep) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = sweep.cfg.sweep
    storage = open_storage(sweep.storage_url, s.heartbeat, s.grace, s.retries)
    if s.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(n_startup_trials=s.startup_trials, seed=s.seed)
    else:
        sampler = optuna.samplers.RandomSampler(seed=s.seed)
    if s.pruner == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=s.startup_trials)
    elif s.pruner == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=sweep.cfg.eval.every or 1,
                                                max_resource=sweep.cfg.train.total_timesteps)
    else:
        pruner = optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(study_name=sweep.study_name, storage=storage, sampler=sampler,
                                    pruner=pruner, direction=s.direction, load_if_exists=True)
    except Exception as exc:  # noqa: BLE001 - a database can fail in many ways
        raise UserError(f"cannot open study {sweep.study_name!r}: {' '.join(str(exc).split())[:300]}") from None
    if study.direction.name.lower() != s.direction:
        raise UserError(f"study {sweep.study_name!r} exists with direction "
                        f"{study.direction.name.lower()}, not {s.direction}; use another --study")
    return study


def _is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith((".log", ".journal", ".jsonl"))


def _quiet_optuna() -> None:
    """Heartbeats and retries are marked experimental in Optuna 4.x; they are what we use."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="system_attrs has been deprecated", category=FutureWarning)


def _masked(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


# ---------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------


def _counts(study: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _finished(study: Any) -> int:
    c = _counts(study)
    return c.get("COMPLETE", 0) + c.get("PRUNED", 0)


def work(sweep: Sweep, study: Any) -> int:
    """Run trials until the study has ``sweep.trials`` finished (complete or pruned) ones."""
    from optuna.storages import fail_stale_trials

    failures = 0
    while True:
        fail_stale_trials(study)  # dead workers' trials -> FAIL, and queued again for a retry
        c = _counts(study)
        finished = c.get("COMPLETE", 0) + c.get("PRUNED", 0)
        if finished >= sweep.trials:
            return 0
        if c.get("WAITING", 0) or finished + c.get("RUNNING", 0) < sweep.trials:
            outcome: list[str] = []
            # optimize() runs the trial's heartbeat thread, and marks a trial that raised as FAIL
            study.optimize(lambda t, out=outcome: objective(sweep, t, out), n_trials=1,
                           catch=(TrialFailed, UserError))
            failures = failures + 1 if outcome != ["ok"] else 0
            if failures >= MAX_FAILURES_IN_A_ROW:
                print(f"stopping this worker: {failures} trials in a row failed", file=sys.stderr)
                return 1
        elif _is_journal(sweep.storage_url):
            # no heartbeat (journal file): a dead worker's trial would look alive forever
            print(f"{c.get('RUNNING', 0)} trial(s) still running elsewhere (the journal storage "
                  "can't tell whether their workers are alive); this worker stops", flush=True)
            return 0
        else:
            # the last trials run in other workers: wait, to retry one if its worker dies
            time.sleep(min(5.0, float(sweep.cfg.sweep.heartbeat)))


def objective(sweep: Sweep, trial: Any, outcome: list[str]) -> float:
    """Train one trial's run and return its value (raises TrialPruned or TrialFailed)."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    from soccerlab.training.trainer import Trainer

    params = {path: _suggest(trial, path, p) for path, p in sweep.cfg.sweep.params.items()}
    data = copy.deepcopy(sweep.base)
    for path, value in params.items():
        set_path(data, path, value)
    data["experiment"]["output_dir"] = str(sweep.root)
    data["experiment"]["name"] = f"trial-{trial.number:04d}"
    retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
    note = f" (retry of trial {retried})" if retried is not None else ""
    print(f"trial {trial.number}{note}: {_format_params(params)}", flush=True)
    try:
        cfg = config_from_dict(data, source=f"trial {trial.number}")
    except UserError as exc:
        print(f"trial {trial.number}: failed: {exc}", flush=True)
        raise
    metric, pruned = sweep.objective, [False]
    values: list[float] = []

    def on_evaluation(step: int, report: Any) -> bool:
        if "run_dir" not in trial.user_attrs:
            trial.set_user_attr("run_dir", str(trainer.run_dir.path))
        value = report_value(report, metric)
        values.append(value)
        if math.isfinite(value):
            trial.report(value, step)
        if step < cfg.train.total_timesteps and trial.should_prune():
            pruned[0] = True
        return pruned[0]

    trainer = Trainer(cfg, sweep.command, on_evaluation=on_evaluation)
    log = sweep.root / "logs" / f"trial-{trial.number:04d}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _wandb_group(sweep.study_name), open(log, "w") as out, \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            result = trainer.run()
    except UserError as exc:
        print(f"trial {trial.number}: failed: {exc}", flush=True)
        raise
    trial.set_user_attr("run_dir", str(result.run))
    if pruned[0]:
        trainer.run_dir.update_meta(status="pruned")
        print(f"trial {trial.number}: pruned at step {trainer.last_eval_step} "
              f"({metric} {values[-1]:.4g}); run {result.run}", flush=True)
        outcome.append("ok")
        raise optuna.TrialPruned
    if result.status == "failed":
        print(f"trial {trial.number}: failed: {result.message.strip().splitlines()[0]}", flush=True)
        raise TrialFailed(f"training failed, see {result.run}/error.log")
    if result.status == "interrupted":
        raise KeyboardInterrupt
    value = _trial_value(values, sweep.cfg.sweep.value, sweep.cfg.sweep.direction)
    print(f"trial {trial.number}: {metric} {value:.4g}; run {result.run}", flush=True)
    outcome.append("ok")
    return value


def report_value(report: Any, metric: str) -> float:
    """An evaluation's value for ``metric``, a column of evaluations.csv."""
    values = {"score": report.score, **report.summary(), **report.extra_metrics()}
    value = values.get(metric)
    if value is None:
        raise TrialFailed(f"the evaluation has no {metric!r} (it has {', '.join(sorted(values))})")
    return float(value)


def _trial_value(values: list[float], kind: str, direction: str) -> float:
    if not values:
        raise TrialFailed("the run made no evaluation")
    if kind == "final":
        return values[-1]
    return max(values) if direction == "maximize" else min(values)


def _suggest(trial: Any, path: str, p: SweepParam) -> Any:
    if p.type == "categorical":
        if all(c is None or isinstance(c, bool | int | float | str) for c in p.choices):
            return trial.suggest_categorical(path, p.choices)
        # Optuna stores only plain values: lists/mappings travel as JSON text
        return json.loads(trial.suggest_categorical(path, [json.dumps(c) for c in p.choices]))
    if p.type == "int":
        return trial.suggest_int(path, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(path, p.low, p.high, step=p.step, log=p.log)


def _format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


@contextlib.contextmanager
def _wandb_group(group: str):
    """W&B reads WANDB_RUN_GROUP: a sweep's trials (or a seed group's runs) form one group."""
    old = os.environ.get("WANDB_RUN_GROUP")
    os.environ["WANDB_RUN_GROUP"] = group
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WANDB_RUN_GROUP", None)
        else:
            os.environ["WANDB_RUN_GROUP"] = old


def _spawn_workers(config_path: str, overrides: list[str], sweep: Sweep, jobs: int) -> int:
    cmd = [sys.executable, "-m", "soccerlab", "sweep", config_path, *overrides,
           "--trials", str(sweep.trials), "--storage", sweep.storage_url,
           "--study", sweep.study_name, "--jobs", "1", "--worker"]
    procs = [subprocess.Popen(cmd) for _ in range(jobs)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:  # the workers got the Ctrl-C too: let them mark their trials
        for p in procs:
            p.wait()
        raise
    return next((c for c in codes if c), 0)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def best_config(sweep: Sweep, trial: Any) -> dict[str, Any]:
    """The base config with the best trial's parameters: a plain ``soccerlab train`` config."""
    data = copy.deepcopy(sweep.base)
    for path, param in sweep.cfg.sweep.params.items():
        value = trial.params[path]
        if param.type == "categorical" and not all(
                c is None or isinstance(c, bool | int | float | str) for c in param.choices):
            value = json.loads(value)
        set_path(data, path, value)
    data["experiment"]["name"] = f"{sweep.study_name}-best"
    config_from_dict(data)
    return data


def summary(sweep: Sweep, study: Any) -> str:
    """Print-ready lines: counts, the best trials, where best.yaml is; writes best.yaml."""
    from optuna.trial import TrialState

    c = _counts(study)
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(c.items()))
    lines = ["", f"study {sweep.study_name}: {counts}"]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        lines.append("no complete trial yet")
        return "\n".join(lines)
    reverse = sweep.cfg.sweep.direction == "maximize"
    ranked = sorted(complete, key=lambda t: t.value, reverse=reverse)
    lines.append(f"best trials ({sweep.objective}, {sweep.cfg.sweep.value}):")
    for t in ranked[:5]:
        lines.append(f"  trial {t.number}: {t.value:.4g}  {_format_params(t.params)}")
    best = ranked[0]
    data = best_config(sweep, best)
    path = sweep.root / BEST_FILE
    header = (f"# best trial {best.number} of study {sweep.study_name} "
              f"({sweep.objective} {best.value:.6g}); run: {best.user_attrs.get('run_dir', '?')}\n")
    write_text_atomic(path, header + dump_yaml(data))
    lines.append(f"best config: {path}  (train it: soccerlab train {path})")
    return "\n".join(lines)


def load_study_dir(path: Path) -> tuple[dict[str, Any], Any]:
    """A study folder's study.json and its Optuna study (for reports)."""
    import optuna

    info = json.loads((path / STUDY_FILE).read_text())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(info["storage"], 60, None, 0)
    try:
        study = optuna.load_study(study_name=info["study"], storage=storage)
    except KeyError:
        raise UserError(f"study {info['study']!r} not found in {_masked(info['storage'])}") from None
    return info, study
