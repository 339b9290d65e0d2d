import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from soccerlab.cli import main

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def pendulum_config(out: Path, algo_name: str = "ppo", **sections) -> dict:
    """A tiny Pendulum experiment writing runs under ``out``."""
    params = {"ppo": {"n_steps": 128, "batch_size": 64, "n_epochs": 2},
              "sac": {"learning_starts": 100, "buffer_size": 5000, "batch_size": 64},
              "td3": {"learning_starts": 100, "buffer_size": 5000, "batch_size": 64}}.get(algo_name, {})
    cfg = {
        "experiment": {"name": "t", "seed": 0, "output_dir": str(out)},
        "env": {"id": "Pendulum-v1", "n_envs": 2},
        "algo": {"name": algo_name, "params": params, "policy_kwargs": {"net_arch": [32, 32]}},
        "train": {"total_timesteps": 512, "checkpoint_every": 256, "progress_bar": False},
        "eval": {"every": 256, "episodes": 1, "seeds": [0]},
    }
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def run_dirs(out: Path) -> list[Path]:
    return sorted(p.parent for p in Path(out).rglob("config.yaml") if (p.parent / "meta.json").exists())


def read_meta(run: Path) -> dict:
    return json.loads((run / "meta.json").read_text())


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def last_line(self) -> str:
        return self.out.strip().splitlines()[-1]


@pytest.fixture
def cli(capsys):
    """Run the soccerlab CLI in this process; returns exit code and captured output."""

    def run(*args: str) -> CliResult:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse errors and --help
            code = exc.code
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def one_line_error(res: CliResult, *fragments: str) -> None:
    """A user error: exit code 2 and one line on stderr holding every fragment."""
    assert res.code == 2, (res.out, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.err, res.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), env.get("PYTHONPATH", "")])
    env.setdefault("MUJOCO_GL", "osmesa")
    return env


def start_cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "soccerlab", *map(str, args)], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def pytest_configure(config):
    import tempfile

    import torch

    # the record of pickles soccerlab wrote (soccerlab.trust): one per test session, not ~/.local
    os.environ.setdefault("SOCCERLAB_STATE_DIR", tempfile.mkdtemp(prefix="soccerlab-state-"))

    torch.set_num_threads(1)  # as soccerlab does (train.torch_threads); see docs/results.md
