"""A small transformer denoiser: the vector cut into tokens, plus one time token, pre-norm encoder."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from diffusion_bridge.errors import ConfigError

from .unet1d import SinusoidalPosEmb


class TokenTransformer(nn.Module):
    """x [B, D] → `tokens` chunks of D/tokens → width; a time token is prepended; each chunk maps back."""

    def __init__(
        self,
        dim: int,
        tokens: int = 16,
        width: int = 256,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
    ):
        super().__init__()
        if dim % tokens:
            raise ConfigError(
                f"embedding dim {dim} does not split into {tokens} equal tokens; pick a divisor of {dim}"
            )
        self.tokens = tokens
        chunk = dim // tokens
        self.embed = nn.Linear(chunk, width)
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, width) * 0.02)
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(width), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        layer = nn.TransformerEncoderLayer(
            width, heads, width * mlp_ratio, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(width)
        self.unembed = nn.Linear(width, chunk)
        for block in self.encoder.layers:  # residual branches start at zero: every block starts as identity
            nn.init.zeros_(block.self_attn.out_proj.weight)
            nn.init.zeros_(block.self_attn.out_proj.bias)
            nn.init.zeros_(block.linear2.weight)
            nn.init.zeros_(block.linear2.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = self.embed(rearrange(x, "b (n c) -> b n c", n=self.tokens))
        time_token = rearrange(self.time_mlp(t), "b w -> b 1 w")
        h = self.encoder(torch.cat((time_token, h), dim=1) + self.pos)
        return rearrange(self.unembed(self.out_norm(h[:, 1:])), "b n c -> b (n c)")
