"""The embedding space every stage works in, defined once.

CLIP compares embeddings by cosine, so everything starts from unit vectors. Each modality is then
centred on its own mean over the train split (REFERENCE.md §2) and re-normalised:

    centre(e, mean)              = normalize(normalize(e) − mean)     the caption decoder's input space (C3)
    to_diffusion_space(e, mean)  = r · centre(e, mean)                the DDPM's sphere of radius r (§3)
    noise_injected(e, mean, σ²)  = normalize(normalize(e) − mean + ε)  CapDec's noise, ε ~ N(0, σ²I)

Text is centred with `text_mean`, images with `image_mean` ("mean shift"). Widths are checked where
tensors meet: a mean or a model of another CLIP stops here with a named error instead of broadcasting.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from diffusion_bridge.errors import InputError

# The reference scales 512-d vectors to norm 5 (ddpm/train_norm.py: `scale=5`).
REFERENCE_RADIUS = 5.0
REFERENCE_DIM = 512


def require_width(x: Tensor, width: int, what: str, fix: str) -> None:
    """Raise `InputError` unless the last axis of `x` has `width` entries (and `x` is a vector or a matrix)."""
    if x.ndim not in (1, 2) or x.shape[-1] != width:
        raise InputError(f"{what} has shape {tuple(x.shape)} but {width}-d vectors are expected. Fix: {fix}")


def _check_mean(embeddings: Tensor, mean: Tensor) -> None:
    if embeddings.ndim != 2:
        raise InputError(f"embeddings have shape {tuple(embeddings.shape)}; expected a matrix [N, D] with one row per item")
    require_width(mean, embeddings.shape[1], "the modality mean",
                  "use the modality_means computed from the same CLIP model as the embeddings (rerun `prepare`)")
    if mean.ndim != 1:
        raise InputError(f"the modality mean has shape {tuple(mean.shape)}; expected one vector [D]. Fix: rerun `prepare`")


def normalize(x: Tensor) -> Tensor:
    """Rows scaled to unit L2 norm, in float32 whatever the input dtype (CLIP often hands back float16)."""
    return F.normalize(x.float(), dim=-1)


def modality_means(image_embeddings: Tensor, text_embeddings: Tensor) -> dict[str, Tensor]:
    """`mean(normalize(x))` per modality: one row per image and one per caption, as the reference does."""
    if image_embeddings.ndim != 2 or text_embeddings.ndim != 2 or image_embeddings.shape[1] != text_embeddings.shape[1]:
        raise InputError(
            f"image embeddings {tuple(image_embeddings.shape)} and text embeddings {tuple(text_embeddings.shape)} "
            "must be matrices of the same width; embed both with the same CLIP model"
        )
    return {
        "image_mean": F.normalize(image_embeddings.double(), dim=-1).mean(0).float(),
        "text_mean": F.normalize(text_embeddings.double(), dim=-1).mean(0).float(),
    }


def centre(embeddings: Tensor, mean: Tensor) -> Tensor:
    """normalize(normalize(e) − mean): text with text_mean, images with image_mean (C3's "collapse")."""
    _check_mean(embeddings, mean)
    return F.normalize(normalize(embeddings) - mean.to(embeddings.device).float(), dim=-1)


def noise_injected(embeddings: Tensor, mean: Tensor, variance: float, generator: torch.Generator) -> Tensor:
    """Mean shift plus Gaussian noise before the re-normalisation, as the reference's data pipeline adds it."""
    _check_mean(embeddings, mean)
    shifted = normalize(embeddings) - mean.to(embeddings.device).float()
    noise = torch.randn(shifted.shape, generator=generator) * variance**0.5
    return F.normalize(shifted + noise.to(shifted.device), dim=-1)


def default_radius(dim: int) -> float:
    """5·sqrt(dim/512): the reference's 5 for 512-d, scaled so a coordinate keeps the same size.

    With unit-variance noise, x_t = sqrt(ᾱ) x0 + sqrt(1-ᾱ) ε has ||ε|| ≈ sqrt(dim), so scaling r
    with sqrt(dim) keeps the signal-to-noise ratio of a given insertion step t0 the same for any dim.
    """
    return REFERENCE_RADIUS * math.sqrt(dim / REFERENCE_DIM)


def project_to_radius(x: Tensor, radius: float) -> Tensor:
    """radius · x/||x|| along the last axis (the reference's `F.normalize(x, dim=-1) * rescale`)."""
    return F.normalize(x, dim=-1) * radius


def to_diffusion_space(embeddings: Tensor, mean: Tensor, radius: float) -> Tensor:
    """radius · centre(e, mean): the reference's training vector x0 (text_mean) and bridge input (image_mean)."""
    _check_mean(embeddings, mean)
    return project_to_radius(normalize(embeddings) - mean.to(embeddings.device, torch.float32), radius)
