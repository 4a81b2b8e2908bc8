"""Device selection: the same code path on CPU and GPU, the device being a parameter."""

from __future__ import annotations

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else CPU; anything else is passed to torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast(device: torch.device, precision: str = "fp32") -> torch.autocast:
    """Mixed precision on CUDA only (`fp16`/`bf16`); on CPU it is a disabled context (fp32 everywhere)."""
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    enabled = device.type == "cuda" and dtype != torch.float32
    return torch.autocast(device_type=device.type, dtype=dtype if enabled else torch.bfloat16, enabled=enabled)
