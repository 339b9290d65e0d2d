"""Search a trained policy's deterministic score directly (``soccerlab search``).

RL follows the stochastic policy's return. The competition scores the deterministic policy,
whose outcome can flip with centimetres of timing (a goal, a blocked ball, a ball out), so a
policy that RL cannot improve any more may still be improved on the score itself. This is
basic random search with antithetic pairs (Mania et al. 2018, "Simple random search provides
a competitive approach to reinforcement learning"), over a small part of the policy:

    theta <- theta + step / (pairs * std(r)) * sum_k (r(theta + noise d_k) - r(theta - noise d_k)) d_k

where ``r`` is the deterministic evaluation score (soccer: the competition score; other envs:
the mean return) on the search seeds, and ``d_k`` are standard normal directions. The best
candidate seen is kept, not the last ``theta``.

Keeping the best of many candidates rewards luck on the search seeds where each seed draws a
new episode (kick_to_target's ball and target): a candidate a few lucky episodes lift above
the others is kept, and it plays other seeds no better, or worse. With ``check_seeds``, a
candidate that beats the kept one on the search seeds is also played on the check seeds, and
it replaces the kept one only if it beats it there too (the start is played on them once).
Only such candidates cost check episodes, and ``history`` records what they scored.

What is searched (``space``):

- ``last-layer``: the action layer's weights and bias; ``noise`` and ``step`` are relative to
  the weights' standard deviation. Any env, any actor with an ``action_net`` (PPO, A2C).
- ``task`` (soccer, several tasks): for each task, a shift ``delta`` of the actor's first
  hidden pre-activations that applies only while that task is played, scored on that task
  alone; ``noise`` and ``step`` are in pre-activation units. The observation holds the task
  one-hot; ``isolate_tasks`` first moves the normaliser's one-hot means to 0 (the first bias
  absorbs the difference), so that task k's normalised input is exactly 0 in the other tasks'
  episodes and a constant ``on`` in its own. Adding ``delta / on`` to its weight column then
  shifts task k's pre-activations by ``delta`` and leaves every other task's computation bit
  for bit as it was: the per-task searches add up, and each candidate costs one task's
  episodes instead of all. Each task draws its own directions (seeded by ``seed`` and the
  task), so ``jobs`` processes searching tasks side by side give the same result as one.

TARGET is a run (its best model, else its final one) or a model .zip inside one (a checkpoint,
or a BC run's ``dagger/round-R/model.zip``). The output is a copy of the run (without
checkpoints, DAgger rounds, TensorBoard files or submissions) whose policy model holds the best
weights, plus ``search.json``: the settings, every iteration's
scores, and the score on the run's evaluation seeds before and after, per task; its ``tb/``
holds the search's curves (``write_curves``), which ``soccerlab report`` plots. Choose search
seeds that differ from the evaluation seeds (the default does) so that the reported gain is
measured on episodes the search never saw. ``eval``, ``play`` and ``export`` take the copy like
any run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soccerlab.config import Config, config_from_dict
from soccerlab.errors import UserError
from soccerlab.runs import MODEL, VECNORM, VECNORM_NPZ, RunDir, run_of_model
from soccerlab.training.search_settings import SPACES, SearchSettings


@dataclass
class Params:
    """A searchable slice of a policy: ``apply(theta)`` writes it, ``theta0`` is where the
    search starts, ``scale`` converts relative noise and step into parameter units."""

    apply: Callable[[np.ndarray], None]
    theta0: np.ndarray
    scale: float


@dataclass
class SearchResult:
    best_score: float
    best_theta: np.ndarray
    found_at: int  # iteration (1-based, as printed and plotted) of the best; 0: the start
    history: list[dict[str, Any]] = field(default_factory=list)
    best_check: float | None = None  # the kept candidate's score on the check seeds


def random_search(score: Callable[[np.ndarray], float], params: Params,
                  settings: SearchSettings, rng: np.random.Generator,
                  progress: Callable[[str], None] = lambda line: None,
                  label: str = "",
                  check: Callable[[np.ndarray], float] | None = None) -> SearchResult:
    """Basic random search of ``score`` around ``params.theta0`` (module docstring). The
    history holds, per iteration, every candidate's score and the best so far; with ``check``
    (the score on the check seeds) also the check scores of the candidates that needed one."""
    theta = params.theta0.copy()
    noise = settings.noise * params.scale
    start = time.perf_counter()
    result = SearchResult(score(theta), theta.copy(), 0)
    result.history.append({"iteration": 0, "score": result.best_score})  # the start
    if check is not None:
        result.best_check = check(theta)
        result.history[0]["check"] = result.best_check
    progress(f"{label}start: {result.best_score:+.3f}"
             + (f" (check seeds {result.best_check:+.3f})" if check is not None else ""))
    for it in range(settings.iterations):
        dirs = rng.normal(size=(settings.pairs, theta.size))
        plus = [score(theta + noise * d) for d in dirs]
        minus = [score(theta - noise * d) for d in dirs]
        checked = []  # (plus or minus, k, check score) of the candidates played on check seeds
        for values, sign in ((plus, 1.0), (minus, -1.0)):
            for k, value in enumerate(values):
                if value <= result.best_score:
                    continue
                candidate = theta + sign * noise * dirs[k]
                if check is not None:
                    on_check = check(candidate)
                    checked.append(["plus" if sign > 0 else "minus", k, on_check])
                    if on_check <= result.best_check:
                        continue
                    result.best_check = on_check
                result.best_score = value
                result.best_theta = candidate
                result.found_at = it + 1
        spread = float(np.std(plus + minus)) or 1.0
        theta = theta + settings.step * params.scale / (settings.pairs * spread) * np.einsum(
            "k,kn->n", np.asarray(plus) - np.asarray(minus), dirs)
        row = {"iteration": it + 1, "plus": plus, "minus": minus, "best": result.best_score,
               "seconds": round(time.perf_counter() - start, 1)}
        if check is not None:
            row.update(checked=checked, best_check=result.best_check)
        result.history.append(row)
        progress(f"{label}iteration {it + 1}/{settings.iterations}: candidates "
                 f"{min(plus + minus):+.3f} .. {max(plus + minus):+.3f}, best "
                 f"{result.best_score:+.3f}"
                 + (f" (check seeds {result.best_check:+.3f})" if check is not None else "")
                 + f" ({time.perf_counter() - start:.0f} s)")
    return result


def last_layer(model: Any) -> Params:
    """The action layer (weights, then bias) of an actor-critic policy."""
    layer = getattr(model.policy, "action_net", None)
    if not isinstance(layer, torch.nn.Linear):
        raise UserError("space last-layer needs a policy with an action_net layer "
                        "(PPO, A2C); this algorithm's policy has none")
    theta0 = torch.cat([layer.weight.detach().flatten(), layer.bias.detach()]).double().numpy()

    def apply(theta: np.ndarray) -> None:
        w = torch.as_tensor(theta, dtype=layer.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(w[: layer.weight.numel()].view_as(layer.weight))
            layer.bias.copy_(w[layer.weight.numel():])

    return Params(apply, theta0, float(np.std(theta0)) or 1.0)


def first_actor_layer(model: Any) -> torch.nn.Linear:
    net = getattr(getattr(model.policy, "mlp_extractor", None), "policy_net", None)
    first = net[0] if isinstance(net, torch.nn.Sequential) and len(net) else None
    if not isinstance(first, torch.nn.Linear):
        raise UserError("space task needs an actor whose first layer is linear (PPO, A2C "
                        "MlpPolicy with a hidden layer)")
    return first


def onehot_columns() -> list[int]:
    """Where the task one-hot sits in the soccer observation (the time feature comes after)."""
    from soccerlab.envs.soccer.behaviour.observation import observation_slices

    block = observation_slices()["task_onehot"]
    return list(range(block.start, block.stop))


def isolate_tasks(model: Any, normalizer: Any) -> None:
    """Re-express the actor so that each task one-hot input is exactly 0 off its task.

    The normaliser maps a one-hot slot to ``(x - m) / s``: a nonzero constant in the other
    tasks' episodes, so any change of that slot's weights would reach them through float
    rounding, and rounding alone flips chaotic soccer outcomes (measured: a goalie-only search
    moved obstacle on seeds 0-9 from +1.066 to +0.926). Setting the slot's mean to 0 makes it
    exactly 0 there; the first bias takes the difference, ``-W[:, slot] * m / s``. This moves
    every task's pre-activations by float rounding once, before any search starts."""
    if normalizer is None or not normalizer.norm_obs:
        return  # the raw one-hot is already exactly 0 off its task
    first = first_actor_layer(model)
    mean, var = normalizer.mean, normalizer.var
    cols = [c for c in onehot_columns() if mean[c] != 0.0]  # 0: a task the run never saw
    s = np.sqrt(var[cols] + normalizer.epsilon)
    if np.any(np.maximum(1.0 + np.abs(mean[cols]), 1.0) / s >= normalizer.clip_obs):
        raise UserError("space task: the normaliser clips the task one-hot (its variance is "
                        "tiny): the tasks cannot be singled out exactly")
    with torch.no_grad():
        w = first.weight[:, cols].double()
        first.bias.copy_((first.bias.double() - w @ torch.as_tensor(mean[cols] / s)).float())
    mean[cols] = 0.0


