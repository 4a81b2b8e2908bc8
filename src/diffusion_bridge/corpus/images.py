"""Image file checks: every referenced image must exist and decode, or be skipped on request and listed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from diffusion_bridge.corpus.records import Corpus
from diffusion_bridge.errors import ConfigError, CorpusError, ImageFilesError

CHECK_MODES = ("decode", "header", "exists")
BAD_IMAGE_POLICIES = ("error", "skip")
SKIP_OR_PROVIDE = (
    "put the images under the configured image_root (see README, 'Real data'), or set "
    "`corpus.on_bad_images: skip` to leave them out; skipped ids are then listed in corpus_report."
)
# A file that passed a `header`/`exists` check but fails to decode while embedding: `skip` only acts at the check.
DECODE_AT_CHECK = (
    "replace or remove these files, or set `corpus.image_check: decode` so that `prepare` decodes every image "
    "before CLIP is fitted; `corpus.on_bad_images: skip` then leaves them out."
)


@dataclass
class ImageCheck:
    """Outcome of checking a corpus' image files: (imgid, path, reason) per problem."""

    missing: list[tuple[int, str, str]] = field(default_factory=list)
    unreadable: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def bad_ids(self) -> set[int]:
        return {i for i, _, _ in self.missing} | {i for i, _, _ in self.unreadable}


# Pillow's own decompression-bomb limit (~89 M pixels): a larger image is refused before it is decoded.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS
# What a bad image file raises while it is opened, checked or decoded; each is reported per image.
DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB whatever the mode: 16/32-bit integer and float greyscale are rescaled rather than clipped at 255,
    and transparency is composited over white rather than dropped (which would reveal arbitrary colours)."""
    if image.mode.startswith("I"):  # I;16, I;16B, I;16L, I: integer greyscale, 16-bit range
        image = image.convert("I").point(lambda v: v / 257 + 0.5).convert("L")
    elif image.mode == "F":  # float greyscale in [0, 1]
        image = image.point(lambda v: v * 255).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def open_rgb(path: str) -> Image.Image:
    """Decode an image fully and return it as RGB (the one decode path used everywhere).

    A file whose header announces more than MAX_PIXELS pixels is refused before decoding (ValueError).
    """
    with Image.open(path) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ValueError(f"{width}x{height} pixels is more than the {MAX_PIXELS:,} an image may have")
        image.load()
        return _to_rgb(image)


def _problem(path: str, mode: str) -> tuple[str, str] | None:
    if not os.path.isfile(path):
        return ("missing", "no such file")
    if mode == "exists":
        return None
    try:
        if mode == "header":
            with Image.open(path) as image:
                if image.size[0] * image.size[1] > MAX_PIXELS:
                    raise ValueError(f"{image.size[0]}x{image.size[1]} pixels is more than the {MAX_PIXELS:,} an image may have")
                image.verify()
        else:
            open_rgb(path)
    except DECODE_ERRORS as exc:
        return ("unreadable", f"{type(exc).__name__}: {exc}")
    return None


def check_images(ids: Iterable[int], paths: Iterable[str], mode: str = "decode", workers: int = 8) -> ImageCheck:
    """Check all files at once (threads: Pillow releases the GIL while decoding) and collect every problem.

    `decode` fully decodes each image (catches truncated files); `header` only parses headers (fast, for
    very large corpora whose files are trusted); `exists` only stats them.
    """
    if mode not in CHECK_MODES:
        raise ConfigError(f"image check mode {mode!r} is not one of {CHECK_MODES}; set corpus.image_check accordingly")
    ids, paths = list(ids), list(paths)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = list(pool.map(lambda p: _problem(p, mode), paths, chunksize=64))
    result = ImageCheck()
    for imgid, path, outcome in zip(ids, paths, outcomes, strict=True):
        if outcome is not None:
            kind, reason = outcome
            getattr(result, kind).append((int(imgid), path, reason))
    return result


def drop_bad_images(corpus: Corpus, mode: str, policy: str, workers: int = 8) -> tuple[Corpus, ImageCheck]:
    """Stop on missing/unreadable images (`error`), or drop them and their captions (`skip`).

    Skipping is never silent: the returned check lists every dropped image, and the prepare stage
    writes those ids into its report.
    """
    if policy not in BAD_IMAGE_POLICIES:
        raise ConfigError(f"corpus.on_bad_images={policy!r} is not one of {BAD_IMAGE_POLICIES}")
    check = check_images(corpus.images["imgid"], corpus.images["image_path"], mode=mode, workers=workers)
    if policy == "error":
        if check.missing:
            raise ImageFilesError("missing", check.missing + check.unreadable, corpus.annotation_file, SKIP_OR_PROVIDE)
        if check.unreadable:
            raise ImageFilesError("unreadable", check.unreadable, corpus.annotation_file, SKIP_OR_PROVIDE)
        return corpus, check
    bad = check.bad_ids
    if not bad:
        return corpus, check
    images = corpus.images[~corpus.images["imgid"].isin(bad)].reset_index(drop=True)
    captions = corpus.captions[~corpus.captions["imgid"].isin(bad)].reset_index(drop=True)
    return Corpus(corpus.name, corpus.annotation_file, corpus.image_root, images, captions), check


def require_every_split(corpus: Corpus) -> None:
    """The study needs images in train (fits), val (validates the DDPM, picks decoder checkpoints) and test."""
    sizes = corpus.split_sizes()
    empty = [split for split, size in sizes.items() if size["images"] == 0]
    if empty:
        raise CorpusError(
            str(corpus.annotation_file), f"no images are left in split(s) {empty} (sizes: {sizes})",
            "give some images split 'val'/'test' (or 'restval' for train) in the annotation file; when images were "
            "skipped as bad, replace them", field="split",
        )


def check_report(corpus: Corpus, check: ImageCheck, mode: str, policy: str) -> dict:
    """What was read and what was left out, for `corpus_report.json`."""
    return {
        "corpus": corpus.name,
        "annotation_file": str(corpus.annotation_file),
        "image_root": str(corpus.image_root),
        "splits": corpus.split_sizes(),
        "image_check": mode,
        "on_bad_images": policy,
        "skipped_images": [{"imgid": i, "path": p, "reason": r} for i, p, r in check.missing + check.unreadable],
        "captions_changed_by_cleanup": int((corpus.captions["raw"] != corpus.captions["caption"]).sum()),
    }
