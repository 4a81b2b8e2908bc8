"""Batched caption generation with GPT-2's key/value cache: greedy (the reference's decoding) or beam search.

All rows of a batch share one length (a P-token prefix, then one token per step), so no padding is
needed and every step is one forward pass of one new token per row. Rows that emitted the end token
keep emitting it; the loop stops when every row has.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat

from .model import PrefixCaptioner
from .vocabulary import CaptionVocabulary

MAX_LENGTH = 40  # reference `generate2`: entry_length 39 tokens, then the stop token


def _greedy(model: PrefixCaptioner, embeddings: torch.Tensor, eos_id: int, max_length: int) -> torch.Tensor:
    """[B, D] -> generated ids [B, T <= max_length]; rows end with eos then eos-padding."""
    logits, cache = model.step(model.prefix(embeddings))
    done = torch.zeros(embeddings.shape[0], dtype=torch.bool, device=embeddings.device)
    out = []
    for _ in range(max_length):
        token = logits.argmax(dim=-1).masked_fill(done, eos_id)
        out.append(token)
        done |= token == eos_id
        if bool(done.all()):
            break
        logits, cache = model.step(model.token_embeddings(token[:, None]), cache)
    return torch.stack(out, dim=1)


def _beam(model: PrefixCaptioner, embeddings: torch.Tensor, eos_id: int, max_length: int,
          beam_size: int) -> torch.Tensor:
    """Beam search ranked by length-normalised log-probability (sum of token log-probs / tokens written).

    As ClipCap's `generate_beam`, beams are pruned and the winner is picked by that mean, the end token
    counting as one token. A finished beam is frozen: it can only extend with eos at no cost and no
    added length, so its mean stays put. With `beam_size=1` this is exactly greedy decoding.
    """
    b, k = embeddings.shape[0], beam_size
    logits, cache = model.step(model.prefix(repeat(embeddings, "b d -> (b k) d", k=k)))
    vocab = logits.shape[-1]
    # Only beam 0 is live at the start, so the k copies of the prefix do not pick the same token k times.
    total = torch.full((b, k), float("-inf"), device=embeddings.device)
    total[:, 0] = 0.0
    total = rearrange(total, "b k -> (b k)")
    length = torch.zeros(b * k, device=embeddings.device)
    done = torch.zeros(b * k, dtype=torch.bool, device=embeddings.device)
    history = torch.empty(b * k, 0, dtype=torch.long, device=embeddings.device)
    eos_only = torch.full((vocab,), float("-inf"), device=embeddings.device)
    eos_only[eos_id] = 0.0
    for _ in range(max_length):
        logp = torch.log_softmax(logits.float(), dim=-1)
        logp = torch.where(done[:, None], eos_only, logp)
        cand_total = total[:, None] + logp  # [(b k), V]
        cand_length = (length + (~done).float())[:, None]
        cand_mean = rearrange(cand_total / cand_length, "(b k) v -> b (k v)", k=k)
        _, flat = cand_mean.topk(k, dim=-1)  # [b, k]
        parent = rearrange(flat // vocab + torch.arange(b, device=flat.device)[:, None] * k, "b k -> (b k)")
        token = rearrange(flat % vocab, "b k -> (b k)")
        total = cand_total[parent, token]
        length = cand_length[parent, 0]
        history = torch.cat([history[parent], token[:, None]], dim=1)
        done = done[parent] | (token == eos_id)
        if bool(done.all()):
            break
        cache.reorder_cache(parent)
        logits, cache = model.step(model.token_embeddings(token[:, None]), cache)
    best = (total / length.clamp_min(1.0)).view(b, k).argmax(dim=-1)
    return history.view(b, k, -1)[torch.arange(b, device=history.device), best]


@torch.no_grad()
def generate(model: PrefixCaptioner, vocab: CaptionVocabulary, embeddings: torch.Tensor,
             method: str = "greedy", beam_size: int = 3, max_length: int = MAX_LENGTH,
             batch_size: int = 256) -> list[str]:
    """One caption per row of `embeddings` [N, D] (unit vectors in the decoder's input space).

    Batched over `batch_size` rows at a time (beam search: `batch_size` inputs x `beam_size` beams),
    at most `max_length` tokens each. Greedy is deterministic; the reference decodes greedily.
    """
    if method not in ("greedy", "beam"):
        raise ValueError(f"method={method!r}: use 'greedy' or 'beam'.")
    if method == "beam" and not 1 <= beam_size <= model.vocab_size:
        raise ValueError(f"beam_size={beam_size} must be between 1 and the vocabulary size {model.vocab_size}.")
    if model.prefix_length + max_length > model.max_positions:
        raise ValueError(
            f"max_length={max_length} plus the {model.prefix_length}-token prefix exceeds the decoder's "
            f"{model.max_positions} positions; lower max_length."
        )
    model.check_embeddings(embeddings)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    captions: list[str] = []
    try:
        for chunk in embeddings.split(batch_size):
            x = chunk.to(device=device, dtype=dtype)
            if method == "greedy":
                ids = _greedy(model, x, vocab.eos_id, max_length)
            else:
                ids = _beam(model, x, vocab.eos_id, max_length, beam_size)
            captions.extend(vocab.decode(row) for row in ids.tolist())
    finally:
        model.train(was_training)
    return captions
