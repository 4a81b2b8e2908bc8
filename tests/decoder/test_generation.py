"""Batched, cached generation against naive one-caption-at-a-time decoding without a cache."""

from __future__ import annotations

import pytest
import torch

from diffusion_bridge.decoder import ClipBpeVocabulary, generate

VOCAB = ClipBpeVocabulary.fit(["a dog runs on the grass near two red cats and a blue bicycle."])


@torch.no_grad()
def _next_logprobs(model, embedding: torch.Tensor, ids: list[int]) -> torch.Tensor:
    """Full forward over [prefix; tokens so far], no cache: log-probs of the next token."""
    prefix = model.mapper(embedding[None]).view(1, model.prefix_length, -1)
    tokens = model.gpt.transformer.wte(torch.tensor([ids], dtype=torch.long))
    logits = model.gpt(inputs_embeds=torch.cat([prefix, tokens], dim=1)).logits[0, -1]
    return torch.log_softmax(logits.double(), dim=-1)


def naive_greedy(model, vocab, embeddings, max_length):
    captions = []
    for e in embeddings:
        ids: list[int] = []
        while len(ids) < max_length:
            ids.append(int(_next_logprobs(model, e, ids).argmax()))
            if ids[-1] == vocab.eos_id:
                break
        captions.append(vocab.decode(ids))
    return captions


def naive_beam(model, vocab, embeddings, max_length, k):
    """Plain-list beam search ranked by mean token log-prob; finished beams are carried unchanged."""
    captions = []
    for e in embeddings:
        beams = [([], 0.0, False)]
        for _ in range(max_length):
            candidates = []
            for ids, total, done in beams:
                if done:
                    candidates.append((ids, total, True))
                    continue
                logp = _next_logprobs(model, e, ids)
                candidates += [(ids + [v], total + float(logp[v]), v == vocab.eos_id) for v in range(len(logp))]
            beams = sorted(candidates, key=lambda b: b[1] / len(b[0]), reverse=True)[:k]
            if all(done for _, _, done in beams):
                break
        captions.append(vocab.decode(max(beams, key=lambda b: b[1] / len(b[0]))[0]))
    return captions


def test_greedy_reproduces_the_overfitted_captions(overfit):
    assert generate(overfit.model, overfit.vocab, overfit.embeddings) == overfit.captions


def test_greedy_is_deterministic_and_equals_naive_decoding(overfit, make_model, make_embeddings):
    x = make_embeddings(5, seed=3)
    random_model = make_model(VOCAB.vocab_size, seed=2, spread=True)
    for model, vocab in [(overfit.model, overfit.vocab), (random_model, VOCAB)]:
        batched = generate(model, vocab, x, max_length=12)
        assert batched == generate(model, vocab, x, max_length=12)
        assert batched == generate(model, vocab, x, max_length=12, batch_size=2)
        assert batched == naive_greedy(model, vocab, x, max_length=12)


def test_beam_of_one_is_greedy(overfit, make_model, make_embeddings):
    x = make_embeddings(6, seed=4)
    random_model = make_model(VOCAB.vocab_size, seed=5, spread=True)
    for model, vocab in [(overfit.model, overfit.vocab), (random_model, VOCAB)]:
        greedy = generate(model, vocab, x, max_length=10)
        assert generate(model, vocab, x, method="beam", beam_size=1, max_length=10) == greedy


def test_batched_beam_equals_naive_beam(overfit, make_model, make_embeddings):
    x = make_embeddings(3, seed=6)
    random_model = make_model(VOCAB.vocab_size, seed=7, spread=True)
    for model, vocab in [(overfit.model, overfit.vocab), (random_model, VOCAB)]:
        batched = generate(model, vocab, x, method="beam", beam_size=3, max_length=6, batch_size=2)
        assert batched == naive_beam(model, vocab, x, max_length=6, k=3)


def test_bad_arguments_raise(overfit):
    with pytest.raises(ValueError, match="method='sample'"):
        generate(overfit.model, overfit.vocab, overfit.embeddings, method="sample")
    with pytest.raises(ValueError, match="exceeds the decoder's 64 positions"):
        generate(overfit.model, overfit.vocab, overfit.embeddings, max_length=60)
