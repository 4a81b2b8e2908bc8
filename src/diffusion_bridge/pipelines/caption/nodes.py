"""Nodes of the `caption` stage: text-only decoders, captions for every representation, COCO metrics."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from diffusion_bridge.decoder.checkpoints import CaptionDecoder
from diffusion_bridge.decoder.vocabulary import vocabulary_from_json
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.metrics.captioning import caption_metrics_status, references_from_labels
from diffusion_bridge.serialization import Tensors
from diffusion_bridge.space import centre
from diffusion_bridge.study.captioning import (
    caption_representations,
    fit_named_decoder,
    scenes_by_image,
    score_results,
    tokenise_train_captions,
)
from diffusion_bridge.study.claims import claims_from_params
from diffusion_bridge.study.plots import caption_contact_sheet
from diffusion_bridge.study.reports import caption_markdown, caption_summary
from diffusion_bridge.study.representations import Representations, held_out_captions


def tokenise_decoder_captions(captions: pd.DataFrame, params: dict[str, Any]) -> tuple[dict[str, Any], Tensors]:
    """The decoders' vocabulary and the train captions tokenised with it, once for the three decoders."""
    vocab, tokenised = tokenise_train_captions(captions, params["backbone"], params["training"]["max_tokens"])
    return vocab.to_json(), tokenised


def train_text_decoder(text_train: Tensors, vocabulary: dict[str, Any], tokenised: Tensors, means: Tensors,
                       val: Representations, labels_val: dict[str, Any], params: dict[str, Any]) -> CaptionDecoder:
    """Decoder on clean text embeddings, centre(t, text_mean) (the reference's inputs)."""
    inputs = centre(text_train["embeddings"], means["text_mean"])
    return fit_named_decoder("text", inputs, text_train["sentid"], vocabulary_from_json(vocabulary), tokenised, val,
                             labels_val, params)


def train_noise_decoder(text_train: Tensors, vocabulary: dict[str, Any], tokenised: Tensors, means: Tensors,
                        val: Representations, labels_val: dict[str, Any], params: dict[str, Any]) -> CaptionDecoder:
    """Decoder on noise-injected text embeddings (CapDec's σ² = 0.016; with the mean shift this is C3)."""
    inputs = centre(text_train["embeddings"], means["text_mean"])
    return fit_named_decoder("noise", inputs, text_train["sentid"], vocabulary_from_json(vocabulary), tokenised, val,
                             labels_val, params)


def train_augmented_decoder(augmented_train: Tensors, vocabulary: dict[str, Any], tokenised: Tensors,
                            val: Representations, labels_val: dict[str, Any], params: dict[str, Any]) -> CaptionDecoder:
    """Decoder on diffusion-augmented text embeddings (noised to the augment t0 and denoised: the bridge stage)."""
    return fit_named_decoder("augmented", augmented_train["embeddings"], augmented_train["sentid"],
                             vocabulary_from_json(vocabulary), tokenised, val, labels_val, params)


def caption_test_images(reps: Representations, decoder_text: CaptionDecoder, decoder_noise: CaptionDecoder,
                        decoder_augmented: CaptionDecoder, params: dict[str, Any]) -> dict[str, Any]:
    """COCO-format results for every evaluation of Table 2 and every t0 of the sweep (Table 4)."""
    decoders = {"text": decoder_text, "noise": decoder_noise, "augmented": decoder_augmented}
    return caption_representations(reps, decoders, params["evaluations"], params["sweep_decoder"], params["generation"],
                                   resolve_device(params["device"]))


def score_captions(results: dict[str, Any], reps: Representations, labels_test: dict[str, Any], images: pd.DataFrame,
                   corpus_report: dict[str, Any], bridge_report: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """COCO caption metrics of every results list against each image's captions but the held-out one (the
    ceiling's input), attribute accuracy where the corpus has ground truth, and the paper's claims judged."""
    references = references_from_labels(labels_test, "labels_test", exclude=set(reps.another_caption_sentid.tolist()))
    scenes = scenes_by_image(images.loc[images["split"] == "test"].set_index("imgid")["scene"].to_dict())
    scored = score_results(results, references, scenes, claims_from_params(params["claims"]),
                           params["bootstrap"]["resamples"], params["bootstrap"]["seed"])
    return {"corpus": corpus_report["corpus"], "images": len(references), "bridge": bridge_report,
            "evaluations": params["evaluations"], "table5": params["table5"], **scored,
            "skipped_metrics": caption_metrics_status()}


def write_caption_report(caption_metrics: dict[str, Any]) -> tuple[str, str]:
    """The Markdown report (paper-shaped tables) and the one-screen summary."""
    return caption_markdown(caption_metrics), caption_summary(caption_metrics)


def draw_contact_sheet(results: dict[str, Any], reps: Representations, captions: pd.DataFrame, images: pd.DataFrame,
                       params: dict[str, Any]) -> Figure:
    """A few test images with the held-out ground-truth caption and the caption each evaluation produced."""
    sheet = params["contact_sheet"]
    return caption_contact_sheet(results, images, sheet["images"], sheet["seed"], held_out_captions(reps, captions))
