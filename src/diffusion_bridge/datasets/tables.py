"""Tables as Parquet, written atomically."""

from __future__ import annotations

import pandas as pd
from kedro_datasets._typing import TablePreview

from diffusion_bridge.atomic import atomic_path
from diffusion_bridge.datasets._versioned import LocalVersionedDataset


class ParquetTableDataset(LocalVersionedDataset):
    """A pandas DataFrame in one Parquet file."""

    def load(self) -> pd.DataFrame:
        return pd.read_parquet(self._load_path())

    def save(self, data: pd.DataFrame) -> None:
        with atomic_path(self._save_path()) as tmp:
            data.to_parquet(tmp, index=False)

    def preview(self, nrows: int = 5) -> TablePreview:
        """The first rows (kedro-viz)."""
        return TablePreview(self.load().head(nrows).to_dict(orient="split"))
