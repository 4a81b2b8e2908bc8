"""Decoder training: token packing, the LR schedule, seeding, and checkpoint choice by validation score."""

from __future__ import annotations

import pytest
import torch
from transformers import get_linear_schedule_with_warmup

from diffusion_bridge.decoder import (
    ClipBpeVocabulary,
    DecoderTrainConfig,
    TokenisedCaptions,
    caption_tokens,
    train_decoder,
)
from diffusion_bridge.errors import ConfigError, InputError

CAPTIONS = ["a dog runs.", "two red cats sleep on a sofa.", "a man rides a bike down the street."]
QUICK = DecoderTrainConfig(epochs=3, batch_size=2, lr=1e-3, warmup_steps=2, weight_decay=0.0, seed=0)


def test_caption_tokens_pad_append_eos_and_truncate():
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    encoded = vocab.encode(CAPTIONS)
    tokens, lengths = caption_tokens(vocab, CAPTIONS)
    assert lengths.tolist() == [len(ids) + 1 for ids in encoded]
    for row, ids in enumerate(encoded):
        assert tokens[row, : len(ids)].tolist() == ids
        assert tokens[row, len(ids)] == vocab.eos_id
        assert (tokens[row, len(ids) + 1 :] == vocab.pad_id).all()
    short, short_lengths = caption_tokens(vocab, CAPTIONS, max_tokens=4)
    assert short.shape == (3, 4) and short_lengths.tolist() == [4, 4, 4]
    assert short[:, -1].tolist() == [vocab.eos_id] * 3
    assert short[2, :3].tolist() == encoded[2][:3]


def test_lr_follows_the_reference_schedule(make_model, make_embeddings):
    """Warm-up then linear decay to 0 (transformers' get_linear_schedule_with_warmup), stepped once per batch."""
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    config = DecoderTrainConfig(**{**QUICK.__dict__, "epochs": 5, "warmup_steps": 3})
    result = train_decoder(make_model(vocab.vocab_size), vocab, make_embeddings(3), CAPTIONS, config, progress=False)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    reference = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=3, num_training_steps=10)
    expected = []
    for _ in range(5):
        for _ in range(2):  # two batches per epoch
            optimizer.step()
            reference.step()
        expected.append(reference.get_last_lr()[0])
    assert [h["lr"] for h in result.history] == expected


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_is_seeded_and_deterministic(make_model, make_embeddings):
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    x = make_embeddings(3)
    runs = []
    for seed in (0, 0, 1):
        model = make_model(vocab.vocab_size, seed=0).train()
        config = DecoderTrainConfig(**{**QUICK.__dict__, "seed": seed, "noise_std": 0.1})
        result = train_decoder(model, vocab, x, CAPTIONS, config, progress=False)
        runs.append((result, _state(model)))
    (a, state_a), (b, state_b), (c, state_c) = runs
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)  # another seed, another run
    assert a.steps == 3 * 2 and len(a.history) == 3 and a.best_epoch == 3 and a.best_score is None


def test_best_epoch_is_chosen_by_validation(make_model, make_embeddings):
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    scores = iter([0.1, 0.7, 0.3, 0.2])
    seen = {}

    def validate(model):
        epoch = len(seen) + 1
        seen[epoch] = _state(model)
        return next(scores)

    model = make_model(vocab.vocab_size)
    config = DecoderTrainConfig(**{**QUICK.__dict__, "epochs": 4})
    result = train_decoder(model, vocab, make_embeddings(3), CAPTIONS, config, validate=validate, progress=False)
    assert [h["val_score"] for h in result.history] == [0.1, 0.7, 0.3, 0.2]
    assert (result.best_epoch, result.best_score) == (2, 0.7)
    for name, value in seen[2].items():
        assert torch.equal(result.state_dict[name], value)
        assert torch.equal(model.state_dict()[name], value)
    assert not torch.equal(seen[4]["mapper.0.weight"], seen[2]["mapper.0.weight"])
    assert not model.training


def test_bad_inputs_are_named(make_model, make_embeddings):
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    model = make_model(vocab.vocab_size)
    with pytest.raises(InputError, match="3 training embeddings but 2 captions"):
        train_decoder(model, vocab, make_embeddings(3), CAPTIONS[:2], QUICK, progress=False)
    with pytest.raises(InputError, match=r"\[N, 16\]"):
        train_decoder(model, vocab, make_embeddings(3, dim=8), CAPTIONS, QUICK, progress=False)
    with pytest.raises(ConfigError, match="precision='fp8'"):
        DecoderTrainConfig(precision="fp8")
    with pytest.raises(ConfigError, match="batch_size=0"):
        DecoderTrainConfig(batch_size=0)


def test_pretokenised_captions_train_exactly_as_their_text(make_model, make_embeddings):
    """What lets the three decoders share one tokenisation: same captions, same run, bit for bit."""
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    x = make_embeddings(3)
    states = []
    for captions in (CAPTIONS, caption_tokens(vocab, CAPTIONS)):
        model = make_model(vocab.vocab_size, seed=0)
        result = train_decoder(model, vocab, x, captions, QUICK, progress=False)
        states.append((result.history, _state(model)))
    (history_text, text), (history_tokens, tokens) = states
    assert [h["train_loss"] for h in history_text] == [h["train_loss"] for h in history_tokens]
    assert all(torch.equal(text[k], tokens[k]) for k in text)


def test_pretokenised_captions_that_do_not_fit_are_named(make_model, make_embeddings):
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    model = make_model(vocab.vocab_size)
    tokens, lengths = caption_tokens(vocab, CAPTIONS)
    with pytest.raises(InputError, match="3 training embeddings but 2 captions"):
        train_decoder(model, vocab, make_embeddings(3), TokenisedCaptions(tokens[:2], lengths[:2]), QUICK, progress=False)
    other = ClipBpeVocabulary.fit(CAPTIONS + ["zebras graze near the water."])
    foreign = caption_tokens(other, ["zebras graze near the water."] * 3)
    with pytest.raises(InputError, match="outside the .*-token vocabulary"):
        train_decoder(model, vocab, make_embeddings(3), foreign, QUICK, progress=False)
    short = DecoderTrainConfig(**{**QUICK.__dict__, "max_tokens": 4})
    with pytest.raises(InputError, match="max_tokens=4"):
        train_decoder(model, vocab, make_embeddings(3), TokenisedCaptions(tokens, lengths), short, progress=False)
