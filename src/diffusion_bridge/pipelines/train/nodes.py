"""Nodes of the `train` stage: a DDPM on centred, normalised, scaled text embeddings."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from diffusion_bridge.devices import resolve_device
from diffusion_bridge.diffusion import (
    DiffusionModel,
    RunOptions,
    TrainConfig,
    data_fingerprint,
    to_diffusion_space,
    train,
)
from diffusion_bridge.diffusion.checkpoints import DiffusionCheckpoint

log = logging.getLogger(__name__)

Tensors = dict[str, torch.Tensor]


def train_diffusion_model(
    text_train: Tensors, text_val: Tensors, means: Tensors, params: dict[str, Any]
) -> tuple[DiffusionCheckpoint, dict[str, Any]]:
    """Train the preset chosen by `diffusion.preset` on x0 = r·normalize(normalize(t) − text_mean).

    The run lives in `workdir/<fingerprint of model, training settings and data>`: rerunning the stage
    after an interruption resumes from its last checkpoint; changed settings start a fresh run.
    """
    preset_name = params["preset"]
    preset = params["presets"][preset_name]
    dim = int(text_train["embeddings"].shape[1])
    config = TrainConfig.from_dict(preset["train"])
    with torch.random.fork_rng():  # the initial weights come from the run's seed, not from global state
        torch.manual_seed(config.seed)
        model = DiffusionModel(dim=dim, radius=params.get("radius"), **preset["model"])
    x0_train = to_diffusion_space(text_train["embeddings"], means["text_mean"], model.radius)
    x0_val = to_diffusion_space(text_val["embeddings"], means["text_mean"], model.radius)
    workdir = Path(params["workdir"]) / _run_id(model.config, config.to_dict(), data_fingerprint(x0_train))
    if params.get("threads"):
        torch.set_num_threads(int(params["threads"]))
    log.info("Training the %s preset (%s denoiser, %d steps) in %s", preset_name, model.denoiser_name, config.steps, workdir)
    options = RunOptions(device=resolve_device(params["device"]), progress=params["progress"],
                         stop_after=params.get("stop_after"))
    result = train(model, x0_train, x0_val, config, workdir, options)
    metrics = {
        "preset": preset_name,
        "model": model.config,
        "train": config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "samples_per_s": result.samples_per_s,
        "steps": result.step,
        "history": result.history,
        "final_validation": result.history["val"][-1] if result.history.get("val") else {},
    }
    return DiffusionCheckpoint(result.checkpoint_dir), metrics


def _run_id(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
