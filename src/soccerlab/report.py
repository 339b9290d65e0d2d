"""``soccerlab report``: plots, tables and one self-contained HTML file for runs, seed groups and
sweep studies.

Data come from each run's ``evaluations.csv`` (evaluation return, score, competition score per
task) and its TensorBoard events (training-episode scores ``rollout/comp/*``, losses,
throughput). Targets are drawn side by side in every plot: a run as a line, a seed group as the
mean of its runs with a shaded 95 % confidence band, a study as its best trials. Outputs, in
``--out`` (default ``<first target>/report``):

```
<out>/<panel>.png   evaluation.png, competition.png, training_episodes.png, losses.png,
                    throughput.png, study_<name>.png (a study's history and importances)
<out>/report.md     the final table(s) with the plots linked
<out>/report.html   everything in one file: plots and videos embedded as data URIs
```
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soccerlab.errors import UserError
from soccerlab.runs import RunDir, write_text_atomic
from soccerlab.seeds import GROUP_FILE, format_ci, mean_ci, read_evaluations, t975

TOP_TRIALS = 5  # a study's best trials drawn in the plots
VIDEO_LIMIT = 25 * 2**20  # bytes: larger videos are linked, not embedded


# ---------------------------------------------------------------------------------------------
# Reading runs
# ---------------------------------------------------------------------------------------------


@dataclass
class RunData:
    path: Path
    meta: dict[str, Any]
    evals: list[dict[str, float]]
    scalars: dict[str, tuple[np.ndarray, np.ndarray]]

    @property
    def name(self) -> str:
        return self.path.name

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``csv:<column>`` from evaluations.csv, anything else a TensorBoard tag."""
        if key.startswith("csv:"):
            column = key[4:]
            rows = [r for r in self.evals if column in r and math.isfinite(r[column])]
            if not rows:
                return None
            return (np.array([r["step"] for r in rows]), np.array([r[column] for r in rows]))
        return self.scalars.get(key)


def read_run(path: Path) -> RunData:
    run = RunDir.open(path)
    return RunData(run.path, run.read_meta(), read_evaluations(run.path), read_scalars(run.tb_dir))


