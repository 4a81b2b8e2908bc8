"""Raw-corpus datasets: which corpus a run reads is decided here, by the catalog entry of each environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from diffusion_bridge.corpus import Corpus, read_karpathy


class _ReadOnlyCorpus(AbstractDataset[None, Corpus]):
    def save(self, data: Corpus) -> None:
        raise DatasetError(f"{self} is a raw input; the pipeline never writes it")


class KarpathyCorpusDataset(_ReadOnlyCorpus):
    """A Karpathy-split JSON plus the folder its `filepath/filename` entries are relative to."""

    def __init__(self, filepath: str, image_root: str, name: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._filepath, self._image_root, self._name = Path(filepath), Path(image_root), name
        self.metadata = metadata

    def load(self) -> Corpus:
        return read_karpathy(self._filepath, self._image_root, name=self._name)

    def _exists(self) -> bool:
        return self._filepath.is_file()

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

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "spec": self._spec}
