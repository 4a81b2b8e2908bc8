"""Nodes of the `bridge` stage: text-like vision embeddings, and diffusion-augmented train text."""

from __future__ import annotations

from typing import Any

import torch

from diffusion_bridge.bridge import bridge_embeddings
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.diffusion.checkpoints import DiffusionCheckpoint

Tensors = dict[str, torch.Tensor]


def _bridge(checkpoint: DiffusionCheckpoint, embeddings: Tensors, mean: torch.Tensor, params: dict[str, Any]) -> Tensors:
    """Bridge one embedding set; the ids travel with the result so every row stays traceable."""
    device = resolve_device(params["device"])
    model = checkpoint.model(params["weights"], device, dim=int(embeddings["embeddings"].shape[1]))
    generator = torch.Generator(device=device).manual_seed(params["seed"])
    vectors = bridge_embeddings(
        model, embeddings["embeddings"], mean, params["t0"], params["steps"],
        sampler=params["sampler"], eta=params["eta"], add_noise=params["add_noise"],
        generator=generator, batch_size=params["batch_size"], device=device,
    )
    return {"embeddings": vectors} | {k: v for k, v in embeddings.items() if k != "embeddings"}


def bridge_images(
    checkpoint: DiffusionCheckpoint, image_val: Tensors, image_test: Tensors, means: Tensors, params: dict[str, Any]
) -> tuple[Tensors, Tensors]:
    """Val and test image embeddings carried into the text distribution (image_mean shift, then DDIM)."""
    return (
        _bridge(checkpoint, image_val, means["image_mean"], params),
        _bridge(checkpoint, image_test, means["image_mean"], params),
    )


def augment_train_text(checkpoint: DiffusionCheckpoint, text_train: Tensors, means: Tensors, params: dict[str, Any]) -> Tensors:
    """Train caption embeddings noised to t0 and denoised back: the decoder's augmented training inputs."""
    return _bridge(checkpoint, text_train, means["text_mean"], params)
