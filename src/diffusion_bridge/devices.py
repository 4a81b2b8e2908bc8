"""Device selection: the same code path on CPU and GPU, the device being a parameter."""

from __future__ import annotations

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else CPU; anything else is passed to torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
