"""Nodes of the `caption` stage: text-only decoders, captions for every representation, COCO metrics."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from diffusion_bridge.caption_study import (
    caption_images,
    caption_markdown,
    caption_summary,
    fit_decoder,
    scenes_by_image,
    score_caption_sets,
)
from diffusion_bridge.decoder.checkpoints import CaptionDecoder
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.metrics.attributes import attribute_accuracy
from diffusion_bridge.metrics.captioning import (
    java_available,
    references_from_labels,
    spice_available,
    to_coco_results,
)
from diffusion_bridge.plots import contact_sheet
from diffusion_bridge.representations import SWEEP_PREFIX, centre

Tensors = dict[str, torch.Tensor]


def validation_representations(image_val: Tensors, bridged_val: Tensors, means: Tensors) -> Tensors:
    """Val images as the decoders will see test images: mean-shifted, or bridged (for checkpoint selection)."""
    return {
        "imgid": image_val["imgid"],
        "mean_shift": centre(image_val["embeddings"], means["image_mean"]),
        "bridged": bridged_val["embeddings"],
    }


def _fit(name: str, inputs: torch.Tensor, sentids: torch.Tensor, captions: pd.DataFrame, val: Tensors,
         labels_val: dict[str, Any], params: dict[str, Any]) -> CaptionDecoder:
    spec = params["decoders"][name]
    text = captions.set_index("sentid")["caption"].loc[sentids.tolist()].tolist()
    decoder = fit_decoder(
        inputs, text, val[spec["val_representation"]], val["imgid"].tolist(),
        references_from_labels(labels_val, "labels_val"), params["backbone"],
        params["training"] | {"noise_std": spec["noise_std"]}, params["generation"],
        params["selection_metric"], resolve_device(params["device"]), params["progress"],
    )
    decoder.extra |= {"decoder": name, "inputs": spec["description"], "val_representation": spec["val_representation"]}
    return decoder


def train_text_decoder(text_train: Tensors, captions: pd.DataFrame, means: Tensors, val: Tensors,
                       labels_val: dict[str, Any], params: dict[str, Any]) -> CaptionDecoder:
    """Decoder on clean text embeddings, normalize(normalize(t) − text_mean) (the reference's inputs)."""
    return _fit("text", centre(text_train["embeddings"], means["text_mean"]), text_train["sentid"], captions, val, labels_val, params)


def train_noise_decoder(text_train: Tensors, captions: pd.DataFrame, means: Tensors, val: Tensors,
                        labels_val: dict[str, Any], params: dict[str, Any]) -> CaptionDecoder:
    """Decoder on noise-injected text embeddings (CapDec's σ² = 0.016; with the mean shift this is C3)."""
    return _fit("noise", centre(text_train["embeddings"], means["text_mean"]), text_train["sentid"], captions, val, labels_val, params)


def train_augmented_decoder(augmented_train: Tensors, captions: pd.DataFrame, val: Tensors,
                            labels_val: dict[str, Any], params: dict[str, Any]) -> CaptionDecoder:
    """Decoder on diffusion-augmented text embeddings (noised to t0 = 400 and denoised: the bridge stage)."""
    return _fit("augmented", augmented_train["embeddings"], augmented_train["sentid"], captions, val, labels_val, params)


def caption_test_images(reps: Tensors, decoder_text: CaptionDecoder, decoder_noise: CaptionDecoder,
                        decoder_augmented: CaptionDecoder, params: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """COCO-format results (`[{"image_id", "caption"}]`) for every evaluation and every t0 of the sweep."""
    decoders = {"text": decoder_text, "noise": decoder_noise, "augmented": decoder_augmented}
    device = resolve_device(params["device"])
    ids = reps["imgid"].tolist()
    jobs = {name: (spec["representation"], spec["decoder"]) for name, spec in params["evaluations"].items()}
    jobs |= {f"sweep_t{n[len(SWEEP_PREFIX):]}": (n, params["sweep_decoder"]) for n in reps if n.startswith(SWEEP_PREFIX)}
    return {
        name: to_coco_results(ids, caption_images(decoders[decoder], reps[rep], params["generation"], device))
        for name, (rep, decoder) in jobs.items()
    }


def score_captions(results: dict[str, list[dict[str, Any]]], labels_test: dict[str, Any], images: pd.DataFrame,
                   corpus_report: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """COCO caption metrics for every results list; attribute accuracy where the corpus has ground truth."""
    references = references_from_labels(labels_test, "labels_test")
    test_scenes = scenes_by_image(images.loc[images["split"] == "test"].set_index("imgid")["scene"].to_dict())
    attributes = {}
    if test_scenes:
        attributes = {
            name: attribute_accuracy({int(r["image_id"]): r["caption"] for r in rows}, test_scenes)
            for name, rows in results.items() if not name.startswith("sweep_")
        }
    skipped = [] if java_available() else ["METEOR", "SPICE (no Java)"]
    if java_available() and not spice_available():
        skipped.append("SPICE (its Stanford CoreNLP jars are not installed)")
    sweep = sorted(int(n[len("sweep_t"):]) for n in results if n.startswith("sweep_t"))
    return {
        "corpus": corpus_report["corpus"],
        "images": len(references),
        "evaluations": params["evaluations"],
        "sweep": sweep,
        "table5": params["table5"],
        "metrics": score_caption_sets(references, results),
        "attributes": attributes,
        "skipped_metrics": ", ".join(skipped),
    }


def write_caption_report(caption_metrics: dict[str, Any]) -> tuple[str, str]:
    """The Markdown report (paper-shaped tables) and the one-screen summary."""
    return caption_markdown(caption_metrics), caption_summary(caption_metrics)


def draw_contact_sheet(results: dict[str, list[dict[str, Any]]], images: pd.DataFrame, params: dict[str, Any]) -> Figure:
    """A few test images with the caption each evaluation produced for them."""
    test = images.loc[images["split"] == "test"]
    picked = test.sample(n=min(params["contact_sheet"]["images"], len(test)), random_state=params["contact_sheet"]["seed"])
    ids = picked["imgid"].tolist()
    by_name = {name: {int(r["image_id"]): r["caption"] for r in rows} for name, rows in results.items() if not name.startswith("sweep_")}
    return contact_sheet(picked["image_path"].tolist(), {n: [c[i] for i in ids] for n, c in by_name.items()}, ids)
