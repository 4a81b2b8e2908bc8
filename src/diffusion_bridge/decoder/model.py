"""The prefix captioner: a CLIP-space vector becomes a prefix of token embeddings for GPT-2 (ClipCap).

Reference: ClipCap's MLP mapper as used by C3 / Diffusion Bridge (`models/decoder.py`, `models/mlp.py`):
D -> (P*H)/2 -> P*H with one Tanh in between, P = 10 prefix tokens of GPT-2's width H.
"""

from __future__ import annotations

import json
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from diffusion_bridge.errors import CheckpointError, InputError

PREFIX_LENGTH = 10  # ClipCap / reference `model.prefix_length`


def _mapper(embed_dim: int, prefix_length: int, width: int) -> nn.Sequential:
    hidden = prefix_length * width // 2
    return nn.Sequential(
        nn.Linear(embed_dim, hidden), nn.Tanh(), nn.Linear(hidden, prefix_length * width)
    )


class PrefixCaptioner(nn.Module):
    """MLP mapper + GPT-2 language model; fed unit CLIP-space vectors, it writes their captions."""

    def __init__(self, gpt: GPT2LMHeadModel, embed_dim: int, prefix_length: int = PREFIX_LENGTH,
                 source: str = "scratch"):
        super().__init__()
        self.gpt = gpt
        self.embed_dim = int(embed_dim)
        self.prefix_length = int(prefix_length)
        self.source = source
        self.width = int(gpt.config.n_embd)
        self.mapper = _mapper(self.embed_dim, self.prefix_length, self.width)

    @classmethod
    def from_pretrained_gpt2(cls, name_or_path: str, embed_dim: int,
                             prefix_length: int = PREFIX_LENGTH) -> PrefixCaptioner:
        """GPT-2 weights from the hub cache or a local folder (the paper: `gpt2`, 124M)."""
        try:
            gpt = GPT2LMHeadModel.from_pretrained(name_or_path)
        except (OSError, ValueError) as error:
            raise CheckpointError(
                f"Cannot load GPT-2 weights {name_or_path!r}: {error}. Pass a local folder holding config.json "
                "and model.safetensors, or run once on a connected machine to fill the Hugging Face cache."
            ) from error
        return cls(gpt, embed_dim, prefix_length, source=str(name_or_path))

    @classmethod
    def from_scratch(cls, embed_dim: int, vocab_size: int, n_layer: int, n_head: int, n_embd: int,
                     n_positions: int, prefix_length: int = PREFIX_LENGTH,
                     eos_id: int | None = None, dropout: float = 0.1,
                     activation: str = "gelu_new") -> PrefixCaptioner:
        """A small randomly initialised GPT-2 for the offline corpus (no download). `dropout` (embeddings,
        attention, residuals) and `activation` default to GPT-2's own; `gelu_pytorch_tanh` is the same tanh
        approximation as `gelu_new` in one fused kernel."""
        config = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd,
                            n_layer=n_layer, n_head=n_head, bos_token_id=eos_id, eos_token_id=eos_id,
                            resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                            activation_function=activation)
        return cls(GPT2LMHeadModel(config), embed_dim, prefix_length)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PrefixCaptioner:
        """An untrained model of the shape `.config` describes (weights come from a checkpoint)."""
        gpt = GPT2LMHeadModel(GPT2Config.from_dict(config["gpt2"]))
        return cls(gpt, config["embed_dim"], config["prefix_length"], config.get("source", "scratch"))

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able description: enough to rebuild the model before loading its weights."""
        return {
            "embed_dim": self.embed_dim,
            "prefix_length": self.prefix_length,
            "source": self.source,
            "gpt2": json.loads(self.gpt.config.to_json_string(use_diff=False)),
        }

    @property
    def vocab_size(self) -> int:
        return int(self.gpt.config.vocab_size)

    @property
    def max_positions(self) -> int:
        return int(self.gpt.config.n_positions)

    def check_embeddings(self, embeddings: torch.Tensor, what: str = "embeddings") -> None:
        """Raise `InputError` unless `embeddings` is [N, embed_dim]."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embed_dim:
            raise InputError(
                f"{what} have shape {tuple(embeddings.shape)} but this decoder expects [N, {self.embed_dim}]; "
                "pass embeddings from the CLIP model the decoder was trained with, or train a decoder "
                f"with embed_dim={embeddings.shape[-1]}."
            )

    def prefix(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B, D] -> [B, P, H] prefix token embeddings."""
        return rearrange(self.mapper(embeddings), "b (p h) -> b p h", p=self.prefix_length)

    def token_embeddings(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.gpt.transformer.wte(tokens)

    def forward(self, prefix_embeddings: torch.Tensor, tokens: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, L, V] aligned with `tokens` [B, L]: `logits[:, i]` predicts `tokens[:, i]`.

        Position P-1 (the last prefix slot) predicts the first caption token, as in the reference
        (`logits[:, prefix_length - 1 : -1]`). `mask` [B, L] marks real tokens; with right padding it
        may be left out, because causal attention never lets a real token see the padding after it.
        """
        prefix = self.prefix(prefix_embeddings)
        inputs = torch.cat([prefix, self.token_embeddings(tokens)], dim=1)
        attention = None
        if mask is not None:
            attention = torch.cat([mask.new_ones(mask.shape[0], self.prefix_length), mask], dim=1)
        hidden = self.gpt.transformer(inputs_embeds=inputs, attention_mask=attention, use_cache=False)[0]
        return self.gpt.lm_head(hidden[:, self.prefix_length - 1 : -1])

    def loss(self, prefix_embeddings: torch.Tensor, tokens: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the real caption tokens (prefix and padding not scored)."""
        logits = self(prefix_embeddings, tokens)
        per_token = F.cross_entropy(rearrange(logits.float(), "b l v -> b v l"), tokens, reduction="none")
        weights = mask.to(per_token.dtype)
        return (per_token * weights).sum() / weights.sum().clamp_min(1.0)
