"""The representations of test images that the study compares, all in the caption decoder's input space.

That space is the one the decoder is trained in: centred, re-normalised text embeddings,
`normalize(normalize(t) − text_mean)` (the reference's decoder inputs, REFERENCE.md §5). Each
representation maps an image embedding i into it:
  raw         normalize(normalize(i) − text_mean)          the image as if it were text: gap untouched
  mean_shift  normalize(normalize(i) − image_mean)         C3's "collapse"
  noise       normalize(normalize(i) − image_mean + ε)     mean shift + CapDec noise, ε ~ N(0, σ²I), σ² = 0.016
  bridged     the diffusion bridge at the configured t0    (bridge.py); `bridged_t<k>` for the t0 sweep
and the ceiling is text itself: another caption of the same image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SWEEP_PREFIX = "bridged_t"  # test_representations key of the image bridged at insertion step t0: bridged_t<t0>


def centre(embeddings: Tensor, mean: Tensor) -> Tensor:
    """normalize(normalize(e) − mean): text with text_mean, images with image_mean (C3)."""
    return F.normalize(F.normalize(embeddings.float(), dim=-1) - mean.to(embeddings.device).float(), dim=-1)


def noise_injected(embeddings: Tensor, mean: Tensor, variance: float, generator: torch.Generator) -> Tensor:
    """Mean shift plus Gaussian noise before the re-normalisation, as the reference's data pipeline adds it."""
    shifted = F.normalize(embeddings.float(), dim=-1) - mean.to(embeddings.device).float()
    noise = torch.randn(shifted.shape, generator=generator) * variance**0.5
    return F.normalize(shifted + noise.to(shifted.device), dim=-1)


def split_off_one_caption(caption_image_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Row of the first caption of every image (the ceiling's "another caption") and the rows of the rest.

    Captions must be grouped by image (as the tables are); images with a single caption have no rest.
    """
    first = torch.ones(len(caption_image_ids), dtype=torch.bool)
    first[1:] = caption_image_ids[1:] != caption_image_ids[:-1]
    return first.nonzero().squeeze(1), (~first).nonzero().squeeze(1)
