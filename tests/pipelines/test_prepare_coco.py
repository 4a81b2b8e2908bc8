"""`prepare` in the `coco` environment on a COCO-shaped fixture made here: Karpathy JSON, JPEGs under
train2014/ and val2014/, and a ViT-B-32 checkpoint written by open_clip from random init."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

SPLITS = ["train", "train", "restval", "val", "val", "test", "test"]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    rng = np.random.default_rng(0)
    images, sentid = [], 0
    for imgid, split in enumerate(SPLITS):
        folder = "train2014" if split == "train" else "val2014"
        filename = f"COCO_{folder}_{imgid:012d}.jpg"
        (root / "images" / folder).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, size=(48 + 8 * imgid, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / folder / filename, quality=85)
        sentences = []
        for k in range(3 + imgid % 3):
            sentences.append({"sentid": sentid, "imgid": imgid, "raw": f"A photo  number {imgid}, caption {k}.",
                              "tokens": ["a", "photo"]})
            sentid += 1
        images.append({"imgid": imgid, "split": split, "filepath": folder, "filename": filename,
                       "sentences": sentences, "cocoid": 1000 + imgid})
    (root / "dataset_coco.json").write_text(json.dumps({"dataset": "coco", "images": images}))
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32")  # random init: no download
    torch.save(model.state_dict(), root / "ViT-B-32-random.pt")
    return root


def _digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` by content, but the run lock, which each run rewrites with its own pid."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_prepare_in_coco_env(kedro_project, coco_root):
    params = {
        "coco_root": str(coco_root),
        "clip": {"source": "checkpoint", "checkpoint": str(coco_root / "ViT-B-32-random.pt")},
        "embedding": {"device": "cpu", "image_batch_size": 4, "text_batch_size": 8, "num_workers": 2, "progress": False},
    }
    kedro_project.run(["prepare"], env="coco", params=params)
    data = kedro_project.path / "data"

    (version,) = kedro_project.versions("data/04_feature/image_embeddings_train.safetensors")
    feature = lambda name: load_file(data / "04_feature" / name / version / name)  # noqa: E731
    image_train, text_train = feature("image_embeddings_train.safetensors"), feature("text_embeddings_train.safetensors")
    image_test, text_test = feature("image_embeddings_test.safetensors"), feature("text_embeddings_test.safetensors")

    # 512-d ViT-B/32 embeddings, restval merged into train, ids in table order
    assert image_train["embeddings"].shape == (3, 512)
    assert image_train["imgid"].tolist() == [0, 1, 2]
    assert image_test["imgid"].tolist() == [5, 6]
    assert text_train["embeddings"].shape == (3 + 4 + 5, 512)
    assert torch.isfinite(text_train["embeddings"]).all()
    assert text_test["imgid"].tolist() == [5] * 5 + [6] * 3

    # the embedding of a test image equals a direct open_clip computation on that file
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=str(coco_root / "ViT-B-32-random.pt"))
    with torch.no_grad():
        direct = model.eval().encode_image(preprocess(Image.open(coco_root / "images/val2014/COCO_val2014_000000000006.jpg")).unsqueeze(0))
    torch.testing.assert_close(image_test["embeddings"][1], direct[0], atol=2e-4, rtol=1e-4)

    # means equal an independent NumPy computation over the train split
    means = feature("modality_means.safetensors")
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(means["image_mean"].numpy(), unit(image_train["embeddings"].numpy().astype(np.float64)).mean(0), atol=1e-6)
    np.testing.assert_allclose(means["text_mean"].numpy(), unit(text_train["embeddings"].numpy().astype(np.float64)).mean(0), atol=1e-6)

    labels = json.loads((data / "03_primary/labels_val.json" / version / "labels_val.json").read_text())
    assert [i["id"] for i in labels["images"]] == [3, 4]
    assert {a["image_id"] for a in labels["annotations"]} == {3, 4} and all(a["caption"] for a in labels["annotations"])
    gap = json.loads((data / "08_reporting/gap_report.json" / version / "gap_report.json").read_text())
    assert gap["clip"]["embed_dim"] == 512 and set(gap["splits"]) == {"train", "val", "test"}

    # a second run writes new versions and leaves the first untouched
    before = _digest(data)
    kedro_project.run(["prepare"], env="coco", params=params)
    versions = kedro_project.versions("data/04_feature/image_embeddings_train.safetensors")
    assert len(versions) == 2 and versions[0] == version
    after = _digest(data)
    assert all(after[name] == digest for name, digest in before.items())
