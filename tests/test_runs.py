"""Crash-safe writes and the run directory's bookkeeping."""

import pytest

from soccerlab.errors import UserError
from soccerlab.runs import RunDir, atomic_dir, atomic_path, write_json_atomic


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "model.zip"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.suffix == ".zip" and tmp != target
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"]


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "meta.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert target.read_text().strip().endswith("}") and '"a": 2' in target.read_text()


def test_atomic_dir_swaps_whole_folders(tmp_path):
    best = tmp_path / "best"
    with atomic_dir(best) as tmp:
        (tmp / "model.zip").write_text("v1")
        (tmp / "vecnormalize.pkl").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(best) as tmp:
        (tmp / "model.zip").write_text("v2")
        raise RuntimeError("crash between the two files")
    assert {p.name: p.read_text() for p in best.iterdir()} == {"model.zip": "v1", "vecnormalize.pkl": "v1"}
    assert [p.name for p in tmp_path.iterdir()] == ["best"]


def test_checkpoints_are_listed_numerically_and_pruned(tmp_path):
    run = RunDir(tmp_path)
    for step in (500, 1500, 10000, 2000):
        (run.checkpoints_dir / str(step)).mkdir(parents=True)
        (run.checkpoints_dir / str(step) / "model.zip").write_text("x")
    (run.checkpoints_dir / ".3000.tmp-1").mkdir()  # an unfinished checkpoint
    (run.checkpoints_dir / "2500").mkdir()  # no model: incomplete
    assert [s for s, _ in run.checkpoints()] == [500, 1500, 2000, 10000]
    run.prune_checkpoints(keep=2)
    assert [s for s, _ in run.checkpoints()] == [2000, 10000]
    assert run.latest_checkpoint()[0] == 10000


def test_run_folders_are_unique_and_never_reused(tmp_path):
    a = RunDir.create(tmp_path, "Pendulum-v1", "ppo", "x")
    b = RunDir.create(tmp_path, "Pendulum-v1", "ppo", "x")
    assert a.path != b.path and a.path.parent == b.path.parent == tmp_path / "Pendulum-v1" / "ppo"


def test_opening_a_non_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        RunDir.open(tmp_path / "nope")
    with pytest.raises(UserError, match="not a soccerlab run"):
        RunDir.open(tmp_path)
