"""Generation through transformers' `generate` against naive one-caption-at-a-time decoding without a cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from diffusion_bridge.decoder import ClipBpeVocabulary, generate
from diffusion_bridge.errors import ConfigError

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
    """transformers' beam rule (length_penalty 1, early_stopping False) in plain lists, as generation.py states it.

    Live beams: the k best continuations by summed log-prob that did not end. Finished pool: those among the
    top k that end (end token, or the last allowed step), scored by mean log-prob per token; it keeps k. Stop
    when the pool is full and the best live beam's mean does not beat the pool's worst; return the pool's best.
    """
    captions = []
    for e in embeddings:
        live, pool = [([], 0.0)], []
        for step in range(max_length):
            candidates = []
            for ids, total in live:
                logp = _next_logprobs(model, e, ids)
                candidates += [(ids + [v], total + float(logp[v])) for v in range(len(logp))]
            top = sorted(candidates, key=lambda c: c[1], reverse=True)[: 2 * k]
            last = step == max_length - 1
            ended = [c for c in top[:k] if last or c[0][-1] == vocab.eos_id]
            pool = sorted(pool + [(ids, total / len(ids)) for ids, total in ended], key=lambda c: c[1], reverse=True)[:k]
            live = [c for c in top if not (last or c[0][-1] == vocab.eos_id)][:k]
            if not live or (len(pool) == k and live[0][1] / len(live[0][0]) <= pool[-1][1]):
                break
        captions.append(vocab.decode(pool[0][0]))
    return captions


def test_greedy_reproduces_the_overfitted_captions(overfit):
    assert generate(overfit.model, overfit.vocab, overfit.embeddings) == overfit.captions


def test_greedy_is_deterministic_and_equals_naive_decoding(overfit, make_model, make_embeddings):
    """The library's greedy decoding (KV cache, batched rows, padding after the end token) is a plain argmax."""
    # random directions, the training inputs, and points near them (captions that end at many lengths)
    near = F.normalize(overfit.embeddings + 0.35 * make_embeddings(8, seed=9), dim=-1)
    x = torch.cat([make_embeddings(5, seed=3), overfit.embeddings, near])
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


def test_batched_beam_follows_the_documented_rule(overfit, make_model, make_embeddings):
    near = F.normalize(overfit.embeddings[:3] + 0.35 * make_embeddings(3, seed=8), dim=-1)
    x = torch.cat([make_embeddings(3, seed=6), near])
    random_model = make_model(VOCAB.vocab_size, seed=7, spread=True)
    for model, vocab in [(overfit.model, overfit.vocab), (random_model, VOCAB)]:
        batched = generate(model, vocab, x, method="beam", beam_size=3, max_length=8, batch_size=4)
        assert batched == generate(model, vocab, x, method="beam", beam_size=3, max_length=8, batch_size=1)
        assert batched == naive_beam(model, vocab, x, max_length=8, k=3)


def test_model_generation_defaults_do_not_change_the_decoding(overfit, make_embeddings):
    """A pretrained GPT-2 brings its own generation_config.json; generate() must not follow it."""
    x = make_embeddings(6, seed=10)
    expected = {m: generate(overfit.model, overfit.vocab, x, method=m, max_length=12) for m in ("greedy", "beam")}
    defaults = overfit.model.gpt.generation_config
    overfit.model.gpt.generation_config = type(defaults)(
        repetition_penalty=5.0, no_repeat_ngram_size=1, min_new_tokens=6, num_beams=4, length_penalty=-2.0, do_sample=True,
    )
    try:
        for method, captions in expected.items():
            assert generate(overfit.model, overfit.vocab, x, method=method, max_length=12) == captions
    finally:
        overfit.model.gpt.generation_config = defaults


def test_bad_arguments_raise(overfit):
    with pytest.raises(ConfigError, match="method='sample'"):
        generate(overfit.model, overfit.vocab, overfit.embeddings, method="sample")
    with pytest.raises(ConfigError, match="exceeds the decoder's 64 positions"):
        generate(overfit.model, overfit.vocab, overfit.embeddings, max_length=60)
    with pytest.raises(ConfigError, match="max_length=0"):
        generate(overfit.model, overfit.vocab, overfit.embeddings, max_length=0)
