"""Artifacts from someone else run no code: eval and play never unpickle a model zip's ``data``
or a ``vecnormalize.pkl``; resuming unpickles only files soccerlab wrote here, or with
--trust-pickle."""

import base64
import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import pendulum_config, run_dirs, subprocess_env, write_config
from test_cli import one_line_error


class _Payload:
    """Unpickling this creates ``marker`` (a harmless stand-in for arbitrary code)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from soccerlab.cli import main

    out = tmp_path_factory.mktemp("runs")
    cfg = pendulum_config(out, "ppo", env={"normalize": True},
                          train={"total_timesteps": 256, "checkpoint_every": 256},
                          eval={"every": 256, "episodes": 1, "seeds": [0]})
    assert main(["train", str(write_config(out / "c.yaml", cfg))]) == 0
    [run] = run_dirs(out)
    return run


def _tamper_zip(path: Path, marker: Path) -> None:
    """Put a pickle payload into the zip's ``data`` entry (where SB3's load unpickles it)."""
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    data = json.loads(entries["data"])
    blob = base64.b64encode(pickle.dumps(_Payload(marker))).decode()
    data["observation_space"] = {":type:": "<class 'gymnasium.spaces.box.Box'>", ":serialized:": blob}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in entries.items():
            zf.writestr(name, content)


def _tamper_run(run: Path, dest: Path, marker: Path) -> Path:
    shutil.copytree(run, dest)
    for folder in [dest, dest / "best", *(dest / "checkpoints").iterdir()]:
        _tamper_zip(folder / "model.zip", marker)
        (folder / "vecnormalize.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    return dest


def test_the_payloads_are_live(tmp_path, trained):
    """Sanity check of the test itself: SB3's load and pickle do run these payloads."""
    marker = tmp_path / "pwned"
    run = _tamper_run(trained, tmp_path / "run", marker)
    code = "import sys; from stable_baselines3 import PPO; PPO.load(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(run / "model.zip")], env=subprocess_env(),
                   capture_output=True)
    assert marker.exists()
    marker.unlink()
    pickle.loads((run / "vecnormalize.pkl").read_bytes())
    assert marker.exists()


def test_eval_and_play_never_run_a_tampered_run(tmp_path, cli, trained):
    marker = tmp_path / "pwned"
    run = _tamper_run(trained, tmp_path / "run", marker)
    args = ("--episodes", "1", "--seeds", "0,1", "--json")
    clean = cli("eval", trained, *args, tmp_path / "clean.json")
    tampered = cli("eval", run, *args, tmp_path / "tampered.json")
    assert clean.code == 0 and tampered.code == 0, clean.err + tampered.err
    episodes = [json.loads((tmp_path / f).read_text())["episodes"] for f in ("clean.json", "tampered.json")]
    assert episodes[0] == episodes[1]  # the weights are untouched: the same numbers
    assert cli("eval", run / "model.zip", "--episodes", "1", "--seeds", "0").code == 0
    assert cli("play", run, "--episodes", "1").code == 0
    assert not marker.exists()


def test_a_tampered_zip_outside_a_run_never_runs(tmp_path, cli, trained):
    marker = tmp_path / "pwned"
    (tmp_path / "m").mkdir()
    model = tmp_path / "m" / "model.zip"
    shutil.copy(trained / "model.zip", model)
    _tamper_zip(model, marker)
    (tmp_path / "m" / "vecnormalize.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    # the network comes from the plain JSON part of `data` (PPO saves no algorithm name there);
    # the pickled normaliser is refused
    one_line_error(cli("eval", model, "--env", "Pendulum-v1", "--algo", "ppo"), "--trust-pickle")
    one_line_error(cli("play", model, "--env", "Pendulum-v1", "--algo", "ppo"), "--trust-pickle")
    (tmp_path / "m" / "vecnormalize.pkl").unlink()
    assert cli("play", model, "--env", "Pendulum-v1", "--algo", "ppo").code == 0
    assert not marker.exists()


def test_normaliser_npz_matches_the_pickle(trained):
    from stable_baselines3.common.vec_env import VecNormalize

    from soccerlab.normalizer import load

    with open(trained / "vecnormalize.pkl", "rb") as f:
        vecnorm: VecNormalize = pickle.load(f)
    plain = load(trained / "vecnormalize.npz")
    obs = np.random.default_rng(0).normal(0, 3, (5, 3)).astype(np.float32)
    np.testing.assert_array_equal(plain.normalize_obs(obs), vecnorm.normalize_obs(obs))
    with np.load(trained / "vecnormalize.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["ret_var"], vecnorm.ret_rms.var)


def test_trust_pickle_only_with_resume(tmp_path, cli):
    cfg = write_config(tmp_path / "c.yaml", pendulum_config(tmp_path))
    one_line_error(cli("train", cfg, "--trust-pickle"), "--resume")


def test_resume_unpickles_only_what_was_written_here(tmp_path, cli, trained, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    monkeypatch.setenv("SOCCERLAB_STATE_DIR", str(tmp_path / "other-machine"))
    one_line_error(cli("train", "--resume", run, "train.total_timesteps=384"),
                   "--trust-pickle", "model.zip")
    res = cli("train", "--resume", run, "train.total_timesteps=384", "--trust-pickle")
    assert res.code == 0, res.err
    # what this resume wrote is now known here: the next resume needs no flag
    again = cli("train", "--resume", run, "train.total_timesteps=1024")
    assert again.code == 0, again.err
