"""Every shipped config is valid and trains (on a tiny budget); the learning test is separate."""

from pathlib import Path

import pytest

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
TINY = ["train.total_timesteps=64", "train.checkpoint_every=null", "eval.every=null",
        "eval.episodes=1", "eval.seeds=[0]", "video.every=null", "train.progress_bar=false"]


def test_configs_exist():
    names = {c.stem for c in CONFIGS}
    assert {"default", "pendulum_ppo", "pendulum_sac", "pendulum_td3"} <= names


@pytest.fixture(scope="module")
def tiny_walker(tmp_path_factory):
    from _soccer_fixtures import write_walker

    return write_walker(tmp_path_factory.mktemp("walker"))[0]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_trains(tmp_path, cli, config, tiny_walker):
    text = config.read_text()
    extra = ["algo.params.learning_starts=0"] if "learning_starts" in text else []
    if "n_steps" in text:
        extra.append("algo.params.n_steps=32")
    if "tasks:" in text:  # soccer: short episodes, and a tiny walker instead of the real one
        extra += ["env.max_episode_steps=100", "env.n_envs=3"]
        if "control: walker" in text:
            extra.append(f"env.walker.path={tiny_walker}")
    res = cli("train", config, f"experiment.output_dir={tmp_path}", *TINY, *extra)
    assert res.code == 0, res.err
    assert Path(res.last_line, "model.zip").is_file()