def task_shift(model: Any, normalizer: Any, task: str) -> Params:
    """A first-layer pre-activation shift that only ``task``'s episodes see (module docstring),
    after ``isolate_tasks``: ``delta / on`` is added to the task's one-hot weight column, which
    meets an exact 0 in every other task's episodes. ``apply`` adds to the layer's weights as
    they were when this was called; theta starts at 0."""
    from soccerlab.envs.soccer.behaviour.tasks import get_task

    index = get_task(task).onehot_index
    if index is None:
        raise UserError(f"task {task} has no one-hot slot: space task cannot single it out")
    first = first_actor_layer(model)
    column = onehot_columns()[index]
    probe = np.zeros((2, first.weight.shape[1]), dtype=np.float32)
    probe[0, column] = 1.0
    if normalizer is not None:
        probe = normalizer.normalize_obs(probe)
    on, off = float(probe[0, column]), float(probe[1, column])
    if off != 0.0 or on <= 0.0:
        raise ValueError(f"task one-hot maps to {off} off its task: call isolate_tasks first")
    w0 = first.weight.detach().clone()

    def apply(delta: np.ndarray) -> None:
        d = torch.as_tensor(delta, dtype=w0.dtype)
        with torch.no_grad():
            first.weight.copy_(w0)
            first.weight[:, column] += d / on

    return Params(apply, np.zeros(first.weight.shape[0]), 1.0)


