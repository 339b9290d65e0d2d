"""``soccerlab export``: a soccer run -> a folder that SAI accepts as it is, checked before it exists.

The folder: ``model.pt`` (TorchScript) or ``model.onnx``, ``preprocessor.py``,
``action_function.py``, ``manifest.json`` and ``README.md`` (see ``modules.py`` for the model).
It is built aside and renamed into place only after ``sai_check.py`` ran it, in a fresh Python
process that does not import soccerlab, through the SAI benchmark's loop on every task of the
run and the run's eval seeds, and the per-episode competition scores (and episode lengths) and
the first applied torques equalled soccerlab's own evaluation exactly.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from soccerlab import runs
from soccerlab.config import Config, config_from_dict, load_config
from soccerlab.envs.soccer.behaviour.submission import Preprocessor
from soccerlab.envs.soccer.spec import hide_by_index
from soccerlab.errors import UserError
from soccerlab.export.modules import DeterministicActor, TorqueController, WalkerController
from soccerlab.loading import LoadedPolicy, load_policy

FORMATS = ("torchscript", "onnx")
MODEL_FILES = {"torchscript": "model.pt", "onnx": "model.onnx"}
RECORD_DECISIONS = 5  # first policy decisions whose applied torques must match
# episodes per seed in the check (at least): a second batch checks that one model object plays
# fresh episodes correctly after earlier ones, as the SAI benchmark uses it
MIN_EPISODES = 2
# onnxruntime's matrix kernels round differently from PyTorch's: an ONNX export's torques differ
# in the last bits (measured: 2e-8 N·m at the first step) and its scores from the 6th digit on
# (measured: 1.7e-6 after 279 steps), so ONNX is compared within these; a long or chaotic
# episode can diverge further, and then the check fails (use torchscript, which is exact)
ONNX_TOLERANCE = {"torque": 1e-4, "score": 1e-3}
CHECK = Path(__file__).with_name("sai_check.py")


class ExportCheckFailed(Exception):
    """The exported files do not reproduce soccerlab's evaluation (nothing was written)."""


@dataclass
class ExportResult:
    folder: Path
    manifest: dict[str, Any]
    seconds: float


