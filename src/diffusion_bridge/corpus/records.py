"""The in-memory corpus every reader returns: an images table and a captions table, Karpathy-shaped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from diffusion_bridge.checks import require_finite
from diffusion_bridge.serialization import Tensors

# Karpathy's `restval` images are training images (the reference merges them into train).
SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "restval": "train", "val": "val", "test": "test"}

IMAGE_COLUMNS = ("imgid", "split", "source_split", "filepath", "filename", "image_path", "scene")
CAPTION_COLUMNS = ("sentid", "imgid", "split", "raw", "caption")


@dataclass(frozen=True)
class Corpus:
    """An image-caption corpus: one row per image, one row per caption, ids as in the annotation file.

    `images.image_path` is the resolved path of each image file; `images.scene` holds ground-truth
    attributes as JSON where the corpus has them (the synthetic one), else an empty string.
    """

    name: str
    annotation_file: Path
    image_root: Path
    images: pd.DataFrame
    captions: pd.DataFrame

    def split_sizes(self) -> dict[str, dict[str, int]]:
        """Images and captions per split, for logs and reports."""
        return {
            s: {
                "images": int((self.images["split"] == s).sum()),
                "captions": int((self.captions["split"] == s).sum()),
            }
            for s in SPLITS
        }


def by_split(table: pd.DataFrame, vectors: torch.Tensor, id_columns: list[str]) -> dict[str, Tensors]:
    """Rows of `vectors` (one per table row) grouped by split, each with its id columns, in table order."""
    require_finite(vectors, f"CLIP embeddings of {id_columns[0]}", table[id_columns[0]].to_numpy(),
                   fix="check those files/captions; on CUDA try embedding.precision: bf16 or fp32")
    out = {}
    for split in SPLITS:
        mask = (table["split"] == split).to_numpy()
        rows = torch.from_numpy(mask.nonzero()[0])
        out[split] = {"embeddings": vectors[rows].contiguous()} | {
            c: torch.as_tensor(table.loc[mask, c].to_numpy(), dtype=torch.int64) for c in id_columns
        }
    return out


def train_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The train split of an images or captions table."""
    return table[table["split"] == "train"]