def _with_tasks(cfg: Config, tasks: Sequence[str]) -> Config:
    data = cfg.to_dict()
    data["env"]["tasks"] = {t: 1.0 for t in tasks}
    return config_from_dict(data)


def _scorer(params: Params, cfg: Config, predict: Any, seeds: Sequence[int],
            normalizer: Any) -> Callable[[np.ndarray], float]:
    """theta -> the deterministic score of the policy with ``params`` set to theta."""
    def score(theta: np.ndarray) -> float:
        params.apply(theta)
        return _evaluate(cfg, predict, seeds, normalizer)["score"]

    return score


def _scorers(params: Params, cfg: Config, predict: Any, settings: SearchSettings,
             normalizer: Any) -> tuple[Callable[[np.ndarray], float],
                                       Callable[[np.ndarray], float] | None]:
    """The scores on the search seeds and (None without them) on the check seeds."""
    check = (_scorer(params, cfg, predict, settings.check_seeds, normalizer)
             if settings.check_seeds else None)
    return _scorer(params, cfg, predict, settings.seeds, normalizer), check


def _evaluate(cfg: Config, predict: Any, seeds: Sequence[int], normalizer: Any) -> dict[str, Any]:
    """Overall score and (soccer) the per-task mean scores of deterministic episodes."""
    from soccerlab.evaluation import evaluate_config

    report = evaluate_config(cfg, predict, seeds, 1, normalizer)
    comp = report.competition
    tasks = {t: v["mean_score"] for t, v in comp["tasks"].items()} if comp else {}
    return {"score": report.score, "tasks": tasks}


