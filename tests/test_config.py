"""The config schema: defaults, overrides, and one-line errors that name the key."""

import pydantic
import pytest

from soccerlab.config import (
    Config,
    apply_overrides,
    check_resume_compatible,
    config_from_dict,
    dump_yaml,
    load_config,
    parse_yaml,
)
from soccerlab.errors import UserError


def cfg(**sections) -> dict:
    return {"env": {"id": "Pendulum-v1"}, **sections}


def error_of(data: dict) -> str:
    with pytest.raises(UserError) as info:
        config_from_dict(data)
    return str(info.value)


def test_defaults_come_from_the_schema():
    c = config_from_dict(cfg())
    assert c.algo.name == "ppo" and c.env.n_envs == 1 and c.env.normalize is None
    assert c.eval.seeds == [0, 1, 2] and c.train.device == "auto"


def test_unknown_key_names_its_path_and_suggests():
    msg = error_of(cfg(train={"total_timestep": 10}))
    assert "unknown key 'train.total_timestep'" in msg and "did you mean 'total_timesteps'" in msg
    assert "'envv'" in error_of({"envv": {}, "env": {"id": "x"}})


def test_wrong_type_names_its_path_and_value():
    msg = error_of(cfg(env={"id": "Pendulum-v1", "n_envs": "two"}))
    assert msg.startswith("config: env.n_envs:") and "'two'" in msg
    assert "env.vec_env" in error_of(cfg(env={"id": "Pendulum-v1", "vec_env": "threads"}))
    assert "env.normalize.obs" in error_of(cfg(env={"id": "P", "normalize": {"obs": "maybe"}}))


def test_env_id_is_required():
    assert "missing required key 'env.id'" in error_of({"env": {}})


def test_normalize_accepts_bool_or_mapping_and_round_trips():
    on = config_from_dict(cfg(env={"id": "P", "normalize": True}))
    assert on.env.normalize.obs and on.env.normalize.reward
    partial = config_from_dict(cfg(env={"id": "P", "normalize": {"reward": False}}))
    assert partial.env.normalize.obs and not partial.env.normalize.reward
    off = config_from_dict(cfg(env={"id": "P", "normalize": False}))
    assert off.to_dict()["env"]["normalize"] is False
    for c in (on, partial, off):
        assert config_from_dict(parse_yaml(dump_yaml(c.to_dict()), "x")) == c


def test_overrides_set_nested_keys_with_yaml_values():
    data = apply_overrides(cfg(), ["algo.params.learning_rate=1e-3", "env.n_envs=4",
                                   "eval.seeds=[5, 6]", "algo.name=sac"])
    c = config_from_dict(data)
    assert c.algo.params == {"learning_rate": 0.001}
    assert c.env.n_envs == 4 and c.eval.seeds == [5, 6] and c.algo.name == "sac"


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1"])
def test_malformed_overrides_are_rejected(bad):
    with pytest.raises(UserError, match="key.path=value"):
        apply_overrides(cfg(), [bad])


def test_yaml_reads_exponent_floats():
    assert parse_yaml("a: 3e-4\nb: -1E5\nc: 7\nd: '3e-4'", "x") == {"a": 3e-4, "b": -1e5, "c": 7, "d": "3e-4"}


def test_bad_yaml_and_missing_file_are_user_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: {id: [unclosed\n")
    with pytest.raises(UserError, match="invalid YAML"):
        load_config(bad)
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="mapping"):
        load_config(listing)


def test_resume_may_change_only_train_eval_video_logging():
    old = config_from_dict(cfg())
    ok = config_from_dict(cfg(train={"total_timesteps": 5}, eval={"episodes": 9}))
    check_resume_compatible(old, ok)
    for changed in (cfg(env={"id": "Hopper-v5"}), cfg(algo={"name": "sac"}),
                    cfg(algo={"params": {"gamma": 0.9}}), cfg(experiment={"seed": 3})):
        with pytest.raises(UserError, match="cannot resume"):
            check_resume_compatible(old, config_from_dict(changed))


def test_config_is_frozen():
    c = config_from_dict(cfg())
    with pytest.raises(pydantic.ValidationError):
        c.env.n_envs = 3  # type: ignore[misc]
    assert isinstance(c, Config)


def test_env_hide_is_for_soccer_and_round_trips():
    assert "env.hide applies to soccer tasks only" in error_of(
        cfg(env={"id": "Pendulum-v1", "hide": {"kick_to_target": ["defender_xpos"]}}))
    hide = {"obstacle_penalty_kick": ["target_xpos_rel_robot", "defender_xpos"]}
    c = config_from_dict({"env": {"tasks": {"obstacle_penalty_kick": 1}, "hide": hide}})
    assert config_from_dict(c.to_dict()).env.hide == hide
    assert config_from_dict({"env": {"tasks": {"kick_to_target": 1}}}).env.hide == {}
