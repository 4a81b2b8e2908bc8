"""Batched caption generation through transformers' `generate`: greedy (the reference's decoding) or beam search.

The mapper's prefix goes in as `inputs_embeds`; the key/value cache, the end-of-caption bookkeeping and
the beam search are the library's. Each call decodes `batch_size` rows at once; a row that emitted the end
token is padded from then on, and the call returns when every row has ended or `max_length` tokens are out.

Beam search is transformers' rule (`length_penalty=1.0`, `early_stopping=False`), not ClipCap's
`generate_beam`. Each step extends the k live beams, keeps as live the k best continuations by *summed*
log-probability that did not end, and moves those among the top k that end (emit the end token, or reach
`max_length`) into a pool of finished captions scored by their *mean* log-probability per token, the end
token counted. The search stops once the pool holds k captions and the best live beam's mean cannot beat the
pool's worst; the pool's best is returned. ClipCap instead ranks live and finished beams together by their
mean and freezes the finished ones in place. The reference decodes greedily, so no number of the paper
depends on the difference.
"""

from __future__ import annotations

import torch
from transformers import GenerationConfig

from diffusion_bridge.errors import ConfigError

from .model import PrefixCaptioner
from .vocabulary import CaptionVocabulary

MAX_LENGTH = 40  # reference `generate2`: entry_length 39 tokens, then the stop token
METHODS = ("greedy", "beam")


def generation_config(vocab: CaptionVocabulary, method: str, beam_size: int, max_length: int) -> GenerationConfig:
    """The decoding as transformers spells it. The neutral settings are explicit, so that a pretrained GPT-2's
    own `generation_config.json` (which fills every setting left unset) cannot change how captions decode."""
    beams = {"length_penalty": 1.0, "early_stopping": False} if method == "beam" else {}
    return GenerationConfig(
        max_new_tokens=max_length, min_new_tokens=0, do_sample=False, num_beams=beam_size if method == "beam" else 1,
        repetition_penalty=1.0, no_repeat_ngram_size=0, eos_token_id=vocab.eos_id, pad_token_id=vocab.pad_id, **beams,
    )


def _check(model: PrefixCaptioner, embeddings: torch.Tensor, method: str, beam_size: int, max_length: int) -> None:
    if method not in METHODS:
        raise ConfigError(f"method={method!r}: use 'greedy' or 'beam'.")
    if method == "beam" and not 1 <= beam_size <= model.vocab_size:
        raise ConfigError(f"beam_size={beam_size} must be between 1 and the vocabulary size {model.vocab_size}.")
    if max_length < 1:
        raise ConfigError(f"max_length={max_length} must be at least 1 token.")
    if model.prefix_length + max_length > model.max_positions:
        raise ConfigError(
            f"max_length={max_length} plus the {model.prefix_length}-token prefix exceeds the decoder's "
            f"{model.max_positions} positions; lower max_length."
        )
    model.check_embeddings(embeddings)


@torch.no_grad()
def generate(model: PrefixCaptioner, vocab: CaptionVocabulary, embeddings: torch.Tensor,
             method: str = "greedy", beam_size: int = 3, max_length: int = MAX_LENGTH,
             batch_size: int = 256) -> list[str]:
    """One caption per row of `embeddings` [N, D] (unit vectors in the decoder's input space).

    Batched over `batch_size` rows at a time (beam search: `batch_size` inputs x `beam_size` beams),
    at most `max_length` tokens each, the end token included. Greedy is deterministic; the reference
    decodes greedily.
    """
    _check(model, embeddings, method, beam_size, max_length)
    settings = generation_config(vocab, method, beam_size, max_length)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    captions: list[str] = []
    try:
        for chunk in embeddings.split(batch_size):
            prefix = model.prefix(chunk.to(device=device, dtype=dtype))
            attention = torch.ones(prefix.shape[:2], dtype=torch.long, device=device)
            # With only `inputs_embeds` given, a decoder-only model returns the new tokens alone.
            ids = model.gpt.generate(inputs_embeds=prefix, attention_mask=attention, generation_config=settings)
            captions.extend(vocab.decode(row) for row in ids.tolist())
    finally:
        model.train(was_training)
    return captions
