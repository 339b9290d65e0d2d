"""soccerlab sweep: the sweep: section, bad input, trials as runs, pruning, continuing, storages."""

import json
import socket
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import one_line_error, pendulum_config, write_config
from soccerlab.config import config_from_dict
from soccerlab.errors import UserError

SPACE = {
    "algo.params.learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
    "algo.params.n_epochs": {"type": "int", "low": 1, "high": 3},
    "algo.policy_kwargs.net_arch": {"type": "categorical", "choices": [[16], [32, 32]]},
}


def sweep_config(out: Path, **sweep) -> dict:
    cfg = pendulum_config(out, "ppo")
    cfg["sweep"] = {"params": SPACE, "startup_trials": 1, "heartbeat": 1, **sweep}
    return cfg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The sweep: section
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        ({"algo.parms.learning_rate": {"type": "float", "low": 0.1, "high": 1}},
         ["unknown key path 'algo.parms.learning_rate'", "did you mean 'params'"]),
        ({"train.total_timestep": {"type": "int", "low": 1, "high": 5}},
         ["unknown key path", "total_timesteps"]),
        ({"train.total_timesteps.x": {"type": "int", "low": 1, "high": 5}}, ["is not a section"]),
        ({"sweep.seed": {"type": "int", "low": 1, "high": 5}}, ["cannot sweep"]),
        ({"experiment.name": {"type": "categorical", "choices": ["a"]}}, ["cannot sweep"]),
        ({"algo.params.learning_rate": {"type": "float", "low": 0.1, "high": 0.01}}, ["empty range"]),
        ({"algo.params.n_epochs": {"type": "int", "low": 3, "high": 3}}, ["empty range"]),
        ({"algo.params.batch_size": {"type": "categorical", "choices": []}}, ["empty choices"]),
        ({"algo.params.batch_size": {"type": "categorical", "choice": [1]}},
         ["unknown key", "did you mean 'choices'"]),
        ({"algo.params.learning_rate": {"type": "float", "low": 0, "high": 1, "log": True}},
         ["low > 0"]),
        ({"algo.params.gamma": {"type": "normal", "low": 0, "high": 1}}, ["type"]),
    ],
)
def test_bad_sweep_section_names_the_problem(params, fragments):
    with pytest.raises(UserError) as err:
        config_from_dict({"env": {"id": "Pendulum-v1"}, "sweep": {"params": params}})
    for fragment in fragments:
        assert fragment in str(err.value)


def test_sweep_section_is_ignored_by_train_and_checked_for_objective():
    cfg = config_from_dict({"env": {"id": "Pendulum-v1"}, "sweep": {"params": SPACE}})
    assert cfg.sweep.objective == "auto" and cfg.sweep.pruner == "median"
    with pytest.raises(UserError, match="sweep.objective"):
        config_from_dict({"env": {"id": "Pendulum-v1"}, "sweep": {"objective": "comp/overall"}})
    soccer = {"env": {"tasks": {"kick_to_target": 1}}, "sweep": {"objective": "comp/kick_to_target"}}
    assert config_from_dict(soccer).sweep.objective == "comp/kick_to_target"


def test_bad_sweep_input_is_one_line_exit_2(tmp_path, cli):
    out = tmp_path / "runs"
    bad_path = sweep_config(out)
    bad_path["sweep"]["params"] = {"algo.params.learning_rat": {"type": "float", "low": 0.1, "high": 1}}
    one_line_error(cli("sweep", write_config(tmp_path / "a.yaml", bad_path)),
                   "unknown key path 'algo.params.learning_rat'", "learning_rate")
    empty = sweep_config(out)
    empty["sweep"]["params"] = {"algo.params.learning_rate": {"type": "float", "low": 0.1, "high": 0.1}}
    one_line_error(cli("sweep", write_config(tmp_path / "b.yaml", empty)), "empty range")
    bad_value = sweep_config(out)
    bad_value["sweep"]["params"] = {"env.n_envs": {"type": "int", "low": 0, "high": 2}}
    one_line_error(cli("sweep", write_config(tmp_path / "c.yaml", bad_value)),
                   "sweep.params.env.n_envs", "the value 0")
    good = write_config(tmp_path / "good.yaml", sweep_config(out))
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    one_line_error(cli("sweep", good, "--storage", url), "cannot open storage", str(url.split("@")[1]))
    one_line_error(cli("sweep", good, "--storage", "mysql:/x"), "expected sqlite")
    one_line_error(cli("sweep", good, "--trials", "0"), "positive integer")
    plain = pendulum_config(out)
    one_line_error(cli("sweep", write_config(tmp_path / "d.yaml", plain)), "no sweep.params")
    assert not out.exists()  # bad input touches nothing


