"""Raw-corpus datasets: which corpus a run reads is decided here, by the catalog entry of each environment."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from kedro.utils import find_kedro_project
from kedro_datasets._typing import JSONPreview

from diffusion_bridge.corpus import Corpus, read_karpathy
from diffusion_bridge.runs.manifest import content_hash


def _project_relative(path: Path, anchor: Path) -> Path:
    """A relative `path` resolved like Kedro resolves `filepath`: against the project root (found above the
    already absolute `anchor`), so notebooks and runs from any working directory read the same images."""
    if path.is_absolute():
        return path
    root = find_kedro_project(anchor.resolve().parent) if anchor.is_absolute() else None
    return (root or Path.cwd()) / path


class _ReadOnlyCorpus(AbstractDataset[None, Corpus]):
    def save(self, data: Corpus) -> None:
        raise DatasetError(f"{self} is a raw input; the pipeline never writes it")


class KarpathyCorpusDataset(_ReadOnlyCorpus):
    """A Karpathy-split JSON plus the folder its `filepath/filename` entries are relative to."""

    def __init__(self, filepath: str, image_root: str, name: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._filepath, self._name = Path(filepath), name
        self._image_root = _project_relative(Path(image_root), self._filepath)
        self.metadata = metadata

    def load(self) -> Corpus:
        return read_karpathy(self._filepath, self._image_root, name=self._name)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def fingerprint(self) -> str:
        """sha256 of the annotation file (the images are named, and checked, by the `prepare` stage)."""
        return content_hash(self._filepath)

    def preview(self) -> JSONPreview:
        """Where the corpus is read from (the annotation file is not parsed for a preview: COCO's is 150 MB)."""
        size = self._filepath.stat().st_size if self._filepath.is_file() else None
        return JSONPreview(json.dumps({"annotation_file": str(self._filepath), "bytes": size,
                                       "image_root": str(self._image_root), "name": self._name}, indent=2))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "image_root": str(self._image_root)}


class SyntheticCorpusDataset(_ReadOnlyCorpus):
    """The built-in corpus: rendered on first load into `path` (deterministic from `spec`), then read as Karpathy."""

    def __init__(self, path: str, spec: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._path, self._spec = Path(path), dict(spec or {})
        self.metadata = metadata

    def load(self) -> Corpus:
        from diffusion_bridge.corpus.synthetic import SyntheticSpec, render_corpus

        render_corpus(SyntheticSpec(**self._spec), self._path)
        return read_karpathy(self._path / "dataset_synthetic.json", self._path / "images", name="synthetic")

    def _exists(self) -> bool:
        return True  # rendered on demand

    def fingerprint(self) -> str:
        """sha256 of the spec the corpus is rendered from (the same spec renders the same bytes)."""
        from diffusion_bridge.corpus.synthetic import RENDER_VERSION

        return hashlib.sha256(json.dumps([self._spec, RENDER_VERSION], sort_keys=True).encode()).hexdigest()

    def preview(self) -> JSONPreview:
        """The spec the corpus is rendered from, and whether it has been rendered yet."""
        rendered = (self._path / "dataset_synthetic.json").is_file()
        return JSONPreview(json.dumps({"spec": self._spec, "folder": str(self._path), "rendered": rendered}, indent=2))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "spec": self._spec}
