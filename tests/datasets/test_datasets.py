"""Custom datasets: round trips, versioning, atomic writes (a failed save leaves no artifact)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from kedro.io import DatasetError, Version

from diffusion_bridge.datasets import (
    ArtifactDirectoryDataset,
    JSONDocumentDataset,
    ParquetTableDataset,
    SafetensorsDataset,
)


def test_safetensors_round_trip_and_versions(tmp_path):
    path = tmp_path / "emb.safetensors"
    first = SafetensorsDataset(str(path), version=Version(None, "2026-01-01T00.00.00.000Z"))
    data = {"embeddings": torch.randn(5, 3), "imgid": torch.arange(5)}
    first.save(data)
    second = SafetensorsDataset(str(path), version=Version(None, "2026-01-02T00.00.00.000Z"))
    second.save({"embeddings": torch.zeros(2, 3), "imgid": torch.arange(2)})

    latest = SafetensorsDataset(str(path), version=Version(None, None)).load()
    assert latest["embeddings"].shape == (2, 3)
    old = SafetensorsDataset(str(path), version=Version("2026-01-01T00.00.00.000Z", None)).load()
    assert torch.equal(old["embeddings"], data["embeddings"]) and torch.equal(old["imgid"], data["imgid"])
    assert not list(tmp_path.rglob("*.partial"))


def test_safetensors_rejects_non_tensors(tmp_path):
    ds = SafetensorsDataset(str(tmp_path / "x.safetensors"), version=Version(None, None))
    with pytest.raises(Exception, match="dict of tensors"):
        ds.save({"a": [1, 2]})


def test_parquet_and_json(tmp_path):
    table = pd.DataFrame({"imgid": [1, 2], "caption": ["a", "b"]})
    ParquetTableDataset(str(tmp_path / "t.parquet")).save(table)
    pd.testing.assert_frame_equal(ParquetTableDataset(str(tmp_path / "t.parquet")).load(), table)
    JSONDocumentDataset(str(tmp_path / "r.json")).save({"x": 1.5})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 1.5}


def test_failed_json_save_leaves_nothing(tmp_path):
    ds = JSONDocumentDataset(str(tmp_path / "r.json"))
    with pytest.raises(DatasetError, match="not JSON compliant"):
        ds.save({"bad": float("nan")})  # NaN is not JSON: refused, and no half-written file remains
    assert list(tmp_path.iterdir()) == []


class Toy:
    def __init__(self, value, fail=False):
        self.value, self.fail = value, fail

    def save(self, directory: Path) -> None:
        (directory / "value.txt").write_text(str(self.value))
        if self.fail:
            raise RuntimeError("interrupted")

    @classmethod
    def load(cls, directory: Path, scale: int = 1) -> "Toy":
        return cls(int((directory / "value.txt").read_text()) * scale)


def test_artifact_directory_versions_and_atomicity(tmp_path):
    kind = f"{Toy.__module__}.Toy"
    ds = ArtifactDirectoryDataset(str(tmp_path / "model"), kind, version=Version(None, "v1"), load_args={"scale": 3})
    ds.save(Toy(7))
    assert ds.load().value == 21
    broken = ArtifactDirectoryDataset(str(tmp_path / "model"), kind, version=Version(None, "v2"))
    with pytest.raises(Exception, match="interrupted"):
        broken.save(Toy(8, fail=True))
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["v1"]  # no trace of the failed version
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["v1"]
    assert not (tmp_path / "model" / "v2").exists()
