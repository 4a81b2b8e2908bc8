"""Checkpoints as directories: config.json, model.safetensors, ema.safetensors, training_state.pt.

Weights are safetensors (no pickle); the training state holds only tensors and primitive containers,
so it loads with torch.load(weights_only=True). Folders are written by `training.checkpoint.write_checkpoint`
(atomically: a crash never leaves a half-written checkpoint) and found by `atomic.resolve`, which also
finds the previous checkpoint when a crash left it aside mid-swap.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from diffusion_bridge.atomic import resolve
from diffusion_bridge.errors import CheckpointError, ConfigError
from diffusion_bridge.training.checkpoint import STATE_FILE, read_training_state, write_checkpoint

from .model import DiffusionModel

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
FORMAT_VERSION = 1


def check_state_dict(expected: dict[str, Tensor], found: dict[str, Tensor], source: str, fix: str) -> None:
    """Raise CheckpointError naming `source` if keys or shapes of `found` differ from `expected`."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: the weights do not match the model: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]}). {fix}"
        )
    for key, value in expected.items():
        if tuple(found[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{source}: tensor {key!r} has shape {tuple(found[key].shape)} but the model expects "
                f"{tuple(value.shape)}. {fix}"
            )


def _state_dict(model: DiffusionModel) -> dict[str, Tensor]:
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(
    directory: str | Path,
    model: DiffusionModel,
    *,
    ema_state: dict[str, Tensor] | None = None,
    training_state: dict[str, Any] | None = None,
    train_config: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically and return its path.

    `data` describes the training data (e.g. {"fingerprint": ..., "shape": ...}); it is what resume checks.
    """
    config = {"format_version": FORMAT_VERSION, "model": model.config, "train": train_config, "data": data}
    tensors = {MODEL_FILE: _state_dict(model)}
    if ema_state is not None:
        tensors[EMA_FILE] = ema_state
    return write_checkpoint(directory, tensors, {CONFIG_FILE: config}, training_state)


def resolve_checkpoint(directory: str | Path) -> Path | None:
    """The checkpoint at `directory`, or the previous one left aside if a save died mid-swap; else None."""
    return resolve(directory, MODEL_FILE)


def _require(directory: str | Path) -> Path:
    found = resolve_checkpoint(directory)
    if found is None:
        raise CheckpointError(
            f"{directory} holds no checkpoint (expected {CONFIG_FILE} and {MODEL_FILE}); "
            "point at a directory written by save_checkpoint or by the trainer"
        )
    return found


def read_checkpoint_config(directory: str | Path) -> dict[str, Any]:
    """The parsed config.json of a checkpoint (model, train and data sections)."""
    return json.loads((_require(directory) / CONFIG_FILE).read_text())


def load_weights(directory: str | Path, weights: str = "raw", map_location: str | torch.device = "cpu") -> dict[str, Tensor]:
    """The raw or EMA state dict of a checkpoint."""
    if weights not in ("raw", "ema"):
        raise ConfigError(f"weights={weights!r}: choose 'raw' (the reference's choice at inference) or 'ema'")
    path = _require(directory) / (MODEL_FILE if weights == "raw" else EMA_FILE)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist; this checkpoint has no {weights} weights")
    return load_file(path, device=str(map_location))


def load_model(
    directory: str | Path,
    weights: str = "raw",
    map_location: str | torch.device = "cpu",
    dim: int | None = None,
) -> DiffusionModel:
    """Rebuild the DiffusionModel of a checkpoint with its raw or EMA weights.

    Pass `dim` (the width of the embeddings you will feed it) to fail early on a model trained for another CLIP.
    """
    directory = _require(directory)
    cfg = read_checkpoint_config(directory)["model"]
    if dim is not None and cfg["dim"] != dim:
        raise CheckpointError(
            f"{directory / CONFIG_FILE}: the model was trained on {cfg['dim']}-d vectors but your embeddings "
            f"are {dim}-d; use a checkpoint trained with the same CLIP model, or retrain"
        )
    model = DiffusionModel.from_config(cfg)
    state = load_weights(directory, weights, map_location)
    check_state_dict(
        _state_dict(model), state, str(directory / (MODEL_FILE if weights == "raw" else EMA_FILE)),
        "The weights and config.json come from different models; re-save the checkpoint or retrain.",
    )
    model.load_state_dict(state, strict=True)
    return model.to(map_location)


def load_training_state(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The optimizer/RNG/step bookkeeping of a checkpoint (torch.load with weights_only=True)."""
    directory = _require(directory)
    if not (directory / STATE_FILE).is_file():
        raise CheckpointError(f"{directory / STATE_FILE} does not exist; this checkpoint cannot resume training")
    return read_training_state(directory, map_location)


class DiffusionCheckpoint:
    """A checkpoint directory as one artifact: what the `train` stage hands to `bridge` (and a catalog versions)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = _require(directory)

    @property
    def config(self) -> dict[str, Any]:
        return read_checkpoint_config(self.directory)

    def model(self, weights: str = "raw", map_location: str | torch.device = "cpu", dim: int | None = None) -> DiffusionModel:
        """The trained model with its raw (the reference's choice at inference) or EMA weights."""
        return load_model(self.directory, weights, map_location, dim)

    @property
    def steps(self) -> tuple[int, int]:
        """(steps trained, steps the run was configured for)."""
        planned = int((self.config.get("train") or {}).get("steps", 0))
        if not (self.directory / STATE_FILE).is_file():
            return planned, planned  # imported weights (e.g. the reference's): complete as far as anyone knows
        return int(read_training_state(self.directory)["step"]), planned

    def require_finished(self, allow_partial: bool = False) -> None:
        """Refuse a model whose training was stopped early (`stop_after`) unless `allow_partial`."""
        done, planned = self.steps
        if done < planned and not allow_partial:
            raise CheckpointError(
                f"{self.directory} holds a model stopped after {done} of its {planned} training steps (diffusion."
                "stop_after). Fix: finish it with `kedro run --pipelines=train` (it resumes), or set "
                "bridge.allow_partial_model and augment.allow_partial_model to true to use it as it is"
            )

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG_FILE, MODEL_FILE, EMA_FILE, STATE_FILE):
            if (self.directory / name).is_file():
                shutil.copy2(self.directory / name, directory / name)

    @classmethod
    def load(cls, directory: Path) -> DiffusionCheckpoint:
        return cls(directory)