def search_run(target: str | Path, out: str | Path, settings: SearchSettings,
               walker: str | None = None, trust_pickle: bool = False,
               progress: Callable[[str], None] = print) -> dict[str, Any]:
    """``soccerlab search RUN --out DIR``: search RUN's policy, write the copy to DIR."""
    target, out = Path(target), Path(out)
    if out.exists():
        raise UserError(f"--out {out} exists: choose a new folder (nothing is overwritten)")
    run = run_of(target)
    if out.resolve().is_relative_to(run.resolve()):
        raise UserError(f"--out {out} is inside the run {run}: choose a folder outside it")
    if settings.space not in SPACES:
        raise UserError(f"unknown space {settings.space!r} (spaces: {', '.join(SPACES)})")
    if settings.iterations < 1 or settings.pairs < 1 or settings.noise <= 0 or settings.step < 0:
        raise UserError("iterations and pairs must be >= 1, noise > 0 and step >= 0")
    if not settings.seeds:
        raise UserError("give at least one search seed")
    shared = sorted(set(settings.seeds) & set(settings.check_seeds))
    if shared:
        raise UserError(f"--check-seeds must differ from --seeds (both hold "
                        f"{', '.join(map(str, shared[:5]))}{' ...' if len(shared) > 5 else ''})")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small policy: more threads only contend with the envs
    try:
        return _search(target, run, out, settings, walker, trust_pickle, progress)
    finally:
        torch.set_num_threads(threads)


def run_of(target: Path) -> Path:
    """The run directory TARGET is or holds a model of (a .zip up to three folders deep, e.g.
    ``RUN/dagger/round-5/model.zip``)."""
    if target.is_dir():
        return target
    run = run_of_model(target) if target.is_file() and target.suffix == ".zip" else None
    if run is not None:
        return run
    raise UserError(f"{target} is not a run directory or a model .zip inside one (search "
                    "writes a copy of a run)")


def _prepare(target: Path, walker: str | None, trust_pickle: bool) -> tuple[Any, Config]:
    """The run's policy and its config for searching (soccer: the fast backend)."""
    from soccerlab.loading import load_policy

    loaded = load_policy(target, trust_pickle=trust_pickle)
    data = loaded.cfg.to_dict()
    if loaded.cfg.env.is_soccer:
        if walker:
            data["env"]["walker"]["path"] = walker
        data["env"]["backend"] = "fast"  # bit-identical to sai-mujoco, several times faster
    elif walker:
        raise UserError("--walker applies to soccer runs under walker control")
    return loaded, config_from_dict(data)


def _task_rng(settings: SearchSettings, task: str) -> np.random.Generator:
    """Each task's own directions, so results do not depend on the order or on ``jobs``."""
    from soccerlab.envs.soccer.behaviour.tasks import get_task

    return np.random.default_rng([settings.seed, get_task(task).onehot_index])


def _search_task(model: Any, normalizer: Any, cfg: Config, task: str, settings: SearchSettings,
                 progress: Callable[[str], None]) -> tuple[np.ndarray, dict[str, Any]]:
    """One task's search on an isolated policy (``isolate_tasks``): (best delta, summary)."""
    from soccerlab.evaluation import model_predictor

    params = task_shift(model, normalizer, task)
    score, check = _scorers(params, _with_tasks(cfg, [task]),
                            model_predictor(model, deterministic=True), settings, normalizer)
    found = random_search(score, params, settings, _task_rng(settings, task), progress,
                          label=f"{task}: ", check=check)
    params.apply(params.theta0)
    return found.best_theta, _summary(found)


