"""Denoising networks ε/x0/v-predictors: every one maps (x [B, D], t [B] long) → [B, D]."""

from __future__ import annotations

from torch import nn

from diffusion_bridge.errors import ConfigError

from .mlp import ResidualMLP
from .transformer import TokenTransformer
from .unet1d import Unet1D

DENOISERS: dict[str, type[nn.Module]] = {
    "unet1d": Unet1D,  # the reference architecture (4.04 M parameters at dim 512)
    "mlp": ResidualMLP,  # the fast default
    "transformer": TokenTransformer,
}




def build_denoiser(name: str, dim: int, **kwargs) -> nn.Module:
    """Instantiate the denoiser `name` for `dim`-dimensional vectors; kwargs are its size settings."""
    if name not in DENOISERS:
        raise ConfigError(f"unknown denoiser {name!r}; choose one of {sorted(DENOISERS)}")
    return DENOISERS[name](dim, **kwargs)


__all__ = ["DENOISERS", "ResidualMLP", "TokenTransformer", "Unet1D", "ConfigError", "build_denoiser"]
