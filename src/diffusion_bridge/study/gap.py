"""The modality gap of a CLIP model on a corpus: how far apart images and captions sit, per split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from diffusion_bridge.errors import InputError
from diffusion_bridge.metrics.alignment import centroid_distance, random_pair_cosine


def rows_of(ids: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Position of each `keys` entry in `ids` (e.g. the image row of every caption); every key must be present."""
    order = torch.argsort(ids)
    pos = torch.searchsorted(ids[order], keys)
    pos = pos.clamp(max=len(ids) - 1)
    if not bool((ids[order][pos] == keys).all()):
        missing = keys[ids[order][pos] != keys][:5].tolist()
        raise InputError(f"ids {missing} have no row (e.g. captions of an image that has no embedding); "
                         "rerun `prepare` so that captions and images come from the same corpus tables")
    return order[pos]


def same_image_caption_cosine(text: torch.Tensor, owner: torch.Tensor) -> float:
    """Mean cosine over all pairs of distinct captions of the same image (COCO ≈ 0.65 with CLIP ViT-B/32).

    With s = sum of an image's unit vectors and n its caption count, the sum over its ordered pairs is
    ||s||² − n, so no pairwise matrix is needed.
    """
    unit = F.normalize(text.double(), dim=-1)
    groups = torch.unique(owner, return_inverse=True)[1]
    n = torch.bincount(groups).double()
    sums = torch.zeros(len(n), unit.shape[1], dtype=torch.float64).index_add_(0, groups, unit)
    pair_sum = (sums.pow(2).sum(1) - n)[n > 1].sum()
    pair_count = (n * (n - 1))[n > 1].sum()
    return float(pair_sum / pair_count) if pair_count > 0 else float("nan")


def gap_statistics(
    image_embeddings: torch.Tensor,
    image_ids: torch.Tensor,
    text_embeddings: torch.Tensor,
    text_image_ids: torch.Tensor,
) -> dict[str, float]:
    """Centroid distance, mean matched image–caption cosine, random-pair cosine, same-image caption cosine."""
    rows = rows_of(image_ids, text_image_ids)
    matched = F.cosine_similarity(image_embeddings[rows].double(), text_embeddings.double(), dim=-1)
    return {
        "images": len(image_ids),
        "captions": len(text_image_ids),
        "centroid_distance": centroid_distance(image_embeddings, text_embeddings),
        "matched_cosine": float(matched.mean()),
        # exact mean over every (image, caption of another image) pair
        "random_pair_cosine": random_pair_cosine(image_embeddings, text_embeddings, b_to_a=rows),
        "same_image_caption_cosine": same_image_caption_cosine(text_embeddings, text_image_ids),
    }



def gap_report(
    means: Mapping[str, torch.Tensor],
    splits: Mapping[str, tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]]],
    clip_info: Mapping[str, Any],
    embed_dim: int,
) -> dict[str, Any]:
    """Gap statistics of every non-empty split (images, captions) and the distance between the train means."""
    return {
        "clip": {k: v for k, v in clip_info.items() if k != "fit"} | {"embed_dim": embed_dim},
        "train_mean_distance": float((means["image_mean"] - means["text_mean"]).norm()),
        "splits": {
            split: gap_statistics(img["embeddings"], img["imgid"], txt["embeddings"], txt["imgid"])
            for split, (img, txt) in splits.items()
            if len(img["imgid"]) and len(txt["imgid"])
        },
    }