def _task_worker(target: str, walker: str | None, trust_pickle: bool, task: str,
                 settings: SearchSettings) -> tuple[str, np.ndarray, dict[str, Any]]:
    """``jobs`` > 1: one task's search in its own process, from the run on disk."""
    torch.set_num_threads(1)
    loaded, cfg = _prepare(Path(target), walker, trust_pickle)
    isolate_tasks(loaded.model, loaded.vecnorm)
    parent = os.getppid()
    delta, summary = _search_task(loaded.model, loaded.vecnorm, cfg, task, settings,
                                  lambda line: worker_progress(parent, line))
    return task, delta, summary


def worker_progress(parent: int, line: str) -> None:
    """Print a worker's progress line, or end the worker when the search that started it is
    gone (killed: its pool cannot stop it, and it would search on alone for nobody)."""
    if os.getppid() != parent:
        os._exit(1)
    print(line, flush=True)


def _search(target: Path, run: Path, out: Path, settings: SearchSettings, walker: str | None,
            trust_pickle: bool, progress: Callable[[str], None]) -> dict[str, Any]:
    from soccerlab.evaluation import model_predictor

    loaded, cfg = _prepare(target, walker, trust_pickle)
    run_tasks = [t for t, w in (cfg.env.tasks or {}).items() if w > 0]
    if settings.space == "task":
        if not cfg.env.is_soccer or len(run_tasks) < 2:
            raise UserError("space task needs a soccer run with several tasks (env.tasks)")
        tasks = list(settings.tasks or run_tasks)
        unknown = [t for t in tasks if t not in run_tasks]
        if unknown:
            raise UserError(f"--tasks {', '.join(unknown)}: the run's tasks are "
                            f"{', '.join(run_tasks)}")
    elif settings.tasks:
        raise UserError("--tasks applies to space task")

    model, normalizer = loaded.model, loaded.vecnorm
    predict = model_predictor(model, deterministic=True)
    report_seeds = list(cfg.eval.seeds)
    started = time.perf_counter()
    before = _evaluate(cfg, predict, report_seeds, normalizer)
    progress(f"before: {before['score']:+.3f} on the run's eval seeds {report_seeds}")
    searches: dict[str, Any] = {}
    isolated = None  # space task: the score once the one-hot is re-expressed (isolate_tasks)

    if settings.space == "last-layer":
        params = last_layer(model)
        score, check = _scorers(params, cfg, predict, settings, normalizer)
        found = random_search(score, params, settings, np.random.default_rng(settings.seed),
                              progress, check=check)
        params.apply(found.best_theta)
        searches["all"] = _summary(found)
    else:
        isolate_tasks(model, normalizer)
        # rounding alone can flip a chaotic episode: the per-task searches start from here
        isolated = _evaluate(cfg, predict, report_seeds, normalizer)
        progress(f"task one-hot re-expressed (float rounding only): {isolated['score']:+.3f} "
                 "on the eval seeds")
        if settings.jobs > 1 and len(tasks) > 1:
            per_task = _run_parallel(target, walker, trust_pickle, tasks, settings)
        else:
            per_task = {task: _search_task(model, normalizer, cfg, task, settings, progress)
                        for task in tasks}
        # the shifts meet exact zeros in each other's episodes: they add up as they are
        for task in tasks:
            delta, searches[task] = per_task[task]
            task_shift(model, normalizer, task).apply(delta)
    after = _evaluate(cfg, predict, report_seeds, normalizer)
    progress(f"after: {after['score']:+.3f} on the run's eval seeds {report_seeds}")
    result = {"source": str(loaded.path), "settings": asdict(settings),
              "report_seeds": report_seeds, "before": before, "isolated": isolated,
              "after": after,
              "searches": searches, "seconds": round(time.perf_counter() - started, 1)}
    _write_copy(run, out, loaded.path, model, normalizer, result)
    return result


def _run_parallel(target: Path, walker: str | None, trust_pickle: bool, tasks: list[str],
                  settings: SearchSettings) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # no forked torch or MuJoCo state
    with ProcessPoolExecutor(min(settings.jobs, len(tasks)), mp_context=context) as pool:
        futures = [pool.submit(_task_worker, str(target), walker, trust_pickle, task, settings)
                   for task in tasks]
        results = [f.result() for f in futures]
    return {task: (delta, summary) for task, delta, summary in results}


