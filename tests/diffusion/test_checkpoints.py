"""Checkpoint directories: safetensors weights, weights_only training state, atomic replacement."""

import json

import pytest
import torch

from diffusion_bridge.diffusion import (
    DiffusionModel,
    load_model,
    load_training_state,
    read_checkpoint_config,
    save_checkpoint,
)
from diffusion_bridge.diffusion.checkpoints import MODEL_FILE
from diffusion_bridge.errors import CheckpointError
from diffusion_bridge.training import tensor_digest


def small_model(seed=0, dim=16):
    torch.manual_seed(seed)
    return DiffusionModel(dim, denoiser_kwargs={"width": 32, "depth": 2}, objective="pred_v")


def test_round_trip_of_raw_and_ema_weights(tmp_path):
    model, ema_source = small_model(0), small_model(1)
    state = {"step": 7, "history": {"train": [{"step": 5, "loss": 0.5}]}, "generator": torch.Generator().get_state()}
    directory = save_checkpoint(
        tmp_path / "ckpt", model, ema_state=ema_source.state_dict(), training_state=state,
        train_config={"lr": 1e-3}, data={"fingerprint": "abc"},
    )
    assert sorted(p.name for p in directory.iterdir()) == [
        "config.json", "ema.safetensors", "model.safetensors", "training_state.pt",
    ]
    raw, ema = load_model(directory), load_model(directory, weights="ema")
    assert raw.config == model.config and raw.objective == "pred_v"
    for key, value in model.state_dict().items():
        assert torch.equal(raw.state_dict()[key], value)
        assert torch.equal(ema.state_dict()[key], ema_source.state_dict()[key])
    assert load_training_state(directory)["history"] == state["history"]  # loads with weights_only=True
    assert read_checkpoint_config(directory)["data"] == {"fingerprint": "abc"}

    state_file = directory / "training_state.pt"
    state_file.write_bytes(state_file.read_bytes()[:100])  # a save cut short, or a disk error
    with pytest.raises(CheckpointError, match=r"training_state\.pt cannot be read.*delete the checkpoint folder") as error:
        load_training_state(directory)
    assert "weights_only=False" not in str(error.value)


def test_saving_again_replaces_atomically_and_leaves_no_temporaries(tmp_path):
    save_checkpoint(tmp_path / "ckpt", small_model(0))
    save_checkpoint(tmp_path / "ckpt", small_model(1))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert torch.equal(load_model(tmp_path / "ckpt").state_dict()["denoiser.in_proj.weight"],
                       small_model(1).state_dict()["denoiser.in_proj.weight"])


def test_a_checkpoint_left_aside_by_a_crash_mid_swap_is_found(tmp_path):
    save_checkpoint(tmp_path / "ckpt", small_model(0))
    aside = tmp_path / ".ckpt.x1y2.old"  # what atomic_path leaves if it dies between its two renames
    aside.mkdir()
    (tmp_path / "ckpt").rename(aside / "ckpt")
    found = load_model(tmp_path / "ckpt")
    assert torch.equal(found.state_dict()["denoiser.in_proj.weight"], small_model(0).state_dict()["denoiser.in_proj.weight"])
    assert read_checkpoint_config(tmp_path / "ckpt")["model"] == small_model(0).config


def test_wrong_dim_for_the_data_is_a_named_mismatch(tmp_path):
    save_checkpoint(tmp_path / "ckpt", small_model(dim=16))
    with pytest.raises(CheckpointError, match=r"config\.json.*16-d vectors.*32-d"):
        load_model(tmp_path / "ckpt", dim=32)


def test_weights_that_do_not_fit_the_config_name_file_and_shapes(tmp_path):
    directory = save_checkpoint(tmp_path / "ckpt", small_model(dim=16))
    cfg = json.loads((directory / "config.json").read_text())
    cfg["model"]["denoiser_kwargs"]["width"] = 64
    (directory / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=rf"{MODEL_FILE}.*\(32, 16\).*\(64, 16\)"):
        load_model(directory)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        load_model(tmp_path)


def test_fingerprint_tracks_values_shapes_and_dtypes():
    x = torch.arange(12.0).reshape(3, 4)
    assert tensor_digest(x) == tensor_digest(x.clone())
    y = x.clone()
    y[1, 2] += 1e-6
    assert len({tensor_digest(x), tensor_digest(y), tensor_digest(x.reshape(4, 3)), tensor_digest(x.double())}) == 4
