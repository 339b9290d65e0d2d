"""Sweeps across machines: two worker processes on one study in a real PostgreSQL server.

The server is Debian's ``postgresql`` package (installed by ``make install`` as root), started
on loopback, on a free port, in a temporary folder, by ``scripts/local_postgres.sh``.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from conftest import pendulum_config, start_cli, write_config

SCRIPT = Path(__file__).parents[1] / "scripts" / "local_postgres.sh"


def _have_postgres() -> bool:
    return bool(shutil.which("initdb")) or any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    if not _have_postgres():
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail("PostgreSQL is not installed: run `make install` (it installs postgresql)")
        pytest.skip("PostgreSQL server binaries not found and cannot install them here "
                    "(not root or no apt-get): apt-get install postgresql")
    folder = tempfile.mkdtemp(prefix="soccerlab-pg-")  # not under pytest's root-only tmp dirs
    os.chmod(folder, 0o755)
    data = os.path.join(folder, "pg")
    url = subprocess.run(["bash", str(SCRIPT), "start", data, str(_free_port())], check=True,
                         capture_output=True, text=True, timeout=120).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", data], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_a_study_and_a_killed_workers_trial_is_retried(tmp_path, postgres_url):
    trials = 4
    arm = tmp_path / "arm"  # the first env to reach step 100 deletes it and SIGKILLs its worker
    arm.touch()
    cfg = pendulum_config(tmp_path / "runs", "ppo",
                          env={"id": "testenvs:SignalPendulum-v0",
                               "kwargs": {"signum": "SIGKILL", "at": 100, "arm": str(arm)}})
    cfg["sweep"] = {"params": {"algo.params.learning_rate":
                               {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True}},
                    "pruner": "none", "heartbeat": 2, "grace": 15}
    # grace: a live trial on a loaded 2-core machine must never look dead (its heartbeat thread
    # competes with two trainings); the killed trial is found stale 15 s after its last beat
    config = write_config(tmp_path / "s.yaml", cfg)
    workers = [start_cli("sweep", config, "--trials", trials, "--storage", postgres_url,
                         "--study", "pg") for _ in range(2)]
    deadline = time.monotonic() + 400  # an upper bound, not a wait: both normally end in ~45 s
    outputs = [w.communicate(timeout=max(1, deadline - time.monotonic())) for w in workers]
    codes = sorted(w.returncode for w in workers)
    assert not arm.exists()
    assert codes == [-9, 0], (codes, outputs)  # one worker was killed, the other finished the study

    study = optuna.load_study(study_name="pg", storage=postgres_url.replace(
        "postgresql://", "postgresql+psycopg://"))
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers)))  # unique trial numbers
    states = [t.state for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert trials <= len(complete) <= trials + 1, states  # +1: two workers may both start the last
    [failed] = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    retries = [t for t in complete if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retries) == 1 and retries[0].params == failed.params  # retried with its parameters
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    survivor = outputs[[w.returncode for w in workers].index(0)][0]
    assert f"retry of trial {failed.number}" in survivor