def export_run(target: str | Path, out: str | Path | None = None, fmt: str = "torchscript",
               force: bool = False, trust_pickle: bool = False,
               progress: Callable[[str], None] | None = None) -> ExportResult:
    """Export TARGET (a soccer run, or a model inside one) into ``out`` (see the module doc);
    ``progress`` receives a line at each stage."""
    note = progress or (lambda _line: None)
    start = time.perf_counter()
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    target = Path(target)
    if target.is_dir():
        run = runs.RunDir.open(target).path  # one line for a folder that is not a run
    elif target.is_file():
        run = runs.run_of_model(target)
        if run is None:
            raise UserError(f"{target} is not inside a soccerlab run; export needs the run's config")
    else:
        raise UserError(f"not found: {target} (expected a soccer run or a model .zip inside one)")
    cfg = load_config(run / "config.yaml")
    if not cfg.env.is_soccer:
        raise UserError(f"export writes SAI soccer submissions; {run} trains {cfg.env.id}")
    if cfg.env.control == "walker" and fmt == "onnx":
        raise UserError("walker control exports as torchscript only: its model keeps per-env "
                        "state between calls (gait phase, walker actions), which ONNX cannot")
    if cfg.env.kick is not None:
        raise UserError("export does not support env.kick yet: the exported walker controller "
                        "has no kick macro (train and evaluate kicks inside soccerlab)")
    folder = Path(out) if out else run / f"submission-{fmt}"
    if folder.exists() and not force:
        raise UserError(f"{folder} already exists; pass --force to replace it")
    loaded = load_policy(target, trust_pickle=trust_pickle)
    torch.set_num_threads(1)
    module, walker_config = build_module(loaded)
    with runs.atomic_dir(folder) as tmp:
        _save_model(module, tmp / MODEL_FILES[fmt], fmt)
        # env.hide is applied inside the model (DeterministicActor), after the controller has
        # read the joints and gravity that the walker needs
        (tmp / "preprocessor.py").write_text(preprocessor_source(cfg.env.observation))
        (tmp / "action_function.py").write_text(action_function_source(cfg.env.control))
        plays = (f"{len(_tasks(cfg))} task(s) x seeds {list(cfg.eval.seeds)} x "
                 f"{check_episodes(cfg)} episode(s)")
        note(f"soccerlab evaluation: {plays}...")
        reference = reference_evaluation(loaded)
        decimation = walker_config.decimation if walker_config is not None else 1
        note(f"SAI-style check in a fresh process: {plays}...")
        observed = run_check(tmp, fmt, cfg, RECORD_DECISIONS * decimation)
        compare(reference, observed, decimation, ONNX_TOLERANCE if fmt == "onnx" else None)
        manifest = _manifest(loaded, run, fmt, reference, walker_config)
        runs.write_json_atomic(tmp / "manifest.json", manifest)
        (tmp / "README.md").write_text(readme_text(manifest))
    return ExportResult(folder, manifest, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class _Predict(nn.Module):
    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy._predict(obs, deterministic=True)


def deterministic_actor(loaded: LoadedPolicy) -> DeterministicActor:
    """The SB3 policy's ``predict(deterministic=True)`` with the normaliser folded in."""
    policy = loaded.model.policy
    policy.set_training_mode(False)
    for p in policy.parameters():
        p.requires_grad_(False)
    obs_dim = int(np.prod(policy.observation_space.shape))
    with torch.no_grad():
        actor = torch.jit.trace(_Predict(policy), torch.zeros(16, obs_dim), check_trace=False)
    norm = loaded.vecnorm
    normalize = norm is not None and norm.norm_obs
    empty = torch.zeros(obs_dim, dtype=torch.float64)
    space = policy.action_space
    hidden = None
    if loaded.cfg.env.hide:  # the columns the training envs' Preprocessor blanks, per task
        hidden = torch.zeros(Preprocessor.NUM_TASKS, obs_dim)
        for task, columns in Preprocessor(hide=hide_by_index(loaded.cfg.env.hide)).hide.items():
            hidden[task, columns] = 1.0
    return DeterministicActor(
        actor,
        torch.as_tensor(norm.mean) if normalize else empty,
        torch.as_tensor(norm.var) if normalize else empty,
        norm.epsilon if norm is not None else 1e-8,
        norm.clip_obs if norm is not None else 10.0,
        normalize,
        torch.as_tensor(space.low), torch.as_tensor(space.high),
        bool(policy.squash_output),
        hidden=hidden, onehot=Preprocessor.OBS_SIZE - Preprocessor.NUM_TASKS,
    )


def build_module(loaded: LoadedPolicy) -> tuple[nn.Module, Any]:
    """The exported module (scripted) and, for walker control, the walker's config."""
    actor = deterministic_actor(loaded)
    limit = time_limit(loaded.cfg)
    if loaded.cfg.env.control != "walker":
        return torch.jit.script(TorqueController(actor, time_limit=limit)), None
    walker = _walker(loaded.cfg)
    module = WalkerController(actor, walker.policy, walker.config, time_limit=limit)
    return torch.jit.script(module), walker.config


def time_limit(cfg: Config) -> int:
    """The time limit the exported model divides its step count by (0: no time feature)."""
    if not cfg.env.time_feature:
        return 0
    if cfg.env.max_episode_steps is not None:
        return int(cfg.env.max_episode_steps)
    from soccerlab.envs.soccer.backends.base import registered_time_limit
    from soccerlab.envs.soccer.behaviour.tasks import get_task

    # the envs' own source (sai-mujoco's registration), not a copy of it
    limits = {registered_time_limit(get_task(t).env_id) for t in _tasks(cfg)}
    if len(limits) != 1:
        raise UserError(f"env.time_feature: the tasks' time limits differ ({sorted(map(str, limits))}); "
                        "set env.max_episode_steps to export one time feature")
    return int(limits.pop())


def _walker(cfg: Config) -> Any:
    """The joystick walker exactly as soccerlab's soccer envs load it for this config."""
    from soccerlab.envs.factory import soccer_spec
    from soccerlab.envs.soccer import load_walker

    return load_walker(soccer_spec(cfg.env).walker, 1)


def _save_model(module: nn.Module, path: Path, fmt: str) -> None:
    if fmt == "torchscript":
        module.save(str(path))
        return
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise UserError("--format onnx needs onnx: pip install 'soccerlab[sai]'") from None
    obs = torch.zeros(2, 89)
    torch.onnx.export(module, (obs,), str(path), input_names=["obs"], output_names=["action"],
                      dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}},
                      opset_version=17, dynamo=False)


