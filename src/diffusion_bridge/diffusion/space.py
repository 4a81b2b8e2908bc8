"""The space the DDPM lives in: mean-shifted, re-normalised CLIP embeddings on a sphere of radius r."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# The reference scales 512-d vectors to norm 5 (ddpm/train_norm.py: `scale=5`).
REFERENCE_RADIUS = 5.0
REFERENCE_DIM = 512


def default_radius(dim: int) -> float:
    """5·sqrt(dim/512): the reference's 5 for 512-d, scaled so a coordinate keeps the same size.

    With unit-variance noise, x_t = sqrt(ᾱ) x0 + sqrt(1-ᾱ) ε has ||ε|| ≈ sqrt(dim), so scaling r
    with sqrt(dim) keeps the signal-to-noise ratio of a given insertion step t0 the same for any dim.
    """
    return REFERENCE_RADIUS * math.sqrt(dim / REFERENCE_DIM)


def project_to_radius(x: Tensor, radius: float) -> Tensor:
    """radius · x/||x|| along the last axis (the reference's `F.normalize(x, dim=-1) * rescale`)."""
    return F.normalize(x, dim=-1) * radius


def to_diffusion_space(emb: Tensor, mean: Tensor, radius: float) -> Tensor:
    """radius · normalize(normalize(emb) - mean): the reference's training vector x0 (and its bridge input).

    `mean` is the modality mean of the L2-normalised embeddings (text for training, image for bridging).
    Computed in float32 whatever the input dtype (CLIP often hands back float16).
    """
    emb = emb.float()
    return project_to_radius(F.normalize(emb, dim=-1) - mean.to(emb.device, torch.float32), radius)
