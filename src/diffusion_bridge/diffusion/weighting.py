"""Per-sample loss weights, defined once in x0 space and converted to each objective's space.

A weighting names w(t) in  w(t) · ||x0_hat - x0||².  Because ||Δx0||² = ||Δε||² / SNR and
||Δx0||² = ||Δv||² / (SNR + 1), the same weighting applied to an ε- or v-regression loss is
w/SNR or w/(SNR+1).  So `snr` reproduces lucidrains' defaults for every objective (SNR for
pred_x0, as the reference trains; 1 for pred_noise; SNR/(SNR+1) for pred_v), and
`min_snr` is Hang et al.'s Min-SNR-γ (γ = 5 in that paper).
"""

from __future__ import annotations

import torch
from torch import Tensor

from diffusion_bridge.errors import ConfigError

from .objectives import check_objective

WEIGHTINGS = ("snr", "min_snr", "uniform")




def check_weighting(weighting: str) -> str:
    """Return `weighting` if known, else raise ConfigError."""
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"unknown loss weighting {weighting!r}; choose one of {list(WEIGHTINGS)}")
    return weighting


def x0_space_weight(weighting: str, snr: Tensor, gamma: float = 5.0) -> Tensor:
    """w(t) on the x0 squared error: SNR, min(SNR, γ) or 1."""
    check_weighting(weighting)
    if weighting == "snr":
        return snr
    if weighting == "min_snr":
        return snr.clamp(max=gamma)
    return torch.ones_like(snr)


def loss_weight(weighting: str, objective: str, snr: Tensor, gamma: float = 5.0) -> Tensor:
    """The weight to multiply the per-sample MSE in `objective`'s own output space."""
    check_objective(objective)
    if objective == "pred_x0" and weighting == "snr":
        return snr  # the reference's buffer, untouched, so its loss is reproduced exactly
    if objective == "pred_noise" and weighting == "snr":
        return torch.ones_like(snr)
    w = x0_space_weight(weighting, snr, gamma)
    if objective == "pred_noise":
        return w / snr
    if objective == "pred_v":
        return w / (snr + 1)
    return w
