"""Training checkpoints as folders, written atomically, holding everything a run needs to resume exactly.

Weights go in safetensors files, settings in JSON, and the rest (step, optimizer and scheduler states,
RNG states, history) in `training_state.pt`, which holds only tensors and plain containers and therefore
loads with `torch.load(weights_only=True)`: a checkpoint can never run code.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from diffusion_bridge.atomic import atomic_path
from diffusion_bridge.errors import CheckpointError

STATE_FILE = "training_state.pt"


def write_checkpoint(
    directory: str | Path,
    tensors: Mapping[str, Mapping[str, torch.Tensor]],
    documents: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
) -> Path:
    """One folder: a safetensors file per `tensors` entry (file name → state dict), a JSON file per
    `documents` entry, and `training_state.pt` for `state`; it replaces `directory` in one rename."""
    directory = Path(directory)
    with atomic_path(directory, directory=True) as tmp:
        for name, weights in tensors.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / name), metadata={"format": "pt"})
        for name, document in (documents or {}).items():
            (tmp / name).write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
        if state is not None:
            torch.save(dict(state), tmp / STATE_FILE)
    return directory


def tensor_digest(*tensors: torch.Tensor) -> str:
    """sha256 over the shapes, dtypes and bytes of `tensors`: identifies exact training data or weights."""
    digest = hashlib.sha256()
    for tensor in tensors:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def refused_pickle(source: str | Path) -> CheckpointError:
    """The error for a file `torch.load(weights_only=True)` refused: it holds Python objects that could run
    code. (torch's own message suggests `weights_only=False`, i.e. how to run them; we never do that.)"""
    return CheckpointError(
        f"{source} holds Python objects besides tensors and plain containers, so it was not loaded: unpickling "
        "them could run arbitrary code. Fix: load it once in a trusted environment and re-save only its state "
        "dict (torch.save(model.state_dict(), ...)) or convert it to safetensors"
    )


def read_training_state(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The `training_state.pt` of a checkpoint folder, loaded with weights_only=True.

    A file that does not load that way (damaged, truncated, or holding objects besides tensors) raises
    `CheckpointError` naming it; torch's own message is left out, since it advises `weights_only=False`.
    """
    path = Path(directory) / STATE_FILE
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointError(
            f"{path} cannot be read as a training state of tensors and plain values ({type(error).__name__}; it was "
            f"not unpickled in full). Fix: delete the checkpoint folder {Path(directory)} to start that run over, or "
            "give the run another workdir"
        ) from None


def capture_rng(generators: Mapping[str, torch.Generator], device: torch.device) -> dict[str, torch.Tensor]:
    """The states of the named generators plus torch's global CPU (and CUDA) generators."""
    state = {f"generator/{name}": g.get_state() for name, g in generators.items()}
    state["torch"] = torch.get_rng_state()
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: Mapping[str, torch.Tensor], generators: Mapping[str, torch.Generator], device: torch.device) -> None:
    """Put back what `capture_rng` saved, so the resumed run draws exactly what the uninterrupted one would have."""
    for name, generator in generators.items():
        generator.set_state(state[f"generator/{name}"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
