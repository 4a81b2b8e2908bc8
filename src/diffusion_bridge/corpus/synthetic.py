"""The offline default corpus: rendered shape scenes with five true captions each, in Karpathy format.

A tiny COCO that needs no download: `render_corpus` writes PNG images and a `dataset_synthetic.json`
with the same schema and splits as Karpathy's `dataset_coco.json`, plus a `scene` field of ground
truth per image. The split is compositional: a fixed set of (kind, colour) pairs never appears in a
train image, and most val/test images contain one, so captioning them needs composition, not recall.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from diffusion_bridge.corpus.scenes import (
    COLOURS,
    KINDS,
    Scene,
    all_pairs,
    caption_tokens,
    describe_scene,
    render_scene,
    sample_scene,
)
from diffusion_bridge.errors import ConfigError, WorkdirError

DATASET_NAME = "synthetic"
DATASET_FILE = "dataset_synthetic.json"
SPEC_FILE = "spec.json"
IMAGES_DIR = "images"
SPLITS = ("train", "val", "test")
# Bump when sampling, rendering or captions change, so an older render on disk is not reused.
RENDER_VERSION = 1






@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines a synthetic corpus; the same spec always renders the same bytes."""

    seed: int = 0
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 500
    image_size: int = 64
    captions_per_image: int = 5  # as in COCO
    holdout_pairs: int = 8  # (kind, colour) pairs never seen in train; 8 of 64 = one per kind and colour
    novel_test_fraction: float = 0.75  # share of val/test images holding at least one held-out pair

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SyntheticSpec:
        """Build a spec from a parameters mapping, naming any key it does not know."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"unknown synthetic corpus parameter(s) {unknown}; expected some of {sorted(known)}")
        spec = cls(**params)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise `ConfigError` naming the first value that cannot be rendered."""
        for name in ("n_train", "n_val", "n_test"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)!r}: give a non-negative integer image count")
        if self.n_train + self.n_val + self.n_test == 0:
            raise ConfigError("n_train, n_val and n_test are all 0: ask for at least one image")
        if not isinstance(self.image_size, int) or self.image_size < 16:
            raise ConfigError(f"image_size={self.image_size!r}: give an integer of at least 16 pixels")
        if not isinstance(self.captions_per_image, int) or self.captions_per_image < 1:
            raise ConfigError(f"captions_per_image={self.captions_per_image!r}: give a positive integer")
        most = len(KINDS) * (len(COLOURS) - 1)
        if not isinstance(self.holdout_pairs, int) or not 0 <= self.holdout_pairs <= most:
            raise ConfigError(
                f"holdout_pairs={self.holdout_pairs!r}: give an integer in [0, {most}] so that every kind "
                "keeps at least one colour in train"
            )
        if not 0.0 <= self.novel_test_fraction <= 1.0:
            raise ConfigError(f"novel_test_fraction={self.novel_test_fraction!r}: give a fraction in [0, 1]")
        if self.holdout_pairs == 0 and self.novel_test_fraction > 0:
            raise ConfigError(
                f"novel_test_fraction={self.novel_test_fraction} needs held-out pairs, but holdout_pairs=0: "
                "set holdout_pairs > 0 or novel_test_fraction: 0"
            )

    def fingerprint(self) -> dict[str, Any]:
        """What `spec.json` holds: the spec and the renderer version."""
        return {"render_version": RENDER_VERSION, "spec": asdict(self)}


def held_out_pairs(seed: int, count: int) -> list[tuple[str, str]]:
    """`count` (kind, colour) pairs kept out of train, spread over kinds and colours.

    A seeded Latin square: shift k holds out (kinds[i], colours[perm[(i + k) % 8]]), so the first 8
    pairs take every kind and every colour exactly once, and every kind keeps 7 - k // 8 colours.
    """
    rng = random.Random(f"synthetic-holdout/{seed}")
    kinds, colours = list(KINDS), list(COLOURS)
    rng.shuffle(kinds)
    rng.shuffle(colours)
    pairs = [
        (kinds[i], colours[(i + shift) % len(colours)])
        for shift in range(len(colours) - 1)
        for i in range(len(kinds))
    ]
    return sorted(pairs[:count])


def novel_combination_fraction(
    dataset: Mapping[str, Any], split: str = "test", holdout: Iterable[tuple[str, str]] | None = None
) -> float:
    """Share of `split` images with at least one held-out (kind, colour) pair (0.0 for an empty split).

    `holdout` defaults to the corpus' own `holdout_pairs` field.
    """
    pairs = {tuple(p) for p in (dataset["holdout_pairs"] if holdout is None else holdout)}
    scenes = [record["scene"] for record in dataset["images"] if record["split"] == split]
    novel = sum(any((o["kind"], o["colour"]) in pairs for o in scene["objects"]) for scene in scenes)
    return novel / len(scenes) if scenes else 0.0


