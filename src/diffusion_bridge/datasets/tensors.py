"""Tensors as safetensors (never pickle): a dict of named tensors per file, or a record built from one."""

from __future__ import annotations

from typing import Any

import torch
from kedro.io import Version
from kedro_datasets._typing import TablePreview
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from diffusion_bridge.atomic import atomic_path
from diffusion_bridge.datasets._versioned import LocalVersionedDataset, resolve_class


class SafetensorsDataset(LocalVersionedDataset):
    """Saves and loads `dict[str, torch.Tensor]` (e.g. `{"embeddings", "imgid"}`) as one safetensors file.

    With `record_type` (a class with `to_tensors()` and a classmethod `from_tensors(tensors)`, such as
    `diffusion_bridge.study.representations.Representations`) nodes exchange that typed record instead.
    """

    def __init__(self, filepath: str, record_type: str | None = None, version: Version | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        super().__init__(filepath, version, metadata)
        self._record_type = record_type

    def load(self) -> Any:
        tensors = load_file(self._load_path())
        return resolve_class(self._record_type).from_tensors(tensors) if self._record_type else tensors

    def save(self, data: Any) -> None:
        if self._record_type:
            data = data.to_tensors()
        if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
            raise TypeError(f"{self}: expected a dict of tensors, got {type(data).__name__}")
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in data.items()}
        with atomic_path(self._save_path()) as tmp:
            save_file(tensors, str(tmp))

    def preview(self, rows: int = 3) -> TablePreview:
        """One line per tensor: shape, dtype and its first rows, read without loading the rest (kedro-viz)."""
        data = []
        with safe_open(self._load_path(), framework="pt") as tensors:
            for name in tensors.keys():
                part = tensors.get_slice(name)
                shape = part.get_shape()
                head = part[:rows] if shape else tensors.get_tensor(name)
                values = head.double().round(decimals=4).tolist() if head.is_floating_point() else head.tolist()
                data.append([name, str(tuple(shape)), str(head.dtype).removeprefix("torch."), str(values)[:300]])
        return TablePreview({"columns": ["tensor", "shape", "dtype", f"first {rows} rows"], "index": list(range(len(data))),
                             "data": data})

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "record_type": self._record_type}
