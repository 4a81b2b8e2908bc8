"""Nodes of the `prepare` stage: corpus → tables and labels → CLIP → embeddings → modality means and gap."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch

from diffusion_bridge.checks import require_finite
from diffusion_bridge.clip import ClipModel, load_checkpoint, load_pretrained
from diffusion_bridge.clip.encoding import embed_images, embed_texts
from diffusion_bridge.clip.fitting import ClipFitConfig, fit_clip
from diffusion_bridge.corpus import SPLITS, Corpus
from diffusion_bridge.corpus.images import drop_bad_images
from diffusion_bridge.corpus.labels import coco_labels
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.modality import gap_statistics, modality_means

log = logging.getLogger(__name__)

Tensors = dict[str, torch.Tensor]


def build_corpus_tables(raw_corpus: Corpus, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Check every image file, then emit the images and captions tables and a report of what was read."""
    corpus, check = drop_bad_images(raw_corpus, params["image_check"], params["on_bad_images"], params["check_workers"])
    skipped = sorted(check.bad_ids)
    if skipped:
        log.warning("Skipped %d images with missing/unreadable files (listed in corpus_report)", len(skipped))
    report = {
        "corpus": corpus.name,
        "annotation_file": str(corpus.annotation_file),
        "image_root": str(corpus.image_root),
        "splits": corpus.split_sizes(),
        "image_check": params["image_check"],
        "on_bad_images": params["on_bad_images"],
        "skipped_images": [{"imgid": i, "path": p, "reason": r} for i, p, r in check.missing + check.unreadable],
        "captions_changed_by_cleanup": int((corpus.captions["raw"] != corpus.captions["caption"]).sum()),
    }
    return corpus.images, corpus.captions, report


def make_label_files(images: pd.DataFrame, captions: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """COCO-format label JSON per split, for the caption metrics."""
    return {split: coco_labels(images, captions, split) for split in SPLITS}


def obtain_clip(images: pd.DataFrame, captions: pd.DataFrame, params: dict[str, Any]) -> ClipModel:
    """The CLIP model of this run: a pretrained tag, a local checkpoint, or fitted on the train split."""
    source = params["source"]
    if source == "pretrained":
        return load_pretrained(params["model_name"], params["pretrained"], params.get("cache_dir"))
    if source == "checkpoint":
        return load_checkpoint(params["model_name"], params["checkpoint"])
    if source != "fit":
        raise ValueError(f"clip.source={source!r}: use one of fit, pretrained, checkpoint")
    train_images = images[images["split"] == "train"]
    train_captions = captions[captions["split"] == "train"]
    config = ClipFitConfig(model_name=params["model_name"], **params["fit"])
    clip = fit_clip(
        train_images["image_path"].tolist(),
        train_images["imgid"].tolist(),
        train_captions["caption"].tolist(),
        train_captions["imgid"].tolist(),
        config,
        resolve_device(params.get("device", "auto")),
        progress=params.get("progress", True),
    )
    log.info("Fitted %s: contrastive loss %.3f → %.3f in %.0f s", config.model_name, clip.info["fit"]["first_loss"],
             clip.info["fit"]["final_loss"], clip.info["fit"]["seconds"])
    return clip


def embed_corpus_images(clip: ClipModel, images: pd.DataFrame, params: dict[str, Any]) -> dict[str, Tensors]:
    """Image embeddings per split, with their imgids, in table order."""
    device = resolve_device(params["device"])
    vectors = embed_images(
        clip, images["image_path"].tolist(), images["imgid"].tolist(), device,
        batch_size=params["image_batch_size"], num_workers=params["num_workers"],
        precision=params["precision"], progress=params["progress"],
    )
    return _by_split(images, vectors, ["imgid"])


def embed_corpus_captions(clip: ClipModel, captions: pd.DataFrame, params: dict[str, Any]) -> dict[str, Tensors]:
    """Caption embeddings per split, with their sentids and imgids, in table order."""
    device = resolve_device(params["device"])
    vectors = embed_texts(
        clip, captions["caption"].tolist(), device,
        batch_size=params["text_batch_size"], num_workers=params["num_workers"],
        precision=params["precision"], progress=params["progress"],
    )
    return _by_split(captions, vectors, ["sentid", "imgid"])


def _by_split(table: pd.DataFrame, vectors: torch.Tensor, id_columns: list[str]) -> dict[str, Tensors]:
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


def compute_modality_means(image_embeddings_train: Tensors, text_embeddings_train: Tensors) -> Tensors:
    """Means of the normalised train embeddings per modality."""
    return modality_means(image_embeddings_train["embeddings"], text_embeddings_train["embeddings"])


def report_modality_gap(
    means: Tensors,
    image_train: Tensors, text_train: Tensors,
    image_val: Tensors, text_val: Tensors,
    image_test: Tensors, text_test: Tensors,
    clip: ClipModel,
) -> dict[str, Any]:
    """Gap statistics per split plus the distance between the train modality means."""
    splits = {"train": (image_train, text_train), "val": (image_val, text_val), "test": (image_test, text_test)}
    report = {
        "clip": {k: v for k, v in clip.info.items() if k != "fit"} | {"embed_dim": clip.embed_dim},
        "train_mean_distance": float((means["image_mean"] - means["text_mean"]).norm()),
        "splits": {
            split: gap_statistics(img["embeddings"], img["imgid"], txt["embeddings"], txt["imgid"])
            for split, (img, txt) in splits.items()
            if len(img["imgid"]) and len(txt["imgid"])
        },
    }
    return report
