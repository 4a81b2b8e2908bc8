"""Model artifacts as directories (weights in safetensors + JSON config), versioned and written atomically.

The artifact class is named in the catalog (`artifact_type`) and must provide `save(directory)` and a
classmethod `load(directory, **load_args)`; the library owns the file format, the dataset only versions it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import Version
from kedro_datasets._typing import JSONPreview

from diffusion_bridge.atomic import atomic_path
from diffusion_bridge.datasets._versioned import LocalVersionedDataset, resolve_class, shortened


class ArtifactDirectoryDataset(LocalVersionedDataset):
    """A model (CLIP, diffusion checkpoint, caption decoder) saved as a directory of files."""

    def __init__(
        self,
        filepath: str,
        artifact_type: str,
        version: Version | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath, version, metadata)
        self._artifact_type = artifact_type
        self._load_args = dict(load_args or {})

    def load(self) -> Any:
        return resolve_class(self._artifact_type).load(self._load_path(), **self._load_args)

    def save(self, data: Any) -> None:
        expected = resolve_class(self._artifact_type)
        if not isinstance(data, expected):
            raise TypeError(f"{self}: expected a {self._artifact_type}, got {type(data).__name__}")
        with atomic_path(self._save_path(), directory=True) as tmp:
            data.save(Path(tmp))

    def preview(self, items: int = 3) -> JSONPreview:
        """The folder's files with their sizes, and its JSON configuration, cut down (kedro-viz)."""
        folder = self._load_path()
        files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
        configs = {name: shortened(json.loads((folder / name).read_text(encoding="utf-8")), items)
                   for name in files if name.endswith(".json") and files[name] < 1_000_000}
        return JSONPreview(json.dumps({"type": self._artifact_type, "files (bytes)": files, **configs}, indent=2))

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "artifact_type": self._artifact_type}