def render_corpus(spec: SyntheticSpec, out_dir: Path, workers: int = 0) -> dict[str, Any]:
    """Render the corpus into `out_dir` and return its Karpathy-format dict.

    Writes `images/<split>/<imgid:06d>.png`, `dataset_synthetic.json` and `spec.json`. Reuses a complete
    render of the same spec already in `out_dir`. Renders into a sibling temporary folder that is
    renamed into place only when complete, so an interrupted run never leaves a half-written corpus.
    `workers` > 0 renders images in that many processes (the bytes do not depend on it).
    """
    spec.validate()
    out_dir = Path(out_dir)
    if _is_complete(out_dir, spec):
        return json.loads((out_dir / DATASET_FILE).read_text())
    _check_replaceable(out_dir)

    dataset = build_dataset(spec)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        for split in SPLITS:
            (tmp / IMAGES_DIR / split).mkdir(parents=True, exist_ok=True)
        jobs = [
            (record["scene"], spec.image_size, str(tmp / IMAGES_DIR / record["filepath"] / record["filename"]))
            for record in dataset["images"]
        ]
        if workers > 0 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                list(pool.map(_render_one, jobs, chunksize=max(1, math.ceil(len(jobs) / (4 * workers)))))
        else:
            for job in jobs:
                _render_one(job)
        (tmp / DATASET_FILE).write_text(json.dumps(dataset, indent=1))
        (tmp / SPEC_FILE).write_text(json.dumps(spec.fingerprint(), indent=1, sort_keys=True))
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dataset


def build_dataset(spec: SyntheticSpec) -> dict[str, Any]:
    """The Karpathy-format dict of a spec (scenes and captions, no pixels).

    Each image has its own random stream, seeded by (seed, split, index), so the scenes of one split do
    not change when another split's size does.
    """
    spec.validate()
    holdout = held_out_pairs(spec.seed, spec.holdout_pairs)
    everything = all_pairs()
    seen = [p for p in everything if p not in set(holdout)]
    sizes = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    images: list[dict[str, Any]] = []
    for split in SPLITS:
        n = sizes[split]
        novel: set[int] = set()
        if split != "train" and holdout:
            # Exactly round(fraction * n) novel images, at seeded places in the split.
            chooser = random.Random(f"synthetic/{spec.seed}/{split}/novel")
            novel = set(chooser.sample(range(n), round(spec.novel_test_fraction * n)))
        for index in range(n):
            rng = random.Random(f"synthetic/{spec.seed}/{split}/{index}")
            if index in novel:
                scene = sample_scene(rng, everything, must_include=holdout)
            else:
                scene = sample_scene(rng, seen)
            images.append(_record(len(images), split, scene, describe_scene(scene, rng, spec.captions_per_image)))
    return {"dataset": DATASET_NAME, "holdout_pairs": [list(p) for p in holdout], "images": images}


def _record(imgid: int, split: str, scene: Scene, captions: list[str]) -> dict[str, Any]:
    first = imgid * len(captions)  # sentids are 0-based and contiguous, in image order
    sentences = [
        {"sentid": first + k, "imgid": imgid, "raw": raw, "tokens": caption_tokens(raw)}
        for k, raw in enumerate(captions)
    ]
    return {
        "imgid": imgid,
        "split": split,
        "filepath": split,
        "filename": f"{imgid:06d}.png",
        "sentids": [s["sentid"] for s in sentences],
        "sentences": sentences,
        "scene": scene.to_dict(),
    }


def _render_one(job: tuple[dict[str, Any], int, str]) -> None:
    scene, size, path = job
    # optimize=False and no timestamps: PNG bytes depend only on the pixels (and the zlib in use).
    render_scene(Scene.from_dict(scene), size).save(path, format="PNG")


def _is_complete(out_dir: Path, spec: SyntheticSpec) -> bool:
    """True when `out_dir` holds a render of exactly this spec with every listed image present."""
    try:
        if json.loads((out_dir / SPEC_FILE).read_text()) != spec.fingerprint():
            return False
        dataset = json.loads((out_dir / DATASET_FILE).read_text())
    except (OSError, ValueError):
        return False
    return all((out_dir / IMAGES_DIR / r["filepath"] / r["filename"]).is_file() for r in dataset["images"])


def _check_replaceable(target: Path) -> None:
    """Refuse to replace a folder that holds anything but an earlier render."""
    if target.is_dir() and any(target.iterdir()) and not (target / SPEC_FILE).exists():
        raise WorkdirError(
            f"{target} exists and is not a synthetic corpus render (no {SPEC_FILE}); "
            "point the synthetic corpus at an empty or new folder"
        )
    if target.exists() and not target.is_dir():
        raise WorkdirError(f"{target} is a file; point the synthetic corpus at a folder")


def _replace_dir(new: Path, target: Path) -> None:
    """Move a finished render into place, replacing an older render (only one of ours) at `target`."""
    if target.exists():
        _check_replaceable(target)
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new, target)
