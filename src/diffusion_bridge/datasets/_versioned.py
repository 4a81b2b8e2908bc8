"""Shared base for the project's local, versioned, atomically written datasets."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractVersionedDataset, Version


class LocalVersionedDataset(AbstractVersionedDataset):
    """A versioned dataset on the local filesystem; subclasses only read and write one path."""

    def __init__(self, filepath: str, version: Version | None = None, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(filepath=PurePosixPath(Path(filepath).as_posix()), version=version)
        self.metadata = metadata

    def _exists(self) -> bool:
        try:
            path = self._get_load_path()
        except Exception:  # no version saved yet
            return False
        return Path(str(path)).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}

    def _load_path(self) -> Path:
        return Path(str(self._get_load_path()))

    def _save_path(self) -> Path:
        return Path(str(self._get_save_path()))


def resolve_class(dotted: str) -> type:
    """The class a catalog entry names by its dotted path (e.g. `artifact_type`, `record_type`)."""
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


def shortened(value: Any, items: int = 3, text: int = 200) -> Any:
    """A JSON value cut down for a preview: lists to their first `items`, long strings to `text` characters."""
    if isinstance(value, dict):
        return {k: shortened(v, items, text) for k, v in value.items()}
    if isinstance(value, list):
        head = [shortened(v, items, text) for v in value[:items]]
        return head + ([f"… {len(value) - items} more"] if len(value) > items else [])
    if isinstance(value, str) and len(value) > text:
        return value[:text] + "…"
    return value