# ---------------------------------------------------------------------------------------------
# Running studies
# ---------------------------------------------------------------------------------------------


def test_trials_are_runs_and_rerunning_continues_the_study(tmp_path, cli):
    out = tmp_path / "runs"
    config = write_config(tmp_path / "s.yaml", sweep_config(out, pruner="none"))
    res = cli("sweep", config, "--trials", "2", "--study", "st")
    assert res.code == 0, res.err
    root = out / "sweeps" / "st"
    storage = f"sqlite:///{root / 'study.db'}"
    study = optuna.load_study(study_name="st", storage=storage)
    assert [t.number for t in study.trials] == [0, 1]
    res = cli("sweep", config, "--trials", "3", "--study", "st")  # the same command, more trials
    assert res.code == 0, res.err
    study = optuna.load_study(study_name="st", storage=storage)
    trials = study.trials
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        run = Path(t.user_attrs["run_dir"])
        assert run.parent.parent.parent == root and run.name.startswith(f"trial-{t.number:04d}-")
        assert json.loads((run / "meta.json").read_text())["status"] == "finished"
        assert sorted(t.intermediate_values) == [256, 512]  # every evaluation was reported
        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert saved.get("sweep") is None and saved["algo"]["params"]["n_epochs"] == t.params["algo.params.n_epochs"]
        assert saved["algo"]["policy_kwargs"]["net_arch"] == json.loads(t.params["algo.policy_kwargs.net_arch"])
    assert "best config:" in res.out
    best = yaml.safe_load((root / "best.yaml").read_text())
    assert best["algo"]["params"]["learning_rate"] == study.best_trial.params["algo.params.learning_rate"]
    assert "sweep" not in best
    res = cli("train", root / "best.yaml", f"experiment.output_dir={tmp_path / 'best'}")
    assert res.code == 0, res.err  # the best config trains as it is
    # a study's direction is fixed: asking for the other one is an error, not a new study
    one_line_error(cli("sweep", config, "--study", "st", "sweep.direction=minimize"), "direction")


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_a_pruned_trial_stops_early_and_its_run_says_pruned(tmp_path):
    from soccerlab import sweep

    cfg = sweep_config(tmp_path / "runs")
    cfg["train"]["total_timesteps"] = 1024
    s = sweep.prepare(str(write_config(tmp_path / "s.yaml", cfg)), [], 1, None, "p", "test")
    study = optuna.create_study(pruner=AlwaysPrune(), direction="maximize")
    study.optimize(lambda t: sweep.objective(s, t, []), n_trials=1)
    [trial] = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [256]
    meta = json.loads((Path(trial.user_attrs["run_dir"]) / "meta.json").read_text())
    assert meta["status"] == "pruned" and meta["timesteps"] < 1024


def test_journal_storage_and_local_jobs(tmp_path, cli):
    out = tmp_path / "runs"
    config = write_config(tmp_path / "s.yaml", sweep_config(out))
    journal = tmp_path / "shared" / "study.log"
    res = cli("sweep", config, "--trials", "2", "--jobs", "2", "--storage", f"journal:{journal}")
    assert res.code == 0, res.err
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="t", storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) >= 2 and len({t.number for t in study.trials}) == len(study.trials)


@pytest.mark.parametrize(("command", "flags"), [
    ("sweep", ["--trials", "--storage", "--study", "--jobs", "postgresql://", "journal:"]),
    ("report", ["--out", "TARGET"]),
    ("train", ["--seeds", "--parallel"]),
])
def test_new_commands_document_their_flags(cli, command, flags):
    res = cli(command, "--help")
    assert res.code == 0
    for flag in flags:
        assert flag in res.out


def test_objective_auto_is_the_competition_score_for_soccer(tmp_path):
    from types import SimpleNamespace

    from soccerlab import sweep

    cfg = {"experiment": {"output_dir": str(tmp_path)},
           "env": {"tasks": {"kick_to_target": 1, "goalie_penalty_kick": 1}, "n_envs": 2},
           "sweep": {"params": SPACE}}
    s = sweep.prepare(str(write_config(tmp_path / "s.yaml", cfg)), [], 1, None, None, "test")
    assert s.objective == "comp/overall"
    report = SimpleNamespace(score=-1.5, summary=lambda: {"mean_return": 40.0},
                             extra_metrics=lambda: {"comp/overall": -1.5, "comp/kick_to_target": -0.2})
    assert sweep.report_value(report, s.objective) == -1.5
    assert sweep.report_value(report, "comp/kick_to_target") == -0.2
    with pytest.raises(sweep.TrialFailed, match="no 'success_rate'"):
        sweep.report_value(report, "success_rate")
