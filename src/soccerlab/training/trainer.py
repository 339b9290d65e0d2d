"""The training flow: Config -> envs -> model -> callbacks -> learn -> final save and report.

Everything a user can get wrong (config, files, env ids, incompatible checkpoints) is checked
while building envs and model, before a run folder is created or an existing one is touched.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import HumanOutputFormat, Logger, TensorBoardOutputFormat
from stable_baselines3.common.utils import get_device, set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from soccerlab import normalizer, runs, trust
from soccerlab.algos import AlgoSpec, build_model, get_algo
from soccerlab.config import Config, check_resume_compatible, dump_yaml, load_config
from soccerlab.envs.factory import check_env_config, env_factory, eval_suite, make_training_env
from soccerlab.envs.finite import FiniteGuard, NonFiniteEpisodes
from soccerlab.errors import UserError
from soccerlab.evaluation import EvalReport, model_predictor, run_episodes
from soccerlab.runs import RunDir, atomic_dir, atomic_path, write_json_atomic, write_text_atomic
from soccerlab.training import warmstart
from soccerlab.training.callbacks import (
    AtStep,
    Periodic,
    ProgressBar,
    StopOnRequest,
    StopRequest,
    TrainingScores,
)
from soccerlab.training.validation import FILE as VALIDATION_FILE
from soccerlab.training.validation import ValidationCallback, check_supported
from soccerlab.video import make_render_env, record, render_frame

EXIT_CODES = {"finished": 0, "failed": 1, "interrupted": 130}


@dataclass
class TrainResult:
    status: str  # finished | interrupted | failed
    run: Path
    message: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def start(config_path: str, overrides: list[str], command: str) -> TrainResult:
    """Train a new run from a YAML file and overrides."""
    cfg = load_config(config_path, overrides)
    return Trainer(cfg, command).run()


def resume(run_path: str, overrides: list[str], command: str,
           trust_pickle: bool = False) -> TrainResult:
    """Continue a run from its latest checkpoint; overrides may change train/eval/video/logging.

    The checkpoint's pickles (SB3's model data, normaliser, replay buffer) are loaded only when
    this machine's soccerlab wrote them, or with ``trust_pickle`` (``soccerlab.trust``)."""
    run = RunDir.open(run_path)
    old = load_config(run.config_file)
    cfg = load_config(run.config_file, overrides)
    check_resume_compatible(old, cfg)
    meta = run.read_meta()
    if meta.get("status") == "running" and _alive(meta.get("pid"), meta.get("host")):
        raise UserError(f"{run.path} is still running (pid {meta['pid']})")
    if meta.get("kind") == "bc":
        raise UserError(f"{run.path} is a behaviour-cloning run; to train on from it, "
                        f"warm-start RL: soccerlab train CONFIG algo.init.path={run.path}")
    latest = run.latest_checkpoint()
    if latest is None:
        raise UserError(f"{run.path} has no checkpoint to resume from")
    step = latest[0]
    if step >= cfg.train.total_timesteps:
        raise UserError(
            f"{run.path} already reached {step} steps (train.total_timesteps="
            f"{cfg.train.total_timesteps}); to continue, raise it: soccerlab train --resume "
            f"{run.path} train.total_timesteps={2 * cfg.train.total_timesteps}"
        )
    ckpt = latest[1]
    trust.check([ckpt / runs.MODEL, ckpt / runs.VECNORM, ckpt / runs.REPLAY], trust_pickle,
                f"resuming {run.path}")
    return Trainer(cfg, command, run=run, checkpoint=ckpt).run()


def _alive(pid: Any, host: Any) -> bool:
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return pid != os.getpid()


