"""One training run of a preset: the model from the run's seed, the text embeddings in diffusion space, and a
workdir named by everything that decides the numbers — so rerunning resumes, and other settings start afresh.

A preset is {"model": DiffusionModel keyword arguments, "train": TrainConfig fields}, as in
conf/base/parameters_train.yml (`fast`, `reference`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffusion_bridge.locks import exclusive_lock
from diffusion_bridge.space import to_diffusion_space
from diffusion_bridge.training.checkpoint import tensor_digest

from .model import DiffusionModel
from .trainer import BOOKKEEPING_FIELDS, RunOptions, TrainConfig, TrainResult, train

log = logging.getLogger(__name__)


def preset_model(preset: dict[str, Any], dim: int, radius: float | None = None, seed: int = 0) -> DiffusionModel:
    """The preset's model for `dim`-d embeddings, its initial weights drawn from `seed` (not from global state)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return DiffusionModel(dim=dim, radius=radius, **preset["model"])


def run_id(model: DiffusionModel, config: TrainConfig, x0_train: Tensor, x0_val: Tensor | None = None) -> str:
    """12 hex digits naming a run: the model, the settings that change the numbers, and the data."""
    settings = {k: v for k, v in config.to_dict().items() if k not in BOOKKEEPING_FIELDS}
    data = tensor_digest(x0_train, *([] if x0_val is None else [x0_val]))
    blob = json.dumps([model.config, settings, data], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def train_preset(
    preset: dict[str, Any],
    text_train: Tensor,
    text_val: Tensor | None,
    text_mean: Tensor,
    workdir: str | Path,
    radius: float | None = None,
    options: RunOptions | None = None,
) -> TrainResult:
    """Train `preset` on x0 = r·normalize(normalize(t) − text_mean) in `workdir/<run_id>`, resuming a run found there.

    `radius` None is the default r = 5·sqrt(dim/512) (space.default_radius).
    """
    config = TrainConfig.from_dict(preset["train"])
    model = preset_model(preset, int(text_train.shape[1]), radius, config.seed)
    x0_train = to_diffusion_space(text_train, text_mean, model.radius)
    x0_val = None if text_val is None else to_diffusion_space(text_val, text_mean, model.radius)
    run_dir = Path(workdir) / run_id(model, config, x0_train, x0_val)
    log.info("Training a %s denoiser for %d steps in %s", model.denoiser_name, config.steps, run_dir)
    with exclusive_lock(run_dir, owner="diffusion training"):  # a second trainer of the same run waits for nobody: it refuses
        return train(model, x0_train, x0_val, config, run_dir, options)
