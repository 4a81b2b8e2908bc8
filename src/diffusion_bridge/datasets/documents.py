"""JSON documents and text reports, written atomically."""

from __future__ import annotations

import html
import json
from typing import Any

from kedro_datasets._typing import HTMLPreview, JSONPreview

from diffusion_bridge.atomic import atomic_path
from diffusion_bridge.datasets._versioned import LocalVersionedDataset, shortened


class JSONDocumentDataset(LocalVersionedDataset):
    """Any JSON-serialisable object (metrics, reports, COCO label/result files)."""

    def __init__(self, filepath: str, version=None, metadata=None, indent: int | None = 2) -> None:
        super().__init__(filepath, version, metadata)
        self._indent = indent

    def load(self) -> Any:
        with self._load_path().open(encoding="utf-8") as f:
            return json.load(f)

    def save(self, data: Any) -> None:
        with atomic_path(self._save_path()) as tmp:
            with tmp.open("w", encoding="utf-8") as f:
                json.dump(data, f, indent=self._indent, allow_nan=False)

    def preview(self, items: int = 3) -> JSONPreview:
        """The document with long lists cut to their first `items` entries (kedro-viz)."""
        return JSONPreview(json.dumps(shortened(self.load(), items), indent=2, ensure_ascii=False))


class TextDocumentDataset(LocalVersionedDataset):
    """A text file (Markdown reports)."""

    def load(self) -> str:
        return self._load_path().read_text(encoding="utf-8")

    def save(self, data: str) -> None:
        with atomic_path(self._save_path()) as tmp:
            tmp.write_text(data, encoding="utf-8")

    def preview(self, characters: int = 20_000) -> HTMLPreview:
        """The report as preformatted text (kedro-viz)."""
        text = self.load()
        cut = text[:characters] + ("\n…" if len(text) > characters else "")
        return HTMLPreview(f"<pre style='white-space: pre-wrap'>{html.escape(cut)}</pre>")
