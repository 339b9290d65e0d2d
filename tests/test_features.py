"""Warm starts, layer freezing, the validation TD error, videos, LR schedules and named networks."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC

from conftest import pendulum_config, write_config
from soccerlab.errors import UserError
from soccerlab.training import warmstart
from test_train import scalars


def train(cli, tmp_path, name, cfg) -> Path:
    return train_with_output(cli, tmp_path, name, cfg)[0]


def train_with_output(cli, tmp_path, name, cfg) -> tuple[Path, str]:
    res = cli("train", write_config(tmp_path / f"{name}.yaml", cfg))
    assert res.code == 0, res.err
    return Path(res.last_line), res.out


@pytest.fixture(scope="module")
def donor(tmp_path_factory):
    from soccerlab.cli import main

    out = tmp_path_factory.mktemp("donor")
    cfg = pendulum_config(out, "sac", train={"total_timesteps": 300})
    main(["train", str(write_config(out / "c.yaml", cfg))])
    return next(out.rglob("model.zip"))


def test_warm_start_from_sb3_zip_loads_every_matching_tensor(tmp_path, cli, donor):
    cfg = pendulum_config(tmp_path, "sac", algo={"init": {"path": str(donor)}},
                          train={"total_timesteps": 1}, eval={"every": None})
    res = cli("train", write_config(tmp_path / "c.yaml", cfg))
    assert res.code == 0, res.err
    assert "warm start: loaded" in res.out and "keep their fresh initialisation" in res.out
    src = SAC.load(donor).policy.state_dict()
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [32, 32]}, learning_starts=100,
                buffer_size=5000, batch_size=64)
    report = warmstart.load_into(model, donor)
    assert len(report.loaded) == len(src) and report.untouched == 0
    for name, tensor in model.policy.state_dict().items():
        torch.testing.assert_close(tensor, src[name])


def test_warm_start_from_actor_state_dict_and_target_sync(tmp_path):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]}, buffer_size=100)
    actor = {k: torch.full_like(v, 0.5) for k, v in model.policy.actor.state_dict().items()}
    path = tmp_path / "actor.pt"
    torch.save({"actor_state_dict": actor, "step": 7}, path)
    report = warmstart.load_into(model, path)
    assert report.target == "the actor" and len(report.loaded) == len(actor)
    assert all(torch.all(v == 0.5) for v in model.policy.actor.state_dict().values())

    td3 = __import__("stable_baselines3").TD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16]},
                                              buffer_size=100)
    actor = {k: torch.full_like(v, 0.25) for k, v in td3.policy.actor.state_dict().items()}
    torch.save({"actor_state_dict": actor}, path)
    warmstart.load_into(td3, path)
    assert all(torch.all(v == 0.25) for v in td3.policy.actor_target.state_dict().values())


def test_warm_start_refuses_mismatched_shapes_and_foreign_files(tmp_path, cli, donor):
    cfg = pendulum_config(tmp_path, "sac", algo={"init": {"path": str(donor)},
                                                 "policy_kwargs": {"net_arch": [64, 64]}})
    res = cli("train", write_config(tmp_path / "c.yaml", cfg))
    assert res.code == 2 and "shapes do not match" in res.err and "file (32" in res.err
    model = PPO("MlpPolicy", "Pendulum-v1", n_steps=64)
    torch.save({"x.weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="no tensor name"):
        warmstart.load_into(model, tmp_path / "other.pt")
    torch.save({"not": "tensors"}, tmp_path / "junk.pt")
    with pytest.raises(UserError, match="state dict of tensors"):
        warmstart.load_into(model, tmp_path / "junk.pt")
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(object(), f)
    with pytest.raises(UserError, match="safely"):
        warmstart.load_into(model, tmp_path / "evil.pt")


def test_frozen_layers_stay_fixed_until_unfreeze(tmp_path, cli, donor):
    cfg = pendulum_config(tmp_path, "sac", algo={"init": {"path": str(donor), "freeze_layers": 2,
                                                          "unfreeze_at": 400}},
                          train={"total_timesteps": 600, "checkpoint_every": 200})
    run, out = train_with_output(cli, tmp_path, "freeze", cfg)
    start = SAC.load(donor).policy.actor.state_dict()
    at = {s: SAC.load(run / "checkpoints" / str(s) / "model.zip").policy.actor.state_dict()
          for s in (200, 400, 600)}
    frozen = ["latent_pi.0.weight", "latent_pi.2.weight"]
    for name in frozen:
        torch.testing.assert_close(at[200][name], start[name])  # frozen, while the rest learns
        assert not torch.equal(at[600][name], start[name])  # unfrozen at 400, then trained
    assert not torch.equal(at[200]["mu.weight"], start["mu.weight"])
    assert "froze the first 2 actor layers until step 400" in out
    assert "step 400: unfroze the first 2 actor layers" in out
    assert [s for s, _ in scalars(run, "train/unfrozen_layers")] == [400]


def test_validation_td_error_on_held_out_transitions(tmp_path, cli):
    cfg = pendulum_config(tmp_path, "sac", env={"normalize": True},
                          train={"total_timesteps": 600, "checkpoint_every": 600,
                                 "validation": {"every": 200, "size": 40, "fraction": 0.2}})
    run = train(cli, tmp_path, "val", cfg)
    values = scalars(run, "train/val_td_error")
    assert [s for s, _ in values] and all(np.isfinite(v) and v >= 0 for _, v in values)
    ckpt = run / "checkpoints" / "600"
    held = np.load(ckpt / "validation.npz")
    assert len(held["obs"]) == 40
    with open(ckpt / "replay_buffer.pkl", "rb") as f:
        buffer = pickle.load(f)
    stored = buffer.observations[: buffer.pos].reshape(-1, held["obs"].shape[-1])
    # no held-out observation was ever stored in the replay buffer
    matches = (np.abs(stored[None, :, :] - held["obs"][:, None, :]).sum(-1) < 1e-7).any(axis=1)
    assert not matches.any()
    assert len(stored) + len(held["obs"]) >= 590  # nothing lost: diverted or stored


def test_validation_rejects_on_policy(tmp_path, cli):
    cfg = pendulum_config(tmp_path, "ppo", train={"validation": {"every": 100}})
    res = cli("train", write_config(tmp_path / "c.yaml", cfg))
    assert res.code == 2 and "train.validation is supported for" in res.err


def test_videos_are_recorded_during_training(tmp_path, cli):
    cfg = pendulum_config(tmp_path, "ppo", video={"every": 256, "length": 20, "width": 64, "height": 48})
    run = train(cli, tmp_path, "vid", cfg)
    videos = sorted(p.name for p in (run / "videos").iterdir())
    assert videos == ["step_000000256.mp4", "step_000000512.mp4"]
    import imageio.v2 as imageio

    reader = imageio.get_reader(run / "videos" / videos[0], format="FFMPEG")
    assert sum(1 for _ in reader) == 20
    reader.close()


def test_linear_learning_rate_schedule_decays_to_zero(tmp_path, cli):
    cfg = pendulum_config(tmp_path, "ppo", algo={"lr_schedule": "linear", "params": {
        "n_steps": 128, "batch_size": 64, "learning_rate": 1e-3}})
    run = train(cli, tmp_path, "lr", cfg)
    # the first update runs after 256 of 512 steps (progress remaining 0.5); PPO logs it late
    lrs = [(step, round(v, 9)) for step, v in scalars(run, "train/learning_rate")]
    assert lrs == [(512, 5e-4)]
    model = PPO.load(run / "model.zip")
    assert model.lr_schedule(1.0) == pytest.approx(1e-3) and model.lr_schedule(0.0) == 0.0
    assert model.policy.optimizer.param_groups[0]["lr"] == 0.0  # the last update used progress 0


def test_named_activation_and_residual_extractor(tmp_path, cli):
    cfg = pendulum_config(tmp_path, "sac", algo={"policy_kwargs": {
        "net_arch": [32], "activation_fn": "silu", "features_extractor_class": "residual_mlp",
        "features_extractor_kwargs": {"width": 24, "blocks": 2}}}, train={"total_timesteps": 200})
    run = train(cli, tmp_path, "res", cfg)
    model = SAC.load(run / "model.zip")
    actor = model.policy.actor
    assert type(actor.features_extractor).__name__ == "ResidualMLPExtractor"
    assert len(actor.features_extractor.blocks) == 2 and actor.features_extractor.features_dim == 24
    assert any(isinstance(m, torch.nn.SiLU) for m in actor.latent_pi.modules())


def test_wandb_offline_mirrors_the_run_and_resume_continues_it(tmp_path, cli, monkeypatch):
    pytest.importorskip("wandb")  # optional extra: soccerlab[wandb]
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = pendulum_config(tmp_path, "ppo", logging={"wandb": {"mode": "offline", "project": "t"}})
    run = train(cli, tmp_path, "wb", cfg)
    import json

    run_id = json.loads((run / "meta.json").read_text())["wandb_id"]
    first = list((run / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(first) == 1 and b"eval/mean_reward" in first[0].read_bytes()
    res = cli("train", "--resume", run, "train.total_timesteps=768")
    assert res.code == 0, res.err
    assert len(list((run / "wandb").glob(f"offline-run-*-{run_id}"))) == 2  # same W&B run id