class Trainer:
    def __init__(self, cfg: Config, command: str, run: RunDir | None = None,
                 checkpoint: Path | None = None,
                 on_evaluation: Callable[[int, EvalReport], bool] | None = None) -> None:
        self.cfg = cfg
        # called after every evaluation with (step, report); returning True stops the run as
        # interrupted, with a checkpoint (a sweep's pruner uses it)
        self.on_evaluation = on_evaluation
        self.command = command
        self.run_dir = run
        self.checkpoint = checkpoint
        self.spec: AlgoSpec = get_algo(cfg.algo.name)
        self.stop = StopRequest()
        self.model: BaseAlgorithm
        self.venv: VecEnv
        self.vecnorm: VecNormalize | None = None
        self.validation: ValidationCallback | None = None
        self.progress: ProgressBar | None = None
        self.eval_envs: list[tuple[str, VecEnv]] | None = None
        self.best_score = -np.inf
        self.eval_rows: list[dict[str, Any]] = []
        self.last_eval_step = -1
        self.last_report: EvalReport | None = None
        self.frozen = False
        self.wandb_id: str | None = None

    # ------------------------------------------------------------------------------------
    # Public flow
    # ------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        try:
            self._build()  # UserErrors end here, before any run folder is created or touched
            self._open_run()
            return self._learn()
        finally:
            self._close()

    # ------------------------------------------------------------------------------------
    # Setup
    # ------------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.cfg
        check_env_config(cfg.env)
        if cfg.train.torch_threads:
            # small MLPs gain nothing from more threads, and OpenMP threads competing with env
            # workers for a few cores cut throughput several-fold (measured: docs/results.md)
            torch.set_num_threads(cfg.train.torch_threads)
        device = _device(cfg.train.device)
        seed = cfg.experiment.seed
        resumed_at = 0
        if self.checkpoint is not None:
            resumed_at = int(self.checkpoint.name)
            seed += resumed_at  # fresh random streams after a resume, still reproducible
        set_random_seed(seed)
        self.venv = make_training_env(cfg, seed=seed)
        if self.checkpoint is None:
            self.model = build_model(cfg, self.venv, device)
            self.vecnorm = self.venv if isinstance(self.venv, VecNormalize) else None
            if cfg.algo.demos is not None:
                from soccerlab.imitation.replay import load_demos_into

                print(load_demos_into(self.model, cfg))
            if cfg.algo.init is not None:
                print(warmstart.load_into(self.model, cfg.algo.init.path))
                carried = warmstart.load_normalizer_into(self.vecnorm, cfg.algo.init.path)
                if carried:
                    print(carried)
        else:
            self._load_checkpoint(device)
        self.bc_term = None
        if cfg.algo.bc_term is not None:
            from soccerlab.imitation.bc_term import bc_term_callback

            self.bc_term, line = bc_term_callback(cfg, self.venv)
            print(line)
        if cfg.train.validation is not None:
            check_supported(self.spec.name, self.venv.observation_space)
            self.validation = ValidationCallback(cfg.train.validation, self.spec.name, seed)
            if self.checkpoint is not None:
                self.validation.holdout.load(self.checkpoint / VALIDATION_FILE)
        init = cfg.algo.init
        if init is not None and init.freeze_layers and (
                init.unfreeze_at is None or self.model.num_timesteps < init.unfreeze_at):
            layers = warmstart.set_frozen(self.model, init.freeze_layers, True)
            self.frozen = True
            until = (f"until step {init.unfreeze_at}" if init.unfreeze_at is not None
                     else "for the whole run")
            print(f"froze the first {len(layers)} actor layers {until}")
        if cfg.video.every:
            self._check_rendering()
        if cfg.logging.wandb.mode != "disabled":
            _import_wandb()

    def _load_checkpoint(self, device: str) -> None:
        ckpt = self.checkpoint
        assert ckpt is not None
        if self.cfg.env.normalize is not None:
            if not (ckpt / runs.VECNORM).is_file():
                raise UserError(f"checkpoint {ckpt} has no {runs.VECNORM}")
            self.venv = _load_vecnormalize(ckpt / runs.VECNORM, self.venv.venv)
            self.vecnorm = self.venv
        try:
            self.model = self.spec.cls.load(ckpt / runs.MODEL, env=self.venv, device=device)
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            raise UserError(f"cannot resume from {ckpt}: {str(exc).splitlines()[0]}") from None
        if self.spec.off_policy:
            replay = ckpt / runs.REPLAY
            if not replay.is_file():
                raise UserError(f"checkpoint {ckpt} has no {runs.REPLAY}")
            self.model.load_replay_buffer(replay)

    def _check_rendering(self) -> None:
        env = make_render_env(self._render_factory, self.cfg.video.width, self.cfg.video.height)
        try:
            env.reset(seed=0)
            render_frame(env)
        finally:
            env.close()

    def _render_factory(self, **kwargs: Any) -> Any:
        return env_factory(self.cfg.env, **kwargs)()

    def _open_run(self) -> None:
        cfg = self.cfg
        created = self.run_dir is None
        if created:
            self.run_dir = RunDir.create(Path(cfg.experiment.output_dir), cfg.env.label,
                                         self.spec.name, cfg.experiment.name)
        try:
            self._start_wandb()
        except Exception as exc:  # noqa: BLE001 - W&B fails in many ways (network, login)
            if created:
                shutil.rmtree(self.run_dir.path, ignore_errors=True)
            raise UserError(f"W&B could not start ({type(exc).__name__}: {exc}); "
                            "use logging.wandb.mode=offline or disabled") from None
        run = self.run_dir
        if created:
            meta: dict[str, Any] = {"command": self.command, "started_at": runs.now_iso(),
                                    "seed": cfg.experiment.seed, "resumes": []}
        else:
            meta = run.read_meta()
            meta.setdefault("resumes", []).append(
                {"at": runs.now_iso(), "from_step": self.model.num_timesteps, "command": self.command})
            self._restore_history()
        write_text_atomic(run.config_file, dump_yaml(cfg.to_dict()))
        meta.update(status="running", timesteps=self.model.num_timesteps,
                    total_timesteps=cfg.train.total_timesteps, ended_at=None,
                    pid=os.getpid(), host=socket.gethostname(), versions=runs.versions(),
                    wandb_id=self.wandb_id)
        write_json_atomic(run.meta_file, meta)
        self.model.set_logger(self._logger())
        print(f"run: {run.path}")
        envs = f"{cfg.env.n_envs} {cfg.env.vec_env} env{'s' if cfg.env.n_envs > 1 else ''}"
        print(f"{self.spec.name} on {cfg.env.label}, {envs}, {cfg.train.total_timesteps} steps"
              + (f" (resuming at {self.model.num_timesteps})" if self.checkpoint else ""))

    def _restore_history(self) -> None:
        """On resume: keep evaluation rows up to the checkpoint and the best score so far."""
        run, step = self.run_dir, self.model.num_timesteps
        if run.evaluations_file.exists():
            with open(run.evaluations_file, newline="") as f:
                self.eval_rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
            self._write_evaluations()
        metrics = run.best_dir / runs.METRICS
        if metrics.is_file():
            self.best_score = float(json.loads(metrics.read_text())["score"])

    def _logger(self) -> Logger:
        # On resume, TensorBoard drops the events an earlier attempt wrote after the checkpoint
        # (purge_step), so the curves continue without overlap. Events at the checkpoint's own
        # step were logged before it was saved and stay.
        purge = self.model.num_timesteps + 1 if self.checkpoint is not None else None
        formats: list[Any] = [_TensorBoard(str(self.run_dir.tb_dir), purge)]
        if self.cfg.logging.verbose:
            formats.append(HumanOutputFormat(sys.stdout))
        return Logger(str(self.run_dir.tb_dir), formats)

    def _start_wandb(self) -> None:
        """W&B mirrors the TensorBoard events; a resumed run continues its W&B run (same id)."""
        wb = self.cfg.logging.wandb
        self.wandb_id = self.run_dir.read_meta().get("wandb_id") or uuid.uuid4().hex[:12]
        if wb.mode == "disabled":
            return
        wandb = _import_wandb()
        wandb.init(project=wb.project, entity=wb.entity, name=self.run_dir.path.name,
                   id=self.wandb_id, resume="allow", dir=str(self.run_dir.path), mode=wb.mode,
                   tags=wb.tags, config=self.cfg.to_dict(), sync_tensorboard=True)

    def _callbacks(self) -> list[Any]:
        cfg = self.cfg
        cbs: list[Any] = [StopOnRequest(self.stop), NonFiniteEpisodes()]
        init = cfg.algo.init
        if self.frozen and init is not None and init.unfreeze_at is not None:
            cbs.append(AtStep(init.unfreeze_at, self._unfreeze))
        if self.validation is not None:
            cbs.append(self.validation)
        if self.bc_term is not None:
            cbs.append(self.bc_term)
        if cfg.env.is_soccer:
            cbs.append(TrainingScores())
        cbs.append(Periodic(cfg.eval.every, self.evaluate))
        cbs.append(Periodic(cfg.video.every, self.record_video))
        cbs.append(Periodic(cfg.train.checkpoint_every, self.save_checkpoint))
        if cfg.train.progress_bar:
            self.progress = ProgressBar(cfg.train.total_timesteps)
            cbs.append(self.progress)
        return cbs

    # ------------------------------------------------------------------------------------
    # Learning
    # ------------------------------------------------------------------------------------
    def _learn(self) -> TrainResult:
        cfg, run = self.cfg, self.run_dir
        remaining = cfg.train.total_timesteps - self.model.num_timesteps
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        start_step, start_time = self.model.num_timesteps, time.perf_counter()
        try:
            self.model.learn(remaining, callback=self._callbacks(),
                             reset_num_timesteps=self.checkpoint is None)
        except Exception as exc:  # noqa: BLE001 - every failure is saved and reported
            return self._fail(exc)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            seconds = time.perf_counter() - start_time
            run.update_meta(learn_seconds=round(seconds, 3),
                            steps_per_second=round((self.model.num_timesteps - start_step) / seconds, 1))
        if self.stop:
            path = self.save_checkpoint()
            run.update_meta(status="interrupted", timesteps=self.model.num_timesteps,
                            ended_at=runs.now_iso())
            return TrainResult("interrupted", run.path,
                               f"{self.stop.signal}: saved checkpoint {path.name}; resume with:\n"
                               f"  soccerlab train --resume {run.path}")
        return self._finish()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stop and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C aborts without waiting
        self.stop.signal = signal.Signals(signum).name
        print(f"\n{self.stop.signal}: stopping after this step and saving a checkpoint...",
              file=sys.stderr, flush=True)

    def _fail(self, exc: BaseException) -> TrainResult:
        run = self.run_dir
        run.error_file.write_text(traceback.format_exc())
        try:
            saved = f"emergency checkpoint {self.save_checkpoint().name}"
        except Exception as save_exc:  # noqa: BLE001
            saved = f"no emergency checkpoint ({type(save_exc).__name__}: {save_exc})"
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        run.update_meta(status="failed", error=error, timesteps=self.model.num_timesteps,
                        ended_at=runs.now_iso())
        return TrainResult("failed", run.path,
                           f"training failed at step {self.model.num_timesteps}: {error}\n"
                           f"  traceback: {run.error_file}\n  {saved}; resume with: "
                           f"soccerlab train --resume {run.path}")

    def _finish(self) -> TrainResult:
        run = self.run_dir
        ckpt = self.save_checkpoint()
        for name in (runs.MODEL, runs.VECNORM, runs.VECNORM_NPZ):
            if (ckpt / name).is_file():
                with atomic_path(run.path / name) as tmp:
                    tmp.write_bytes((ckpt / name).read_bytes())
        if self.last_eval_step != self.model.num_timesteps:
            self.evaluate()
        run.update_meta(status="finished", timesteps=self.model.num_timesteps, ended_at=runs.now_iso())
        return TrainResult("finished", run.path, self._summary())

    def _summary(self) -> str:
        run = self.run_dir
        lines = ["", "final evaluation:", self.last_report.table() if self.last_report else "(none)"]
        best = run.best_dir / runs.METRICS
        if best.is_file():
            m = json.loads(best.read_text())
            lines.append(f"best model: {run.best_dir / runs.MODEL} (score {m['score']:.3f} at step {m['step']})")
        lines.append(f"final model: {run.model_file}")
        lines.append(f"evaluations: {run.evaluations_file}; TensorBoard: tensorboard --logdir {run.tb_dir}")
        return "\n".join(lines)

    def _close(self) -> None:
        for _, venv in self.eval_envs or []:
            venv.close()
        if hasattr(self, "venv"):
            self.venv.close()
        if self.cfg.logging.wandb.mode != "disabled" and "wandb" in sys.modules:
            sys.modules["wandb"].finish()

    # ------------------------------------------------------------------------------------
    # Periodic work
    # ------------------------------------------------------------------------------------
    def evaluate(self) -> EvalReport:
        """Evaluate the current model, log it, and keep it if it is the best so far."""
        cfg, step = self.cfg, self.model.num_timesteps
        if self.eval_envs is None:
            self.eval_envs = [(name, FiniteGuard(make(len(cfg.eval.seeds)), "evaluation"))
                              for name, make in eval_suite(cfg)]
        predict = model_predictor(self.model, cfg.eval.deterministic)
        episodes = []
        for name, venv in self.eval_envs:
            episodes += run_episodes(predict, venv, cfg.eval.seeds, cfg.eval.episodes, name, self.vecnorm)
        report = EvalReport(episodes, cfg.eval.deterministic, cfg.eval.task_weights)
        self.last_report, self.last_eval_step = report, step
        self._log_eval(report, step)
        if report.score > self.best_score:
            self.best_score = report.score
            self._save_best(report, step)
        if self.progress is not None:
            self.progress.note(f"eval {report.score:.3g} best {self.best_score:.3g}")
        if self.on_evaluation is not None and self.on_evaluation(step, report):
            self.stop.signal = self.stop.signal or "stopped by on_evaluation"
        return report

    def _log_eval(self, report: EvalReport, step: int) -> None:
        log = self.model.logger
        overall = report.summary()
        log.record("eval/score", report.score)
        log.record("eval/mean_reward", overall["mean_return"])
        log.record("eval/std_reward", overall["std_return"])
        log.record("eval/mean_ep_length", overall["mean_length"])
        if overall["success_rate"] is not None:
            log.record("eval/success_rate", overall["success_rate"])
        groups = report.groups
        if len(groups) > 1:
            for g in groups:
                s = report.summary(g)
                log.record(f"eval/{g}/mean_reward", s["mean_return"])
                log.record(f"eval/{g}/mean_ep_length", s["mean_length"])
        for key, value in report.extra_metrics().items():
            log.record(key, value)
        log.dump(step)
        row = {"step": step, "time": runs.now_iso(), "score": report.score,
               **{k: overall[k] for k in ("mean_return", "std_return", "mean_length", "success_rate", "episodes")},
               **report.extra_metrics()}
        self.eval_rows.append(row)
        self._write_evaluations()

    def _write_evaluations(self) -> None:
        if not self.eval_rows:
            return
        columns = list(dict.fromkeys(k for row in self.eval_rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.eval_rows)
        write_text_atomic(self.run_dir.evaluations_file, buf.getvalue())

    def _save_policy(self, folder: Path) -> None:
        """The model and, when normalising, the normaliser's statistics (pickle for SB3, and a
        plain .npz that eval/play/export read) into ``folder``."""
        self.model.save(folder / runs.MODEL)
        if self.vecnorm is not None:
            self.vecnorm.save(folder / runs.VECNORM)
            normalizer.save(self.vecnorm, folder / runs.VECNORM_NPZ)
        trust.record([folder / runs.MODEL, folder / runs.VECNORM])

    def _save_best(self, report: EvalReport, step: int) -> None:
        with atomic_dir(self.run_dir.best_dir) as tmp:
            self._save_policy(tmp)
            write_json_atomic(tmp / runs.METRICS, {"step": step, "score": report.score,
                                                    "overall": report.summary()})

    def save_checkpoint(self) -> Path:
        step = self.model.num_timesteps
        final = self.run_dir.checkpoints_dir / str(step)
        final.parent.mkdir(parents=True, exist_ok=True)
        with atomic_dir(final) as tmp:
            self._save_policy(tmp)
            if self.spec.off_policy:
                holdout = self.validation.holdout if self.validation is not None else None
                with holdout.detached() if holdout is not None else contextlib.nullcontext():
                    self.model.save_replay_buffer(tmp / runs.REPLAY)
                trust.record([tmp / runs.REPLAY])
                if holdout is not None:
                    holdout.save(tmp / VALIDATION_FILE)
            write_json_atomic(tmp / runs.STATE, {"step": step, "best_score": _finite(self.best_score),
                                                 "saved_at": runs.now_iso()})
        self.run_dir.prune_checkpoints(self.cfg.train.keep_checkpoints)
        self.run_dir.update_meta(timesteps=step, last_checkpoint=step)
        return final

    def record_video(self) -> None:
        cfg, step = self.cfg, self.model.num_timesteps
        env = make_render_env(self._render_factory, cfg.video.width, cfg.video.height)
        try:
            out = record(model_predictor(self.model, True), env,
                         self.run_dir.videos_dir / f"step_{step:09d}.mp4", frames=cfg.video.length,
                         normalizer=self.vecnorm, seed=cfg.eval.seeds[0])
        finally:
            env.close()
        self.model.logger.record("video/frames", out["frames"])

    def _unfreeze(self) -> None:
        n = self.cfg.algo.init.freeze_layers
        warmstart.set_frozen(self.model, n, False)
        self.frozen = False
        self.model.logger.record("train/unfrozen_layers", n)
        self.model.logger.dump(self.model.num_timesteps)
        message = f"step {self.model.num_timesteps}: unfroze the first {n} actor layers"
        if self.progress is not None and self.progress.bar is not None:
            self.progress.bar.write(message)
        else:
            print(message)


class _TensorBoard(TensorBoardOutputFormat):
    """SB3's TensorBoard writer with a purge step (see ``Trainer._logger``)."""

    def __init__(self, folder: str, purge_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if purge_step is not None:
            _wait_for_a_later_event_file_name(Path(folder))
        self.writer = SummaryWriter(log_dir=folder, purge_step=purge_step)
        self._is_closed = False


def _wait_for_a_later_event_file_name(folder: Path, limit: float = 2.0) -> None:
    """TensorBoard reads a run's event files in name order, and a name starts with the second
    it was created in, then the host and the pid. A resumed run that starts within the same
    second as the attempt it continues (a quick crash) could get a name sorting before that
    attempt's file, and TensorBoard would apply its purge to the wrong events. Wait until a new
    name sorts after every existing one (about a second at most; ``limit`` against clock skew)."""
    existing = max((p.name for p in folder.glob("events.out.tfevents.*")), default=None)
    if existing is None:
        return
    prefix = f"{socket.gethostname()}.{os.getpid()}"
    deadline = time.monotonic() + limit
    while (f"events.out.tfevents.{int(time.time()):010d}.{prefix}" <= existing
           and time.monotonic() < deadline):
        time.sleep(0.05)


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise UserError("logging.wandb.mode needs wandb: pip install 'soccerlab[wandb]'") from None
    return wandb


def _load_vecnormalize(path: Path, venv: VecEnv) -> VecNormalize:
    try:
        return VecNormalize.load(str(path), venv)
    except Exception as exc:  # noqa: BLE001 - a corrupt pickle raises many types
        raise UserError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None


def _device(name: str) -> str:
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available; use auto or cpu")
    return str(get_device(name))


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None

