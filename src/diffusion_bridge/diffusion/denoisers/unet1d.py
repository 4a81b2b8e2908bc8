"""The reference's 1-D U-Net: the embedding as a 1-channel sequence (lucidrains' Unet1D as modified there).

Module names and nesting mirror the reference exactly, so `checkpoint['model']` with the `model.` prefix
stripped loads into `Unet1D(512, init_dim=32, dim_mults=(1, 2, 4, 8))` with strict=True (4,037,313
parameters). The reference's one change to lucidrains is that widths and the time embedding derive
from `init_dim` (32/64/128/256 channels, time width 4·init_dim) while the sinusoid has `dim` features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from diffusion_bridge.errors import ConfigError


class SinusoidalPosEmb(nn.Module):
    """Transformer-style sinusoidal features of a scalar time: [sin(t·f_k), cos(t·f_k)], f_k geometric."""

    def __init__(self, dim: int, theta: float = 10000):
        super().__init__()
        self.dim = dim
        self.theta = theta

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(self.theta) / (half - 1)))
        args = t.float()[:, None] * freqs[None, :]
        return torch.cat((args.sin(), args.cos()), dim=-1)


class RMSNorm(nn.Module):
    """Channel RMS norm with a learned gain (over dim 1 of [B, C, N])."""

    def __init__(self, dim: int):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1) * self.g * math.sqrt(x.shape[1])


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x) + x


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.norm = RMSNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(self.norm(x))


class Block(nn.Module):
    """conv3 → RMSNorm → optional FiLM from the time embedding → SiLU → dropout."""

    def __init__(self, dim: int, dim_out: int, dropout: float = 0.0):
        super().__init__()
        self.proj = nn.Conv1d(dim, dim_out, 3, padding=1)
        self.norm = RMSNorm(dim_out)
        self.act = nn.SiLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, scale_shift: tuple[Tensor, Tensor] | None = None) -> Tensor:
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.dropout(self.act(x))


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, *, time_emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_emb_dim, dim_out * 2))
        self.block1 = Block(dim, dim_out, dropout=dropout)
        self.block2 = Block(dim_out, dim_out)
        self.res_conv = nn.Conv1d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: Tensor, time_emb: Tensor) -> Tensor:
        scale_shift = rearrange(self.mlp(time_emb), "b c -> b c 1").chunk(2, dim=1)
        h = self.block2(self.block1(x, scale_shift=scale_shift))
        return h + self.res_conv(x)


class LinearAttention(nn.Module):
    """Shen et al.'s efficient attention: softmax over features for q, over positions for k."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.scale = dim_head**-0.5
        self.heads = heads
        hidden = dim_head * heads
        self.to_qkv = nn.Conv1d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv1d(hidden, dim, 1), RMSNorm(dim))

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (rearrange(p, "b (h c) n -> b h c n", h=self.heads) for p in self.to_qkv(x).chunk(3, dim=1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        context = torch.einsum("b h d n, b h e n -> b h d e", k, v)
        out = torch.einsum("b h d e, b h d n -> b h e n", context, q)
        return self.to_out(rearrange(out, "b h c n -> b (h c) n"))


class Attention(nn.Module):
    """Full softmax attention over positions (used once, at the lowest resolution)."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.heads = heads
        hidden = dim_head * heads
        self.to_qkv = nn.Conv1d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Conv1d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (rearrange(p, "b (h d) n -> b h n d", h=self.heads) for p in self.to_qkv(x).chunk(3, dim=1))
        out = F.scaled_dot_product_attention(q, k, v)  # default scale dim_head**-0.5, as the reference
        return self.to_out(rearrange(out, "b h n d -> b (h d) n"))


def downsample(dim: int, dim_out: int) -> nn.Module:
    return nn.Conv1d(dim, dim_out, 4, 2, 1)


def upsample(dim: int, dim_out: int) -> nn.Module:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv1d(dim, dim_out, 3, padding=1))


class Unet1D(nn.Module):
    """Denoiser over a [B, D] (or [B, 1, D]) vector treated as a length-D, 1-channel sequence.

    Defaults are the reference's `Unet1D(dim=512, init_dim=32, dim_mults=(1, 2, 4, 8), channels=1)`.
    `dim` is the vector length and, as in the reference, also the sinusoidal-feature width.
    """

    def __init__(
        self,
        dim: int = 512,
        init_dim: int = 32,
        dim_mults: Sequence[int] = (1, 2, 4, 8),
        dropout: float = 0.0,
        attn_heads: int = 4,
        attn_dim_head: int = 32,
        sinusoidal_dim: int | None = None,
        sinusoidal_theta: float = 10000,
    ):
        super().__init__()
        halvings = len(dim_mults) - 1
        if dim % (2**halvings):
            raise ConfigError(
                f"Unet1D halves the length {halvings} times, so the embedding dim must be divisible by "
                f"{2**halvings}; got dim={dim}. Use fewer dim_mults or the 'mlp' denoiser."
            )
        self.dim = dim
        self.channels = 1
        self.init_conv = nn.Conv1d(1, init_dim, 7, padding=3)

        widths = [init_dim, *(init_dim * m for m in dim_mults)]
        in_out = list(zip(widths[:-1], widths[1:], strict=True))
        time_dim = init_dim * 4
        sin_dim = sinusoidal_dim or dim
        self.time_mlp = nn.Sequential(
            SinusoidalPosEmb(sin_dim, theta=sinusoidal_theta),
            nn.Linear(sin_dim, time_dim),
            nn.GELU(),
            nn.Linear(time_dim, time_dim),
        )

        def resnet(a: int, b: int) -> ResnetBlock:
            return ResnetBlock(a, b, time_emb_dim=time_dim, dropout=dropout)

        self.downs = nn.ModuleList()
        for i, (w_in, w_out) in enumerate(in_out):
            last = i == len(in_out) - 1
            self.downs.append(nn.ModuleList([
                resnet(w_in, w_in),
                resnet(w_in, w_in),
                Residual(PreNorm(w_in, LinearAttention(w_in))),
                nn.Conv1d(w_in, w_out, 3, padding=1) if last else downsample(w_in, w_out),
            ]))

        mid = widths[-1]
        self.mid_block1 = resnet(mid, mid)
        self.mid_attn = Residual(PreNorm(mid, Attention(mid, heads=attn_heads, dim_head=attn_dim_head)))
        self.mid_block2 = resnet(mid, mid)

        self.ups = nn.ModuleList()
        for i, (w_in, w_out) in enumerate(reversed(in_out)):
            last = i == len(in_out) - 1
            self.ups.append(nn.ModuleList([
                resnet(w_out + w_in, w_out),
                resnet(w_out + w_in, w_out),
                Residual(PreNorm(w_out, LinearAttention(w_out))),
                nn.Conv1d(w_out, w_in, 3, padding=1) if last else upsample(w_out, w_in),
            ]))

        self.final_res_block = resnet(init_dim * 2, init_dim)
        self.final_conv = nn.Conv1d(init_dim, 1, 1)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        flat = x.ndim == 2
        if flat:
            x = rearrange(x, "b d -> b 1 d")
        x = self.init_conv(x)
        r = x.clone()
        temb = self.time_mlp(t)

        skips = []
        for block1, block2, attn, down in self.downs:
            x = block1(x, temb)
            skips.append(x)
            x = attn(block2(x, temb))
            skips.append(x)
            x = down(x)

        x = self.mid_block2(self.mid_attn(self.mid_block1(x, temb)), temb)

        for block1, block2, attn, up in self.ups:
            x = block1(torch.cat((x, skips.pop()), dim=1), temb)
            x = attn(block2(torch.cat((x, skips.pop()), dim=1), temb))
            x = up(x)

        x = self.final_conv(self.final_res_block(torch.cat((x, r), dim=1), temb))
        return rearrange(x, "b 1 d -> b d") if flat else x
