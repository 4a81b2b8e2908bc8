"""Nodes of the `train` stage: a DDPM on centred, normalised, scaled text embeddings."""

from __future__ import annotations

from typing import Any

import torch

from diffusion_bridge.devices import resolve_device
from diffusion_bridge.diffusion import RunOptions, train_preset
from diffusion_bridge.diffusion.checkpoints import DiffusionCheckpoint
from diffusion_bridge.serialization import Tensors


def train_diffusion_model(
    text_train: Tensors, text_val: Tensors, means: Tensors, params: dict[str, Any]
) -> tuple[DiffusionCheckpoint, dict[str, Any]]:
    """Train the preset chosen by `diffusion.preset`; rerunning resumes its run (see `train_preset`)."""
    if params.get("threads"):
        torch.set_num_threads(int(params["threads"]))
    options = RunOptions(device=resolve_device(params["device"]), progress=params["progress"],
                         stop_after=params.get("stop_after"))
    result = train_preset(params["presets"][params["preset"]], text_train["embeddings"], text_val["embeddings"],
                          means["text_mean"], params["workdir"], params.get("radius"), options)
    return DiffusionCheckpoint(result.checkpoint_dir), {"preset": params["preset"], **result.summary()}
