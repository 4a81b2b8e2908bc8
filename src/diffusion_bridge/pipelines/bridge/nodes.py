"""Nodes of the `bridge` stage: text-like vision embeddings (and their t0 sweep), and diffusion-augmented train text."""

from __future__ import annotations

from typing import Any

import torch

from diffusion_bridge.bridge import bridge_sweep
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.diffusion.checkpoints import DiffusionCheckpoint
from diffusion_bridge.serialization import Tensors

# Settings of a bridging run that shape its numbers (the rest, device and batch size, only its speed).
SETTINGS = ("t0", "steps", "sampler", "eta", "add_noise", "weights", "seed")


def _bridged(checkpoint: DiffusionCheckpoint, embeddings: Tensors, mean: torch.Tensor, params: dict[str, Any],
             t0s: list[int]) -> dict[int, torch.Tensor]:
    """`embeddings` bridged at every t0 of `t0s` with the stage's settings."""
    checkpoint.require_finished(params["allow_partial_model"])
    device = resolve_device(params["device"])
    model = checkpoint.model(params["weights"], device, dim=int(embeddings["embeddings"].shape[1]))
    return bridge_sweep(
        model, embeddings["embeddings"], mean, t0s, params["steps"], seed=params["seed"], device=device,
        sampler=params["sampler"], eta=params["eta"], add_noise=params["add_noise"], batch_size=params["batch_size"],
    )


def _with_ids(vectors: torch.Tensor, source: Tensors) -> Tensors:
    """The ids of `source` travel with the result, so every row stays traceable to its image or caption."""
    return {"embeddings": vectors} | {k: v for k, v in source.items() if k != "embeddings"}


def bridge_images(checkpoint: DiffusionCheckpoint, image_val: Tensors, image_test: Tensors, means: Tensors,
                  params: dict[str, Any]) -> tuple[Tensors, Tensors, Tensors]:
    """Val and test images carried into the text distribution at t0, and the test images at every t0 of the sweep."""
    t0, sweep_t0 = int(params["t0"]), [int(t) for t in params["t0_sweep"]]
    val = _bridged(checkpoint, image_val, means["image_mean"], params, [t0])[t0]
    test = _bridged(checkpoint, image_test, means["image_mean"], params, [t0, *sweep_t0])
    sweep = {"imgid": image_test["imgid"], "t0": torch.tensor(sorted(set(sweep_t0)), dtype=torch.int64)}
    sweep["embeddings"] = torch.stack([test[int(t)] for t in sweep["t0"]]) if sweep_t0 else torch.empty(0)
    return _with_ids(val, image_val), _with_ids(test[t0], image_test), sweep


def augment_train_text(checkpoint: DiffusionCheckpoint, text_train: Tensors, means: Tensors, params: dict[str, Any]) -> Tensors:
    """Train caption embeddings noised to t0 and denoised back: the decoder's augmented training inputs."""
    t0 = int(params["t0"])
    return _with_ids(_bridged(checkpoint, text_train, means["text_mean"], params, [t0])[t0], text_train)


def report_bridging(images: dict[str, Any], augment: dict[str, Any]) -> dict[str, Any]:
    """The settings the bridge stage ran with, for the reports of later stages (which never read its parameters)."""
    return {
        "images": {k: images[k] for k in SETTINGS} | {"t0_sweep": sorted({int(t) for t in images["t0_sweep"]})},
        "augment": {k: augment[k] for k in SETTINGS},
    }
