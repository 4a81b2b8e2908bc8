"""Decoder checkpoints: safetensors + JSON round trip, atomic overwrite, named errors."""

from __future__ import annotations

import json

import pytest
import torch

from diffusion_bridge.decoder import generate, load_decoder, save_decoder
from diffusion_bridge.errors import CheckpointError


def test_round_trip_reproduces_model_vocab_and_extra(overfit, tmp_path):
    target = tmp_path / "decoder"
    extra = {"best_epoch": 7, "val_meteor": 0.25}
    save_decoder(target, overfit.model, overfit.vocab, extra)
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors", "vocabulary.json"]

    model, vocab, extra_back = load_decoder(target, "cpu", expected_embed_dim=16)
    assert extra_back == extra
    assert vocab.to_json() == overfit.vocab.to_json()
    original = overfit.model.state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(value, original[name]), name
    assert model.gpt.lm_head.weight.data_ptr() == model.gpt.transformer.wte.weight.data_ptr()  # still tied
    assert generate(model, vocab, overfit.embeddings) == overfit.captions


def test_overwrite_is_atomic_and_leaves_no_temporaries(overfit, tmp_path):
    target = tmp_path / "decoder"
    save_decoder(target, overfit.model, overfit.vocab, {"run": 1})
    save_decoder(target, overfit.model, overfit.vocab, {"run": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["decoder"]
    assert load_decoder(target)[2] == {"run": 2}


def test_failed_overwrite_keeps_the_old_checkpoint(overfit, tmp_path):
    class Broken:
        def to_json(self):
            raise RuntimeError("disk full")

    target = tmp_path / "decoder"
    save_decoder(target, overfit.model, overfit.vocab, {"run": 1})
    with pytest.raises(RuntimeError, match="disk full"):
        save_decoder(target, overfit.model, Broken(), {"run": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["decoder"]
    assert load_decoder(target)[2] == {"run": 1}


def test_a_copy_left_aside_mid_swap_still_loads(overfit, tmp_path):
    target = tmp_path / "decoder"
    save_decoder(target, overfit.model, overfit.vocab, {"run": 1})
    aside = tmp_path / ".decoder.x1.old"  # what a crash between atomic_path's two renames leaves
    aside.mkdir()
    target.rename(aside / "decoder")
    assert load_decoder(target)[2] == {"run": 1}


def test_wrong_embedding_dim_names_file_dims_and_fix(overfit, tmp_path):
    save_decoder(tmp_path / "decoder", overfit.model, overfit.vocab, {})
    with pytest.raises(CheckpointError) as error:
        load_decoder(tmp_path / "decoder", "cpu", expected_embed_dim=512)
    message = str(error.value)
    assert str(tmp_path / "decoder" / "config.json") in message
    assert "16-d" in message and "512-d" in message and "retrain" in message


def test_damaged_folders_raise_named_errors(overfit, tmp_path):
    target = tmp_path / "decoder"
    save_decoder(target, overfit.model, overfit.vocab, {})
    (target / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_decoder(target)

    save_decoder(target, overfit.model, overfit.vocab, {})
    config = json.loads((target / "config.json").read_text())
    config["model"]["gpt2"]["n_embd"] = 32
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match the model described by"):
        load_decoder(target)
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_decoder(tmp_path / "nowhere")