def _summary(found: SearchResult) -> dict[str, Any]:
    summary = {"start": found.history[0]["score"], "best": found.best_score,
               "found_at_iteration": found.found_at, "history": found.history}
    if found.best_check is not None:
        summary.update(start_check=found.history[0]["check"], best_check=found.best_check)
    return summary


def write_curves(folder: Path, searches: dict[str, Any]) -> None:
    """TensorBoard scalars per search (``all`` or a task), x axis the iteration (0: the start):
    ``search/<name>/best`` (best score so far on the search seeds),
    ``search/<name>/candidates`` (the mean of the iteration's candidates) and, with check
    seeds, ``search/<name>/best_check`` (the kept candidate's score on them)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(folder))
    try:
        for name, found in searches.items():
            for row in found["history"]:
                step = row["iteration"]
                if step == 0:
                    writer.add_scalar(f"search/{name}/best", row["score"], 0)
                    writer.add_scalar(f"search/{name}/candidates", row["score"], 0)
                    if "check" in row:
                        writer.add_scalar(f"search/{name}/best_check", row["check"], 0)
                    continue
                writer.add_scalar(f"search/{name}/best", row["best"], step)
                if "best_check" in row:
                    writer.add_scalar(f"search/{name}/best_check", row["best_check"], step)
                writer.add_scalar(f"search/{name}/candidates",
                                  float(np.mean(row["plus"] + row["minus"])), step)
    finally:
        writer.close()


def _write_copy(run: Path, out: Path, model_path: Path, model: Any, normalizer: Any,
                result: dict[str, Any]) -> None:
    """Copy ``run`` to ``out`` with the searched weights (and, after ``isolate_tasks``, the
    normaliser statistics) in place of the policy model's, built aside and renamed into place,
    so a crash leaves no half-written run."""
    from soccerlab import normalizer as stats_file

    source, tmp = RunDir(run), RunDir(out.with_name(f".{out.name}.tmp-{os.getpid()}"))
    shutil.rmtree(tmp.path, ignore_errors=True)
    try:
        shutil.copytree(source.path, tmp.path, ignore=shutil.ignore_patterns(
            source.checkpoints_dir.name, source.dagger_dir.name, source.tb_dir.name,
            "submission-*", "report"))
        relative = model_path.resolve().relative_to(source.path.resolve())
        if relative not in (Path(MODEL), Path(source.best_dir.name, MODEL)):
            # a checkpoint, a DAgger round: the searched weights become the copy's model
            if (model_path.parent / VECNORM_NPZ).is_file():
                shutil.copy2(model_path.parent / VECNORM_NPZ, tmp.path / VECNORM_NPZ)
            relative = Path(MODEL)
        searched = tmp.path / relative
        model.save(str(searched))
        # The copy's other final model (root model.zip beside best/) would be the unsearched
        # policy under the searched run's name: drop it (best/: with its metrics).
        if tmp.model_file.is_file() and tmp.model_file != searched:
            for name in (MODEL, VECNORM_NPZ, VECNORM):  # with that model's normaliser
                (tmp.path / name).unlink(missing_ok=True)
        if tmp.best_dir.is_dir() and searched.parent != tmp.best_dir:
            shutil.rmtree(tmp.best_dir)
        stats = searched.parent / VECNORM_NPZ
        if normalizer is not None and getattr(normalizer, "shape", None) and stats.is_file():
            stats_file.write_obs_mean(stats, normalizer.mean)
            # the pickled copy of the old statistics would now disagree; the npz is what
            # eval, play, export and warm starts read
            (stats.parent / VECNORM).unlink(missing_ok=True)
        (tmp.path / "search.json").write_text(json.dumps(result, indent=1) + "\n")
        write_curves(tmp.tb_dir, result["searches"])
        os.replace(tmp.path, out)
    finally:
        shutil.rmtree(tmp.path, ignore_errors=True)
