"""Reader for Karpathy-split annotation files (`dataset_coco.json`, `dataset_flickr30k.json`).

Schema (REFERENCE.md §2): `images[]`, each with `imgid`, `split` in {train, restval, val, test},
`filepath` (COCO only: `train2014`/`val2014`), `filename`, `sentences[]` each with `sentid`, `imgid`, `raw`.
Every violation raises a `CorpusError` naming the file, the record and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from diffusion_bridge.corpus.captions import clean_caption
from diffusion_bridge.corpus.records import CAPTION_COLUMNS, IMAGE_COLUMNS, SPLIT_ALIASES, Corpus
from diffusion_bridge.errors import CorpusError

_IMAGE_FIELDS = ("imgid", "split", "filename", "sentences")
_SENTENCE_FIELDS = ("sentid", "imgid", "raw")


def read_karpathy(annotation_file: str | Path, image_root: str | Path, name: str | None = None) -> Corpus:
    """Read and validate a Karpathy-split JSON; image paths are resolved against `image_root`."""
    path = Path(annotation_file)
    if not path.is_file():
        raise CorpusError(
            path, "the annotation file does not exist",
            "download the Karpathy split (dataset_coco.json / dataset_flickr30k.json) and put it there, or point the "
            "catalog entry `raw_corpus.filepath` at it (see README, 'Real data')",
        )
    try:
        with path.open(encoding="utf-8") as f:
            document = json.load(f)
    except json.JSONDecodeError as exc:
        raise CorpusError(
            path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})", "re-download the file"
        ) from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(
            path, f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
            "re-download the file, or re-encode it as UTF-8 (JSON files must be UTF-8)",
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise CorpusError(path, "the top level must be an object with an `images` list", "use a Karpathy split file", field="images")
    return parse_karpathy(document, path, Path(image_root), name=name or str(document.get("dataset", path.stem)))


def parse_karpathy(document: dict[str, Any], path: Path, image_root: Path, name: str) -> Corpus:
    """Validate an already-loaded Karpathy document and build the corpus tables."""
    image_rows: list[tuple] = []
    caption_rows: list[tuple] = []
    seen_images: dict[int, int] = {}
    seen_sentences: dict[int, int] = {}
    root = image_root.resolve()  # once: each image's path is resolved against it and must stay inside
    for index, record in enumerate(document["images"]):
        if not isinstance(record, dict):
            raise CorpusError(path, "an image record must be a JSON object", "fix the record", index=index)
        imgid = record.get("imgid")
        for key in _IMAGE_FIELDS:
            if key not in record:
                raise CorpusError(path, f"missing key {key!r}", f"add {key!r} to the record", index=index, imgid=imgid, field=key)
        if not _is_int(imgid):
            raise CorpusError(path, f"imgid must be an integer, got {imgid!r}", "use integer ids", index=index, field="imgid")
        if imgid in seen_images:
            raise CorpusError(
                path, f"imgid also used by images[{seen_images[imgid]}]", "give every image a unique imgid", index=index, imgid=imgid, field="imgid"
            )
        seen_images[imgid] = index
        split = record["split"]
        if split not in SPLIT_ALIASES:
            raise CorpusError(
                path, f"unknown split {split!r}", f"use one of {sorted(SPLIT_ALIASES)}", index=index, imgid=imgid, field="split"
            )
        sentences = record["sentences"]
        if not isinstance(sentences, list) or not sentences:
            raise CorpusError(path, "`sentences` must be a non-empty list", "give every image its captions", index=index, imgid=imgid, field="sentences")
        filepath = str(record.get("filepath", ""))  # Flickr30K records have no filepath
        filename = str(record["filename"])
        scene = record.get("scene")
        image_rows.append(
            (
                int(imgid),
                SPLIT_ALIASES[split],
                split,
                filepath,
                filename,
                _image_path(root, filepath, filename, path, index, imgid),
                json.dumps(scene, sort_keys=True) if scene is not None else "",
            )
        )
        for sentence in sentences:
            caption_rows.append(_parse_sentence(sentence, path, index, imgid, SPLIT_ALIASES[split], seen_sentences))
    images = pd.DataFrame(image_rows, columns=list(IMAGE_COLUMNS)).astype({"imgid": "int64"})
    captions = pd.DataFrame(caption_rows, columns=list(CAPTION_COLUMNS)).astype({"sentid": "int64", "imgid": "int64"})
    return Corpus(name=name, annotation_file=path, image_root=image_root, images=images, captions=captions)


def _image_path(root: Path, filepath: str, filename: str, path: Path, index: int, imgid: int) -> str:
    """The image's resolved path, which must stay inside `root`, the resolved image_root (no `..`, no absolute
    names, no links out)."""
    resolved = (root / filepath / filename).resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise CorpusError(
            path, f"the image path {filepath!r}/{filename!r} resolves to {resolved}, outside image_root {root}",
            "give `filepath` and `filename` relative to image_root, without `..` or absolute paths", index=index,
            imgid=imgid, field="filename",
        )
    return str(resolved)


def _parse_sentence(sentence: Any, path: Path, index: int, imgid: int, split: str, seen: dict[int, int]) -> tuple:
    if not isinstance(sentence, dict):
        raise CorpusError(path, "a sentence must be a JSON object", "fix the record", index=index, imgid=imgid, field="sentences")
    sentid = sentence.get("sentid")
    for key in _SENTENCE_FIELDS:
        if key not in sentence:
            raise CorpusError(path, f"a sentence lacks key {key!r}", f"add {key!r}", index=index, imgid=imgid, sentid=sentid, field=key)
    if not _is_int(sentid):
        raise CorpusError(path, f"sentid must be an integer, got {sentid!r}", "use integer ids", index=index, imgid=imgid, field="sentid")
    if sentid in seen:
        raise CorpusError(
            path, f"sentid also used in images[{seen[sentid]}]", "give every sentence a unique sentid", index=index, imgid=imgid, sentid=sentid, field="sentid"
        )
    seen[sentid] = index
    if sentence["imgid"] != imgid:
        raise CorpusError(
            path, f"sentence imgid {sentence['imgid']!r} differs from its image's imgid", "make them equal", index=index, imgid=imgid, sentid=sentid, field="imgid"
        )
    raw = sentence["raw"]
    if not isinstance(raw, str):
        raise CorpusError(path, f"raw must be a string, got {type(raw).__name__}", "store the caption text", index=index, imgid=imgid, sentid=sentid, field="raw")
    caption = clean_caption(raw)
    if not caption:
        raise CorpusError(
            path, "empty caption", "write the caption or remove the sentence from the file", index=index, imgid=imgid, sentid=sentid, field="raw"
        )
    return (int(sentid), int(imgid), split, raw, caption)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