def read_scalars(tb_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar of a TensorBoard folder (all its event files, last value per step wins)."""
    if not tb_dir.is_dir() or not any(tb_dir.glob("events.out.tfevents.*")):
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get("scalars", []):
        by_step = {e.step: e.value for e in acc.Scalars(tag)}
        steps = np.array(sorted(by_step))
        out[tag] = (steps, np.array([by_step[s] for s in steps], dtype=float))
    return out


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    kind: str  # run | group | study
    path: Path
    label: str
    runs: list[RunData]
    info: dict[str, Any] = field(default_factory=dict)
    study: Any = None
    series: list[tuple[str, list[RunData]]] = field(default_factory=list)  # what the plots draw


def load_target(path_text: str) -> Target:
    path = Path(path_text)
    if not path.is_dir():
        raise UserError(f"report target not found: {path}")
    if (path / GROUP_FILE).is_file():
        info = json.loads((path / GROUP_FILE).read_text())
        runs = [read_run(p.parent) for p in sorted(path.rglob("meta.json"))
                if (p.parent / "config.yaml").is_file()]
        if not runs:
            raise UserError(f"seed group {path} holds no run yet")
        return Target("group", path, path.name, runs, info, series=[(path.name, runs)])
    from soccerlab.sweep import STUDY_FILE, load_study_dir

    if (path / STUDY_FILE).is_file():
        info, study = load_study_dir(path)
        from optuna.trial import TrialState

        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        reverse = info["direction"] == "maximize"
        ranked = sorted(complete, key=lambda t: t.value, reverse=reverse)
        runs, series = [], []
        for t in ranked[:TOP_TRIALS]:
            run_dir = Path(t.user_attrs.get("run_dir", ""))
            if (run_dir / "config.yaml").is_file():
                data = read_run(run_dir)
                runs.append(data)
                series.append((f"{info['study']} trial {t.number}", [data]))
        return Target("study", path, info["study"], runs, info, study, series)
    if (path / "config.yaml").is_file():
        run = read_run(path)
        return Target("run", path, path.name, [run], series=[(path.name, [run])])
    raise UserError(f"{path} is not a run (config.yaml), a seed group ({GROUP_FILE}) "
                    "or a study (study.json)")


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------


def panels(targets: list[Target]) -> dict[str, list[tuple[str, str]]]:
    """Figure name -> [(panel title, series key)], for the keys some run has."""
    runs = [r for t in targets for r in t.runs]
    columns = {k for r in runs for row in r.evals for k in row}
    tags = {k for r in runs for k in r.scalars}
    comp = sorted(c for c in columns if c.startswith("comp/"))
    comp.sort(key=lambda c: c != "comp/overall")
    per_task = sorted(t for t in tags if re.fullmatch(r"eval/[^/]+/mean_reward", t))
    figures = {
        "evaluation": [("evaluation return", "csv:mean_return")]
        + [(f"evaluation return: {t.split('/')[1]}", t) for t in per_task]
        + ([("evaluation score", "csv:score")] if comp else []),
        "competition": [(f"competition score: {c[5:]}", f"csv:{c}") for c in comp],
        "training_episodes": [(f"training episodes: {t[len('rollout/comp/'):]} score", t)
                              for t in sorted(tags) if t.startswith("rollout/comp/")]
        + [("training episode return", t) for t in ["rollout/ep_rew_mean"] if t in tags],
        "losses": [(t, t) for t in sorted(tags)
                   if t.startswith("train/") and ("loss" in t or t == "train/val_td_error")],
        "throughput": [("env steps per second", t) for t in ["time/fps"] if t in tags],
        "search": [(f"{t[len('search/'):].replace('/', ': ')} "
                    f"({'check' if t.endswith('_check') else 'search'} seeds)", t)
                   for t in sorted(tags) if t.startswith("search/")],
    }
    return {name: p for name, p in figures.items() if p}


def band(runs: list[RunData], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Mean over runs and the 95 % CI half-width on a common step grid (None if no run has it)."""
    found = [s for s in (r.series(key) for r in runs) if s is not None and len(s[0])]
    if not found:
        return None
    if len(found) == 1:
        steps, values = found[0]
        return steps, values, np.zeros_like(values)
    end = min(s[0][-1] for s in found)  # where every run has data
    grid = np.unique(np.concatenate([s[0][s[0] <= end] for s in found]))
    stack = np.stack([np.interp(grid, s[0], s[1]) for s in found])
    n = len(found)
    half = t975(n - 1) * stack.std(axis=0, ddof=1) / math.sqrt(n)
    return grid, stack.mean(axis=0), half


def plot_figure(path: Path, title: str, panel_list: list[tuple[str, str]],
                series: list[tuple[str, list[RunData]]], xlabel: str = "env steps") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(panel_list))
    rows = math.ceil(len(panel_list) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (panel_title, key) in zip(axes.flat, panel_list, strict=False):
        drawn = False
        for i, (label, runs) in enumerate(series):
            found = band(runs, key)
            if found is None:
                continue
            steps, mean, half = found
            color = colors[i % len(colors)]
            n = sum(r.series(key) is not None for r in runs)
            name = f"{label} (n={n})" if len(runs) > 1 else label
            few = len(steps) < 12  # a few evaluations: mark the points, or one point is invisible
            ax.plot(steps, mean, color=color, label=name, marker="o" if few else None, markersize=5)
            if len(runs) > 1:
                ax.fill_between(steps, mean - half, mean + half, color=color, alpha=0.2, linewidth=0)
            drawn = True
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(panel_list):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_study(path: Path, target: Target, importances: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    study, info = target.study, target.info
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    ax1.scatter([t.number for t in done], [t.value for t in done], s=18, label="complete")
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax1.scatter([t.number for t in pruned], last, marker="x", color="gray",
                    label="pruned (last report)")
    if done:
        pick = max if info["direction"] == "maximize" else min
        order = sorted(done, key=lambda t: t.number)
        best = [pick(t.value for t in order[:i + 1]) for i in range(len(order))]
        ax1.step([t.number for t in order], best, where="post", color="C3", label="best so far")
    ax1.set_xlabel("trial")
    ax1.set_ylabel(info["objective"])
    ax1.set_title(f"study {info['study']}: trial values")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    if importances:
        names = list(importances)[::-1]
        ax2.barh(names, [importances[n] for n in names], color="C2")
        ax2.set_title("parameter importances")
        ax2.tick_params(axis="y", labelsize=7)
    else:
        ax2.text(0.5, 0.5, "importances need 2+ complete trials", ha="center", va="center",
                 transform=ax2.transAxes)
        ax2.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


Table = tuple[str, list[str], list[list[str]]]  # title, header, rows


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def final_table(targets: list[Target]) -> Table:
    comp = sorted({k for t in targets for r in t.runs for row in r.evals[-1:] for k in row
                   if k.startswith("comp/")})
    header = ["target", "kind", "runs", "steps", "final score", "best score", "final return",
              *comp, "learn s", "steps/s", "status"]
    rows = []
    for t in targets:
        for label, runs in t.series:
            cells = _cells([r for r in runs if r.evals], comp)
            status = ", ".join(sorted({str(r.meta.get("status")) for r in runs}))
            kind = "seed group" if len(runs) > 1 else ("trial" if t.kind == "study" else "run")
            rows.append([label, kind, str(len(runs)), *cells, status])
    return "Final results", header, rows


def _cells(runs: list[RunData], comp: list[str]) -> list[str]:
    def stat(values: list[float]) -> str:
        if not values:
            return "-"
        return _fmt(values[0]) if len(values) == 1 else format_ci(mean_ci(values)).replace(" (95% CI", " (CI")

    def last(r: RunData, key: str) -> float | None:
        return r.evals[-1].get(key) if r.evals else None

    out = [_fmt(max((int(last(r, "step") or 0) for r in runs), default=None)),
           stat([v for r in runs if (v := last(r, "score")) is not None]),
           stat([max(row["score"] for row in r.evals if "score" in row) for r in runs]),
           stat([v for r in runs if (v := last(r, "mean_return")) is not None])]
    out += [stat([v for r in runs if (v := last(r, c)) is not None]) for c in comp]
    out.append(stat([float(r.meta["learn_seconds"]) for r in runs if r.meta.get("learn_seconds")]))
    out.append(stat([float(r.meta["steps_per_second"]) for r in runs if r.meta.get("steps_per_second")]))
    return out


def study_tables(target: Target) -> tuple[list[Table], dict[str, float]]:
    from optuna.trial import TrialState

    study, info = target.study, target.info
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    importances, method = importance(study)
    tables: list[Table] = [(f"Study {info['study']}: trials", ["state", "trials"],
                            [[k, str(v)] for k, v in sorted(counts.items())])]
    if importances:
        tables.append((f"Study {info['study']}: parameter importances ({method})",
                       ["parameter", "importance"], [[k, f"{v:.3f}"] for k, v in importances.items()]))
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    done.sort(key=lambda t: t.value, reverse=info["direction"] == "maximize")
    params = sorted({p for t in done for p in t.params})
    rows = [[str(t.number), _fmt(t.value), *(_fmt(t.params.get(p)) for p in params),
             t.user_attrs.get("run_dir", "-")] for t in done[:10]]
    tables.append((f"Study {info['study']}: best trials ({info['objective']}, {info['value']}, "
                   f"{info['direction']})", ["trial", "value", *params, "run"], rows))
    return tables, importances


def importance(study: Any) -> tuple[dict[str, float], str]:
    """Optuna's parameter importances: fANOVA when scikit-learn is there, else PED-ANOVA."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < 2 or len({t.value for t in done}) < 2:
        return {}, ""
    try:
        import sklearn  # noqa: F401

        evaluator, method = optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA"
    except ImportError:
        evaluator, method = optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return dict(optuna.importance.get_param_importances(study, evaluator=evaluator)), method
        except (RuntimeError, ValueError, ZeroDivisionError):
            return {}, ""


def markdown_table(table: Table) -> str:
    title, header, rows = table
    esc = [[c.replace("|", "\\|") for c in row] for row in [header, *rows]]
    lines = [f"### {title}", "", "| " + " | ".join(esc[0]) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines)


def html_table(table: Table) -> str:
    title, header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<h3>{html.escape(title)}</h3>\n<table><tr>{head}</tr>{body}</table>"


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


_CSS = """body{font-family:sans-serif;margin:24px;color:#222;max-width:1600px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:left}th{background:#f2f2f2}img{max-width:100%;display:block;
margin:8px 0 24px;border:1px solid #eee}video{max-width:480px;margin:4px 12px 16px 0}
.videos{display:flex;flex-wrap:wrap}figure{margin:0}figcaption{font-size:12px;color:#555}"""


def run(targets_text: list[str], out_text: str | None) -> int:
    targets = [load_target(t) for t in targets_text]
    out = Path(out_text) if out_text else targets[0].path / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out}: {exc}") from None
    series = [s for t in targets for s in t.series]
    images: list[tuple[str, Path]] = []
    for name, panel_list in panels(targets).items():
        path = out / f"{name}.png"
        plot_figure(path, name.replace("_", " "), panel_list, series,
                    "search iteration" if name == "search" else "env steps")
        images.append((name.replace("_", " "), path))
    tables = [final_table(targets)]
    for t in targets:
        if t.kind == "study":
            found, importances = study_tables(t)
            tables += found
            path = out / f"study_{t.label}.png"
            plot_study(path, t, importances)
            images.append((f"study {t.label}", path))
    videos = _videos(targets)
    title = "soccerlab report: " + ", ".join(t.label for t in targets)
    write_text_atomic(out / "report.md", _markdown(title, targets, tables, images, videos, out))
    write_text_atomic(out / "report.html", _html(title, targets, tables, images, videos))
    print(markdown_table(tables[0]))
    print(f"\nplots: {', '.join(p.name for _, p in images)}")
    print(f"report: {out / 'report.md'}")
    print(f"html: {out / 'report.html'}")
    return 0


def _videos(targets: list[Target]) -> list[tuple[str, Path]]:
    """The latest video of each run (a study: of its best trial)."""
    found: dict[Path, str] = {}
    for t in targets:
        runs = t.runs[:1] if t.kind == "study" else t.runs
        for r in runs:
            videos = sorted((r.path / "videos").glob("*.mp4"))
            if videos:
                found.setdefault(videos[-1].resolve(), f"{r.name}: {videos[-1].stem}")
    return [(name, path) for path, name in found.items()]


def _markdown(title: str, targets: list[Target], tables: list[Table], images: list[tuple[str, Path]],
              videos: list[tuple[str, Path]], out: Path) -> str:
    parts = [f"# {title}", "", "Targets: " + ", ".join(f"{t.kind} `{t.path}`" for t in targets), ""]
    parts += [markdown_table(t) + "\n" for t in tables]
    parts += [f"![{name}]({p.name})\n" for name, p in images]
    if videos:
        parts.append("Videos: " + ", ".join(f"[{name}]({_rel(p, out)})" for name, p in videos))
    return "\n".join(parts) + "\n"


def _rel(path: Path, out: Path) -> str:
    try:
        return str(path.resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path.resolve())


def _html(title: str, targets: list[Target], tables: list[Table], images: list[tuple[str, Path]],
          videos: list[tuple[str, Path]]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             "<p>" + "<br>".join(f"{t.kind}: <code>{html.escape(str(t.path))}</code>" for t in targets)
             + "</p>"]
    parts += [html_table(t) for t in tables]
    for name, path in images:
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(name)}</h2><img class='plot' alt='{html.escape(name)}' "
                     f"src='data:image/png;base64,{data}'>")
    if videos:
        parts.append("<h2>videos</h2><div class='videos'>")
        for name, path in videos:
            if path.stat().st_size > VIDEO_LIMIT:
                parts.append(f"<p>{html.escape(name)}: {html.escape(str(path))} (too large to embed)</p>")
                continue
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f"<figure><video controls muted src='data:video/mp4;base64,{data}'></video>"
                         f"<figcaption>{html.escape(name)}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
