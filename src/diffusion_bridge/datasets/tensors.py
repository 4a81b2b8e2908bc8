"""Tensors as safetensors (never pickle): a dict of named tensors per file."""

from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

from diffusion_bridge.datasets._versioned import LocalVersionedDataset
from diffusion_bridge.datasets.atomic import atomic_path


class SafetensorsDataset(LocalVersionedDataset):
    """Saves and loads `dict[str, torch.Tensor]` (e.g. `{"embeddings", "imgid"}`) as one safetensors file."""

    def load(self) -> dict[str, torch.Tensor]:
        return load_file(self._load_path())

    def save(self, data: dict[str, torch.Tensor]) -> None:
        if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
            raise TypeError(f"{self}: expected a dict of tensors, got {type(data).__name__}")
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in data.items()}
        with atomic_path(self._save_path()) as tmp:
            save_file(tensors, str(tmp))
