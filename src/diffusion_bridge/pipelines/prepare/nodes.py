"""Nodes of the `prepare` stage: corpus → tables and labels → CLIP → embeddings → modality means and gap."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from diffusion_bridge.clip import ClipModel
from diffusion_bridge.clip import obtain_clip as clip_from_settings
from diffusion_bridge.clip.encoding import embed_images, embed_texts
from diffusion_bridge.corpus import SPLITS, Corpus
from diffusion_bridge.corpus.images import check_report, drop_bad_images, require_every_split
from diffusion_bridge.corpus.labels import coco_labels
from diffusion_bridge.corpus.records import by_split, train_rows
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.serialization import Tensors
from diffusion_bridge.space import modality_means
from diffusion_bridge.study.gap import gap_report

log = logging.getLogger(__name__)


def build_corpus_tables(raw_corpus: Corpus, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Check every image file, then emit the images and captions tables and a report of what was read."""
    corpus, check = drop_bad_images(raw_corpus, params["image_check"], params["on_bad_images"], params["check_workers"])
    require_every_split(corpus)
    if check.bad_ids:
        log.warning("Skipped %d images with missing/unreadable files (listed in corpus_report)", len(check.bad_ids))
    return corpus.images, corpus.captions, check_report(corpus, check, params["image_check"], params["on_bad_images"])


def make_label_files(images: pd.DataFrame, captions: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """COCO-format label JSON per split, for the caption metrics."""
    return {split: coco_labels(images, captions, split) for split in SPLITS}


def obtain_clip(images: pd.DataFrame, captions: pd.DataFrame, params: dict[str, Any]) -> ClipModel:
    """The CLIP model of this run: a pretrained tag, a local checkpoint, or fitted on the train split."""
    return clip_from_settings(params, train_rows(images), train_rows(captions), resolve_device(params["device"]))


def embed_corpus_images(clip: ClipModel, images: pd.DataFrame, params: dict[str, Any]) -> dict[str, Tensors]:
    """Image embeddings per split, with their imgids, in table order."""
    vectors = embed_images(
        clip, images["image_path"].tolist(), images["imgid"].tolist(), resolve_device(params["device"]),
        batch_size=params["image_batch_size"], num_workers=params["num_workers"],
        precision=params["precision"], progress=params["progress"],
    )
    return by_split(images, vectors, ["imgid"])


def embed_corpus_captions(clip: ClipModel, captions: pd.DataFrame, params: dict[str, Any]) -> dict[str, Tensors]:
    """Caption embeddings per split, with their sentids and imgids, in table order."""
    vectors = embed_texts(
        clip, captions["caption"].tolist(), resolve_device(params["device"]),
        batch_size=params["text_batch_size"], num_workers=params["num_workers"],
        precision=params["precision"], progress=params["progress"],
    )
    return by_split(captions, vectors, ["sentid", "imgid"])


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
    return gap_report(means, splits, clip.info, clip.embed_dim)
