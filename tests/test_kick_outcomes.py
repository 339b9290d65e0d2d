"""benchmarks/kick_outcomes.py: how a kick_to_target episode is classed from its last step."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "kick_outcomes.py"
spec = importlib.util.spec_from_file_location("kick_outcomes", PATH)
kick_outcomes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kick_outcomes)


def record(end: float, success=False, fallen=False, offside=0.0, score=-0.3) -> dict:
    """An ``info["soccer"]`` record whose ball ended ``end`` metres from the target."""
    return {"score": score, "success": success, "fallen": fallen,
            "components": {"success": 2.0 * success, "distance": 0.5 * math.exp(-end),
                           "offside": offside, "steps": -0.3}}


@pytest.mark.parametrize("rec, start, expected", [
    (record(0.3, success=True), 5.0, "success"),
    (record(3.0, fallen=True), 5.0, "fallen"),
    (record(3.0, offside=-1.0), 5.0, "out"),
    (record(1.2), 5.0, "near"),
    (record(3.9), 5.0, "slow"),   # 1.1 m closer than at the start
    (record(4.2), 5.0, "lost"),   # 0.8 m closer
    (record(9.0), 5.0, "lost"),   # further away
])
def test_episode_classes(rec, start, expected):
    assert kick_outcomes.classify(rec, start) == expected


def test_end_distance_inverts_the_distance_term():
    assert kick_outcomes.end_distance(record(2.5)) == pytest.approx(2.5)


def test_bands_count_every_episode_once():
    starts = np.array([1.0, 3.9, 4.0, 7.0, 13.0])
    recs = [record(0.2, success=True, score=2.0), record(5.0), record(1.0), record(2.0),
            record(20.0)]
    out = kick_outcomes.summarise(recs, starts, [4.0, 8.0])
    assert [b["episodes"] for b in out["bands"]] == [2, 2, 1]
    assert out["bands"][0]["classes"]["success"] == 1 and out["bands"][0]["classes"]["lost"] == 1
    assert out["bands"][1]["classes"] == {"success": 0, "fallen": 0, "out": 0, "near": 1,
                                          "slow": 1, "lost": 0}
    assert out["all"]["episodes"] == 5 and out["all"]["success"] == 0.2
    assert out["all"]["score_se"] == round(float(np.std([2.0, -0.3, -0.3, -0.3, -0.3])
                                                 / np.sqrt(5)), 3)
