"""Custom Kedro datasets: safetensors tensors, model directories, atomic Parquet/JSON/text, raw corpora."""

from diffusion_bridge.datasets.artifacts import ArtifactDirectoryDataset
from diffusion_bridge.datasets.corpus import KarpathyCorpusDataset, SyntheticCorpusDataset
from diffusion_bridge.datasets.documents import JSONDocumentDataset, TextDocumentDataset
from diffusion_bridge.datasets.tables import ParquetTableDataset
from diffusion_bridge.datasets.tensors import SafetensorsDataset

__all__ = [
    "ArtifactDirectoryDataset",
    "JSONDocumentDataset",
    "KarpathyCorpusDataset",
    "ParquetTableDataset",
    "SafetensorsDataset",
    "SyntheticCorpusDataset",
    "TextDocumentDataset",
]
