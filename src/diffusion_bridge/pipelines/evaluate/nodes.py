"""Nodes of the `evaluate` stage: how close each representation of the test images gets to the captions."""

from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure

from diffusion_bridge.bridge import bridge_embeddings
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.diffusion.checkpoints import DiffusionCheckpoint
from diffusion_bridge.evaluation import (
    CEILING,
    alignment_markdown,
    alignment_summary,
    distribution_floor,
    measure_representations,
)
from diffusion_bridge.modality import rows_of
from diffusion_bridge.plots import paired_cosine_histogram, projection_scatter, sweep_plot
from diffusion_bridge.representations import SWEEP_PREFIX, centre, noise_injected, split_off_one_caption

Tensors = dict[str, torch.Tensor]


def build_test_representations(
    checkpoint: DiffusionCheckpoint,
    image_test: Tensors,
    bridged_test: Tensors,
    text_test: Tensors,
    means: Tensors,
    params: dict[str, Any],
    bridge_params: dict[str, Any],
) -> Tensors:
    """Every representation of the test images in the decoder's space (rows in `imgid` order), plus the
    held-out caption of each image as the ceiling; the t0 sweep reuses the bridge stage's settings."""
    images = image_test["embeddings"]
    if not torch.equal(bridged_test["imgid"], image_test["imgid"]):
        raise ValueError("bridged and raw test embeddings list different images; rerun the bridge stage")
    generator = torch.Generator().manual_seed(params["seed"])
    reps = {
        "imgid": image_test["imgid"],
        "raw": centre(images, means["text_mean"]),
        "mean_shift": centre(images, means["image_mean"]),
        "noise": noise_injected(images, means["image_mean"], params["noise_variance"], generator),
        "bridged": bridged_test["embeddings"],
    }
    device = resolve_device(bridge_params["device"])
    model = checkpoint.model(bridge_params["weights"], device, dim=int(images.shape[1]))
    for t0 in params["t0_sweep"]:
        reps[f"{SWEEP_PREFIX}{t0}"] = bridge_embeddings(
            model, images, means["image_mean"], t0, min(bridge_params["steps"], max(t0, 1)),
            sampler=bridge_params["sampler"], eta=bridge_params["eta"], add_noise=bridge_params["add_noise"],
            generator=torch.Generator(device=device).manual_seed(bridge_params["seed"]),
            batch_size=bridge_params["batch_size"], device=device,
        )
    held_out, _ = split_off_one_caption(text_test["imgid"])
    if not torch.equal(text_test["imgid"][held_out], image_test["imgid"]):
        raise ValueError("every test image needs at least one caption, in the images table's order")
    reps[CEILING] = centre(text_test["embeddings"][held_out], means["text_mean"])
    reps[f"{CEILING}_sentid"] = text_test["sentid"][held_out]
    return reps


def _comparison_text(text_test: Tensors, image_ids: torch.Tensor, means: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
    """The captions every representation is compared with: all but each image's held-out one."""
    _, rest = split_off_one_caption(text_test["imgid"])
    return centre(text_test["embeddings"][rest], means["text_mean"]), rows_of(image_ids, text_test["imgid"][rest])


def measure_alignment(
    reps: Tensors, text_test: Tensors, text_train: Tensors, means: Tensors, corpus_report: dict[str, Any],
    params: dict[str, Any], bridge_params: dict[str, Any],
) -> dict[str, Any]:
    """All alignment metrics, for the main representations and for the t0 sweep."""
    text, index = _comparison_text(text_test, reps["imgid"], means)
    main = {n: reps[n] for n in ("raw", "mean_shift", "noise", "bridged", CEILING)}
    sweep = {int(n[len(SWEEP_PREFIX):]): v for n, v in reps.items() if n.startswith(SWEEP_PREFIX)}
    ks = tuple(params["recall_at"])
    sweep_results = measure_representations({str(t): v for t, v in sweep.items()}, text, index, params["seed"], ks)
    return {
        "corpus": corpus_report["corpus"],
        "images": len(reps["imgid"]),
        "captions": len(text_test["imgid"]),
        "bridge": {k: bridge_params[k] for k in ("t0", "steps", "sampler", "eta", "add_noise", "weights")},
        "noise_variance": params["noise_variance"],
        "frechet_floor": distribution_floor(centre(text_train["embeddings"], means["text_mean"]), text),
        "representations": measure_representations(main, text, index, params["seed"], ks),
        "sweep": {int(t): m for t, m in sweep_results.items()},
    }


def write_alignment_report(alignment: dict[str, Any]) -> tuple[str, str]:
    """The Markdown report and the one-screen summary printed at the end of the run."""
    return alignment_markdown(alignment), alignment_summary(alignment)


def plot_alignment(
    reps: Tensors, text_test: Tensors, means: Tensors, alignment: dict[str, Any]
) -> tuple[Figure, Figure, Figure]:
    """Histogram of paired cosines, a 2-D projection of text / image / bridged, and metrics against t0."""
    text, index = _comparison_text(text_test, reps["imgid"], means)
    shown = {n: reps[n] for n in ("raw", "mean_shift", "noise", "bridged", CEILING)}
    histogram = paired_cosine_histogram(shown, text, index)
    projection = projection_scatter({"captions": text, "images (mean shift)": reps["mean_shift"], "bridged": reps["bridged"]})
    sweep = sweep_plot(alignment["sweep"], ("paired_cosine", "i2t_R@10", "frechet_distance", "probe_accuracy"))
    return histogram, projection, sweep
