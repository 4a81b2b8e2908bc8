"""COCO-format label files per split, the ground truth the caption metrics read."""

from __future__ import annotations

from typing import Any

import pandas as pd


def coco_labels(images: pd.DataFrame, captions: pd.DataFrame, split: str) -> dict[str, Any]:
    """`{"images": [{"id"}], "annotations": [{"image_id", "caption", "id"}]}` for one split.

    Same shape as the reference's `labels_{split}.json` (its create_labels_json.py), which
    pycocotools' `COCO` loads; captions are the raw annotator text, as the reference uses.
    """
    imgs = images.loc[images["split"] == split, "imgid"]
    caps = captions.loc[captions["split"] == split, ["imgid", "raw", "sentid"]]
    return {
        "info": {"description": f"{split} split labels"},
        "images": [{"id": int(i)} for i in imgs],
        "annotations": [
            {"image_id": int(i), "caption": str(c), "id": int(s)}
            for i, c, s in caps.itertuples(index=False, name=None)
        ],
    }
