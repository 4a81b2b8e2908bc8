"""Resumable decoder training: per-epoch checkpoints, bit-identical resume, one folder per run fingerprint."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from diffusion_bridge.decoder import ClipBpeVocabulary, DecoderTrainConfig, train_decoder
from diffusion_bridge.decoder.runs import BEST_WEIGHTS, CHECKPOINT, CURRENT_WEIGHTS, RUN_FILE
from diffusion_bridge.errors import CheckpointError, WorkdirError
from diffusion_bridge.study.captioning import fit_decoder

CAPTIONS = ["a dog runs.", "two red cats sleep on a sofa.", "a man rides a bike down the street."]
VOCAB = ClipBpeVocabulary.fit(CAPTIONS)
# Uneven batches, weight decay, CapDec noise and GPT-2's dropout: every source of state a resume must restore.
CONFIG = DecoderTrainConfig(epochs=4, batch_size=2, lr=1e-3, warmup_steps=2, weight_decay=0.01, noise_std=0.1, seed=0)


def scores(*values):
    """A validation callback returning `values` in turn; it also draws from torch's global RNG, as a sampling
    validation would, so the checkpoint must capture the RNG after validation."""
    it = iter(values)

    def validate(model):
        torch.rand(3)
        return next(it)

    return validate


def run(make_model, make_embeddings, validate=None, config=CONFIG, **kwargs):
    model = make_model(VOCAB.vocab_size, seed=0)
    result = train_decoder(model, VOCAB, make_embeddings(3), CAPTIONS, config, validate, progress=False, **kwargs)
    return result, {k: v.clone() for k, v in model.state_dict().items()}


def without_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def assert_same_run(a, b):
    (result_a, state_a), (result_b, state_b) = a, b
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), "weights differ"
    assert all(torch.equal(result_a.state_dict[k], result_b.state_dict[k]) for k in state_a)
    assert without_seconds(result_a.history) == without_seconds(result_b.history)
    assert (result_a.best_epoch, result_a.best_score) == (result_b.best_epoch, result_b.best_score)


def test_interrupted_run_resumes_bit_identical(make_model, make_embeddings, tmp_path):
    """No validation: the result is the last epoch's weights, so they must match bit for bit."""
    straight = run(make_model, make_embeddings)
    first, _ = run(make_model, make_embeddings, workdir=tmp_path, stop_after_epochs=1)
    assert not first.complete and len(first.history) == 1
    second, _ = run(make_model, make_embeddings, workdir=tmp_path, stop_after_epochs=3)  # resume, interrupt again
    assert not second.complete and [h["epoch"] for h in second.history] == [1, 2, 3]
    resumed = run(make_model, make_embeddings, workdir=tmp_path)
    assert resumed[0].complete and resumed[0].run_dir == first.run_dir
    assert_same_run(resumed, straight)


def test_best_weights_survive_the_interruption(make_model, make_embeddings, tmp_path):
    """The best epoch (2) is chosen before the interruption (after 3); its weights come from the checkpoint."""
    straight = run(make_model, make_embeddings, scores(0.1, 0.7, 0.3, 0.2))
    run(make_model, make_embeddings, scores(0.1, 0.7, 0.3), workdir=tmp_path, stop_after_epochs=3)
    resumed = run(make_model, make_embeddings, scores(0.2), workdir=tmp_path)
    assert resumed[0].best_epoch == 2 and [h["val_score"] for h in resumed[0].history] == [0.1, 0.7, 0.3, 0.2]
    assert_same_run(resumed, straight)


def test_finished_run_is_returned_without_training(make_model, make_embeddings, tmp_path):
    done = run(make_model, make_embeddings, scores(0.1, 0.7, 0.3, 0.2), workdir=tmp_path)
    again = run(make_model, make_embeddings, scores(), workdir=tmp_path)  # validate would raise StopIteration
    assert again[0].history == done[0].history
    assert_same_run(again, done)