# ---------------------------------------------------------------------------------------------
# The code files
# ---------------------------------------------------------------------------------------------


def preprocessor_source(frame: str) -> str:
    """``preprocessor.py``: soccerlab's SAI ``Preprocessor`` (class first, NumPy only) with the
    run's observation frame as its default: SAI constructs it without arguments. (``env.hide``
    is applied inside the model.)"""
    from soccerlab.envs.soccer import submission_source

    source = submission_source()
    if frame == "world":
        return source
    pattern = re.compile(r'def __init__\(self, task_index=None, frame="world", hide=None\):')
    defaults = f'def __init__(self, task_index=None, frame="{frame}", hide=None):'
    source, n = pattern.subn(lambda _: defaults, source)
    if n != 1:
        raise RuntimeError("cannot set the Preprocessor's defaults in submission.py")
    return source


WALKER_ACTION_FUNCTION = '''"""SAI action function of a soccerlab walker export: the model already outputs joint torques
in N·m (PD control inside the model), so they are passed on unchanged."""

import numpy as np


def action_function(policy_output):
    return np.asarray(policy_output, dtype=np.float32)
'''


def action_function_source(control: str) -> str:
    """``action_function.py``: torque control maps [-1, 1] onto the torque bounds as training did
    (SAI's default mapping rounds differently); walker control passes torques through."""
    if control == "walker":
        return WALKER_ACTION_FUNCTION
    from soccerlab.envs.soccer import action_function

    return ('"""SAI action function of a soccerlab torque export (the one the training env used)."""'
            "\n\nimport numpy as np\n\n\n" + inspect.getsource(action_function))


# ---------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------


def _tasks(cfg: Config) -> list[str]:
    from soccerlab.envs.factory import eval_suite

    return [name for name, _ in eval_suite(cfg)]


def reference_evaluation(loaded: LoadedPolicy) -> dict[str, Any]:
    """soccerlab's own deterministic evaluation on the run's eval seeds, plus the torques applied
    after each of the first ``RECORD_DECISIONS`` decisions of the first seed's first episode."""
    from soccerlab.envs.factory import eval_suite, seed_each
    from soccerlab.evaluation import evaluate_config, model_predictor

    cfg = loaded.cfg
    seeds, episodes = list(cfg.eval.seeds), check_episodes(cfg)
    predict = model_predictor(loaded.model, True)
    report = evaluate_config(cfg, predict, seeds, episodes, loaded.vecnorm)
    found = report.episodes
    scores: dict[str, dict[str, dict[str, Any]]] = {
        name: {str(s): {} for s in seeds} for name, _ in eval_suite(cfg)}
    for ep in found:
        per_seed = scores[ep.group][str(ep.seed)]
        record = ep.extra["soccer"]
        per_seed[str(len(per_seed))] = {"score": record["score"], "length": record["length"]}
    sai_cfg = _sai_backend(cfg)
    ctrl = {}
    for name, make in eval_suite(sai_cfg):
        venv = make(1)
        try:
            seed_each(venv, seeds[:1])
            obs = venv.reset()
            data = venv.batch.mujoco(0)[1]
            rows = []
            for _ in range(RECORD_DECISIONS):
                batch = loaded.vecnorm.normalize_obs(obs) if loaded.vecnorm is not None else obs
                obs, _, dones, _ = venv.step(predict(batch))
                rows.append(np.asarray(data.ctrl, dtype=np.float64).tolist())
                if dones[0]:
                    break
            ctrl[name] = rows
        finally:
            venv.close()
    return {"scores": scores, "ctrl": ctrl, "report": report, "seeds": seeds}


def check_episodes(cfg: Config) -> int:
    return max(MIN_EPISODES, cfg.eval.episodes)


