"""Resumable decoder training runs: one folder per run fingerprint, one checkpoint per finished epoch.

`<workdir>/<fingerprint>/checkpoint/` is written by `training.checkpoint.write_checkpoint` after every epoch
and replaces the previous one in one rename. It holds the current and the best weights (safetensors), and
in `training_state.pt` the optimizer, LR-schedule and loss-scaler states, the RNG states (batch order,
CapDec noise, torch's global generators), the history, the epoch and the best score/epoch: everything a
rerun needs to go on from the last complete epoch and end bit-identical to an uninterrupted run.

The fingerprint covers the model's shape and initial weights, the training settings, the device type, the
training data and what validation measures. A run with other settings or data gets another folder and
starts fresh; a folder whose `run.json` names another fingerprint is refused with `WorkdirError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from diffusion_bridge.atomic import resolve
from diffusion_bridge.errors import CheckpointError, WorkdirError
from diffusion_bridge.training.checkpoint import (
    STATE_FILE,
    capture_rng,
    read_training_state,
    restore_rng,
    tensor_digest,
    write_checkpoint,
)

from .model import PrefixCaptioner

RUN_FORMAT = "diffusion_bridge.decoder.run/1"
CHECKPOINT, RUN_FILE = "checkpoint", "run.json"
CURRENT_WEIGHTS, BEST_WEIGHTS = "model.safetensors", "best.safetensors"


def run_fingerprint(model: PrefixCaptioner, settings: Mapping[str, Any], device: torch.device, data: str,
                    validation: Any = None) -> dict[str, Any]:
    """What makes two training runs the same run (JSON-able). `data` is the digest of the training tensors,
    `validation` a JSON-able description of what the validation callback measures."""
    gpt2 = {k: v for k, v in model.config["gpt2"].items() if k != "transformers_version"}
    state = model.state_dict()
    return {
        "format": RUN_FORMAT,
        "model": {**model.config, "gpt2": gpt2},
        "initial_weights": tensor_digest(*(state[k] for k in sorted(state))),
        "training": dict(settings),
        "device": device.type,
        "data": data,
        "validation": validation,
    }


def run_folder(workdir: str | Path, fingerprint: Mapping[str, Any]) -> Path:
    """`workdir/<16 hex digits of the fingerprint>`: each distinct run gets its own folder."""
    blob = json.dumps(fingerprint, sort_keys=True, default=str).encode()
    return Path(workdir) / hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class Progress:
    """Where a run stands after its last complete epoch."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None  # on CPU
    best_score: float | None = None
    best_epoch: int = 0


def tied_aliases(model: PrefixCaptioner) -> dict[str, str]:
    """State-dict keys that name the same tensor as an earlier key (GPT-2's output layer is its input
    embedding): alias -> first key. safetensors refuses to store one tensor twice, so only the first is written."""
    first: dict[tuple[int, tuple[int, ...]], str] = {}
    aliases = {}
    for key, value in model.state_dict().items():
        seen = first.setdefault((value.data_ptr(), tuple(value.shape)), key)
        if seen != key:
            aliases[key] = seen
    return aliases


def _untied(state: Mapping[str, torch.Tensor], aliases: Mapping[str, str]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k not in aliases}


def save_epoch(folder: Path, fingerprint: Mapping[str, Any], model: PrefixCaptioner, progress: Progress,
               optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler,
               scaler: torch.amp.GradScaler | None, generators: Mapping[str, torch.Generator],
               device: torch.device) -> Path:
    """Checkpoint the run after `progress.epoch`, replacing the previous epoch's checkpoint atomically."""
    aliases = tied_aliases(model)
    tensors = {CURRENT_WEIGHTS: _untied(model.state_dict(), aliases)}
    if progress.best_state is not None:
        tensors[BEST_WEIGHTS] = _untied(progress.best_state, aliases)
    summary = {"epoch": progress.epoch, "best_epoch": progress.best_epoch, "best_score": progress.best_score}
    state = {
        "format": RUN_FORMAT,
        **summary,
        "history": progress.history,
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "rng": capture_rng(generators, device),
    }
    return write_checkpoint(folder / CHECKPOINT, tensors, {RUN_FILE: {"fingerprint": fingerprint, **summary}}, state)


def _read_weights(path: Path, model: PrefixCaptioner, aliases: Mapping[str, str], fix: str) -> dict[str, torch.Tensor]:
    """The full state dict stored (untied) in `path`, checked against the model's keys and shapes."""
    try:
        weights = load_file(str(path))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{path} cannot be read as safetensors ({error}). {fix}") from error
    expected = model.state_dict()
    missing = sorted(set(expected) - set(aliases) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit this decoder: {len(missing)} missing tensors (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}). {fix}"
        )
    full = {k: weights[aliases.get(k, k)] for k in expected}
    for key, value in expected.items():
        if full[key].shape != value.shape:
            raise CheckpointError(
                f"{path}: tensor {key!r} has shape {tuple(full[key].shape)} but this decoder's is "
                f"{tuple(value.shape)}. {fix}"
            )
    return full


def _read_run_file(found: Path, fix: str) -> dict[str, Any]:
    path = found / RUN_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} cannot be read ({error}); the checkpoint is damaged. {fix}") from error
    if not isinstance(document, dict) or not isinstance(document.get("fingerprint"), dict):
        raise CheckpointError(f"{path} holds no run fingerprint; it was not written by train_decoder. {fix}")
    return document


def load_epoch(folder: Path, fingerprint: Mapping[str, Any], model: PrefixCaptioner,
               optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler,
               scaler: torch.amp.GradScaler | None, generators: Mapping[str, torch.Generator],
               device: torch.device) -> Progress | None:
    """Put the run's last checkpoint into the live objects and return its progress; None when there is none."""
    found = resolve(folder / CHECKPOINT, STATE_FILE)
    if found is None:
        return None
    fix = f"Delete {folder} to start this run over."
    saved = _read_run_file(found, fix)["fingerprint"]
    if saved != dict(fingerprint):
        differ = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
        raise WorkdirError(
            f"{found} holds a checkpoint of a different run (it differs in: {', '.join(differ)}). "
            f"Point train_decoder at another workdir, or delete {folder} to start over."
        )
    state = read_training_state(found, map_location="cpu")  # CheckpointError naming the file when damaged
    if not isinstance(state, dict) or state.get("format") != RUN_FORMAT:
        found_format = state.get("format") if isinstance(state, dict) else None
        raise CheckpointError(f"{found / STATE_FILE} has format {found_format!r}, expected {RUN_FORMAT!r}. {fix}")

    aliases = tied_aliases(model)
    current = _read_weights(found / CURRENT_WEIGHTS, model, aliases, fix)
    best = _read_weights(found / BEST_WEIGHTS, model, aliases, fix) if (found / BEST_WEIGHTS).is_file() else None
    model.load_state_dict(current)
    try:
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if scaler is not None and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"], generators, device)
    except (KeyError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{found / STATE_FILE} does not fit this run ({error!r}). {fix}") from error
    return Progress(state["epoch"], state["history"], best, state["best_score"], state["best_epoch"])