def test_other_settings_or_data_start_fresh_in_their_own_folder(make_model, make_embeddings, tmp_path):
    base, _ = run(make_model, make_embeddings, workdir=tmp_path, stop_after_epochs=2)
    other_lr = DecoderTrainConfig(**{**CONFIG.__dict__, "lr": 2e-3})
    fresh = run(make_model, make_embeddings, config=other_lr, workdir=tmp_path)
    assert fresh[0].run_dir != base.run_dir and [h["epoch"] for h in fresh[0].history] == [1, 2, 3, 4]
    assert_same_run(fresh, run(make_model, make_embeddings, config=other_lr))

    model = make_model(VOCAB.vocab_size, seed=0)
    other_data = train_decoder(model, VOCAB, make_embeddings(3, seed=1), CAPTIONS, CONFIG, progress=False,
                               workdir=tmp_path, stop_after_epochs=1)
    other_init, _ = run(lambda v, seed: make_model(v, seed=1), make_embeddings, workdir=tmp_path, stop_after_epochs=1)
    folders = {base.run_dir, fresh[0].run_dir, other_data.run_dir, other_init.run_dir}
    assert len(folders) == 4 and sorted(p.name for p in tmp_path.iterdir()) == sorted(f[-16:] for f in folders)


def test_a_checkpoint_of_another_run_is_refused(make_model, make_embeddings, tmp_path):
    base, _ = run(make_model, make_embeddings, workdir=tmp_path, stop_after_epochs=1)
    run_file = tmp_path / base.run_dir / CHECKPOINT / RUN_FILE
    document = json.loads(run_file.read_text())
    document["fingerprint"]["training"]["lr"] = 0.5  # e.g. a folder copied in from another run
    run_file.write_text(json.dumps(document))
    with pytest.raises(WorkdirError, match=r"different run \(it differs in: training\)") as error:
        run(make_model, make_embeddings, workdir=tmp_path)
    assert f"delete {tmp_path / base.run_dir}" in str(error.value)


def test_damaged_checkpoints_name_the_file_and_the_fix(make_model, make_embeddings, tmp_path):
    base, _ = run(make_model, make_embeddings, scores(0.5), workdir=tmp_path, stop_after_epochs=1)
    checkpoint = tmp_path / base.run_dir / CHECKPOINT
    fix = f"Delete {tmp_path / base.run_dir} to start this run over"
    assert (checkpoint / BEST_WEIGHTS).is_file()

    wrong_shape = make_model(VOCAB.vocab_size).state_dict()
    wrong_shape = {k: v.clone() for k, v in wrong_shape.items() if k != "gpt.lm_head.weight"}
    wrong_shape["mapper.0.weight"] = torch.zeros(7, 16)
    save_file(wrong_shape, str(checkpoint / BEST_WEIGHTS))
    with pytest.raises(CheckpointError, match=r"best\.safetensors: tensor 'mapper\.0\.weight' has shape \(7, 16\)") as error:
        run(make_model, make_embeddings, workdir=tmp_path)
    assert fix in str(error.value)

    (checkpoint / CURRENT_WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match=r"model\.safetensors cannot be read as safetensors"):
        run(make_model, make_embeddings, workdir=tmp_path)

    (checkpoint / "training_state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"training_state\.pt cannot be read") as error:
        run(make_model, make_embeddings, workdir=tmp_path)
    assert f"delete the checkpoint folder {checkpoint}" in str(error.value)
    assert "weights_only=False" not in str(error.value)  # torch's advice to unpickle it anyway is left out


def test_fit_decoder_checkpoints_into_its_workdir(make_embeddings, tmp_path):
    backbone = {"source": "scratch", "n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 32, "prefix_length": 4}
    training = {"epochs": 2, "batch_size": 2, "lr": 1e-3, "warmup_steps": 1, "seed": 0}
    generation = {"max_length": 8, "batch_size": 4}
    references = {10: ["a dog runs."], 11: ["two red cats sleep on a sofa."]}

    def fit(workdir):
        return fit_decoder(make_embeddings(3), CAPTIONS, make_embeddings(2, seed=5), [10, 11], references, backbone,
                           training, generation, "CIDEr_fast", torch.device("cpu"), progress=False, workdir=workdir)

    plain, first, again = fit(None), fit(tmp_path / "text"), fit(tmp_path / "text")
    (run_dir,) = (tmp_path / "text").iterdir()
    assert (run_dir / CHECKPOINT / RUN_FILE).is_file()
    for decoder in (first, again):
        assert without_seconds(decoder.extra["history"]) == without_seconds(plain.extra["history"])
        state = decoder.model.state_dict()
        assert all(torch.equal(v, state[k]) for k, v in plain.model.state_dict().items())
    assert again.extra["history"] == first.extra["history"]  # the second call trained nothing