def _sai_backend(cfg: Config) -> Config:
    data = cfg.to_dict()
    data["env"]["backend"] = "sai"
    return config_from_dict(data)


def run_check(folder: Path, fmt: str, cfg: Config, record_steps: int) -> dict[str, Any]:
    """Run ``sai_check.py`` on ``folder`` in a fresh, isolated Python process."""
    from soccerlab.envs.soccer import get_task

    make_kwargs = dict(cfg.env.kwargs)
    if cfg.env.max_episode_steps is not None:
        make_kwargs["max_episode_steps"] = cfg.env.max_episode_steps
    tasks = [{"name": t, "env_id": get_task(t).env_id, "index": get_task(t).onehot_index}
             for t in _tasks(cfg)]
    spec = {"folder": str(folder), "model": MODEL_FILES[fmt], "format": fmt,
            "seeds": list(cfg.eval.seeds), "episodes": check_episodes(cfg),
            "record_steps": record_steps, "make_kwargs": make_kwargs, "tasks": tasks}
    with tempfile.TemporaryDirectory(prefix="soccerlab-check-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec))
        proc = subprocess.run([sys.executable, "-I", str(CHECK), str(spec_file)],
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no output)"]
        where = [line.strip() for line in lines if line.strip().startswith("File ")][-1:]
        raise ExportCheckFailed(f"the SAI-style check of the export crashed: {lines[-1]}"
                                + (f" ({where[0]})" if where else ""))
    observed = json.loads(proc.stdout.strip().splitlines()[-1])
    if observed["modules"]["soccerlab"]:
        raise ExportCheckFailed("the SAI-style check imported soccerlab: the export is not "
                                "self-contained")
    return observed


def compare(reference: dict[str, Any], observed: dict[str, Any], decimation: int,
            tolerance: dict[str, float] | None = None) -> None:
    """ExportCheckFailed, naming the first difference, unless episode lengths are equal and the
    scores and first applied torques are equal (within ``tolerance`` where given: ONNX)."""
    tol = tolerance or {"torque": 0.0, "score": 0.0}
    from soccerlab.envs.soccer import episode_score

    for task, per_seed in reference["scores"].items():
        got = observed["tasks"][task]
        for seed, eps in per_seed.items():
            i = reference["seeds"].index(int(seed))
            for k, want in eps.items():
                ep = got["batches"][int(k)][i]
                if ep["terms"] is None:
                    raise ExportCheckFailed(f"{task}, seed {seed}, episode {k}: no episode end "
                                            "in the SAI-style loop")
                score = episode_score(ep["terms"], task)[0]
                if abs(score - want["score"]) > tol["score"] or ep["length"] != want["length"]:
                    raise ExportCheckFailed(
                        f"{task}, seed {seed}, episode {k}: the exported files score {score!r} "
                        f"in {ep['length']} steps under the SAI loop, soccerlab eval "
                        f"{want['score']!r} in {want['length']} steps")
        ctrl = got["ctrl"]
        for j, want_row in enumerate(reference["ctrl"][task]):
            step = (j + 1) * decimation - 1
            if step >= len(ctrl) or not np.allclose(np.float32(ctrl[step]), np.float32(want_row),
                                                    rtol=0.0, atol=tol["torque"]):
                raise ExportCheckFailed(
                    f"{task}: the torques applied at env step {step + 1} differ from soccerlab's "
                    f"(max difference {_max_diff(ctrl, step, want_row)})")


def _max_diff(ctrl: list, step: int, want: list) -> str:
    if step >= len(ctrl):
        return "missing"
    return f"{float(np.max(np.abs(np.asarray(ctrl[step]) - np.asarray(want)))):.3g}"


# ---------------------------------------------------------------------------------------------
# Manifest and README
# ---------------------------------------------------------------------------------------------


def _step_of(loaded: LoadedPolicy, run: Path) -> int | None:
    folder = loaded.path.parent
    if (folder / runs.METRICS).is_file():
        return int(json.loads((folder / runs.METRICS).read_text())["step"])
    if folder.name.isdigit():
        return int(folder.name)
    return runs.RunDir(run).read_meta().get("timesteps")


def _manifest(loaded: LoadedPolicy, run: Path, fmt: str, reference: dict[str, Any],
              walker_config: Any) -> dict[str, Any]:
    from soccerlab.export import sai_versions

    cfg = loaded.cfg
    comp = reference["report"].competition
    env = cfg.env
    return {
        "source": {"run": str(run.resolve()), "model": str(loaded.path.resolve()),
                   "step": _step_of(loaded, run)},
        "format": fmt,
        "model": MODEL_FILES[fmt],
        "preprocessor": "preprocessor.py",
        "action_function": "action_function.py",
        "algorithm": cfg.algo.name,
        "tasks": list(reference["scores"]),
        "observation": {"frame": env.observation, "size": 89, "hide": dict(env.hide),
                        "time_feature": (None if not env.time_feature else
                                         {"time_limit": time_limit(cfg)})},
        "control": env.control,
        "walker": None if walker_config is None else {
            "path": env.walker.path, "decimation": walker_config.decimation,
            "command_ranges": np.asarray(walker_config.command_ranges).tolist()},
        "normalised": loaded.vecnorm is not None and loaded.vecnorm.norm_obs,
        "model_output": ("joint torques in N·m" if env.control == "walker"
                         else "actions in [-1, 1], mapped onto the torque bounds by action_function.py"),
        "versions": {**runs.versions(), **sai_versions()},
        "check": {"seeds": list(cfg.eval.seeds), "episodes": check_episodes(cfg),
                  "max_episode_steps": env.max_episode_steps, "deterministic": True,
                  "first_decisions_compared": RECORD_DECISIONS,
                  "tolerance": ONNX_TOLERANCE if fmt == "onnx" else "exact"},
        "scores": {"tasks": {t: v["mean_score"] for t, v in comp["tasks"].items()},
                   "overall": comp["overall"]["score"],
                   "episodes": reference["scores"]},
    }


WALKER_NOTE = """
The model is stateful: call it once per env step on the whole batch. Per row it keeps the tick
counter, gait phase, the walker's previous actions, held joint targets and the held command,
and a row starts a new episode when its 12 joint velocities (`obs[:, 12:24]`) are all exactly
zero (how every sai-mujoco soccer env starts an episode) or when the batch size changes.
"""


def readme_text(manifest: dict[str, Any]) -> str:
    scores = "\n".join(f"| {t} | {s:.3f} |" for t, s in manifest["scores"]["tasks"].items())
    model = manifest["model"]
    model_type = "onnx" if manifest["format"] == "onnx" else "pytorch"
    return f"""# SAI submission exported by soccerlab

From `{manifest['source']['model']}` (step {manifest['source']['step']}), {manifest['control']}
control, `{manifest['observation']['frame']}` observation frame.

| file | what |
|---|---|
| `{model}` | the policy{' with the joystick walker and its PD loop' if manifest['control'] == 'walker' else ''}, normaliser folded in, deterministic actions; output: {manifest['model_output']} |
| `preprocessor.py` | raw observation + info -> the 89-dim observation the policy trained on (NumPy only; the task one-hot from `info["task_index"]`) |
| `action_function.py` | policy output -> torques for the env |
| `manifest.json` | source run, versions, and the scores measured at export |
{WALKER_NOTE if manifest['control'] == 'walker' else ''}
## Submit

With `soccerlab[sai]` installed and an SAI API key (`sai login` or `SAI_API_KEY`):

    soccerlab submit THIS_FOLDER --name NAME

or with sai-rl directly:

```python
from sai_rl import SAIClient

sai = SAIClient(comp_id="booster-soccer-showdown")
sai.submit("NAME", "{model}", model_type="{model_type}",
           preprocessor_class="preprocessor.py", action_function="action_function.py")
```

## Scores at export

soccerlab's deterministic evaluation on seeds {manifest['check']['seeds']}, {manifest['check']['episodes']}
episode(s) per seed; the same files run through the SAI benchmark's loop (gymnasium vector env,
autoreset disabled, one model across batches, one-hot `task_index`) in a process without
soccerlab gave exactly these scores:

| task | competition score |
|---|---|
{scores}
| overall | {manifest['scores']['overall']:.3f} |
"""
