"""Batched CLIP embedding: decoding and preprocessing in DataLoader workers, one model call per batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from diffusion_bridge.clip.model import ClipModel
from diffusion_bridge.corpus.images import DECODE_AT_CHECK, DECODE_ERRORS, open_rgb
from diffusion_bridge.errors import ImageFilesError, InputError
from diffusion_bridge.progress import progress_bar
from diffusion_bridge.training.precision import Precision


class ImageFiles(Dataset):
    """Image files decoded and preprocessed on access (in worker processes).

    A file that fails to decode is not raised inside the worker: it comes back as a failure so that every
    bad file of the run is collected and reported together, by id and path.
    """

    def __init__(self, paths: Sequence[str], ids: Sequence[int], transform) -> None:
        self.paths, self.ids, self.transform = list(paths), [int(i) for i in ids], transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, tuple[int, str, str] | None]:
        path = self.paths[index]
        try:
            return self.transform(open_rgb(path)), None
        except DECODE_ERRORS as exc:
            return None, (self.ids[index], path, f"{type(exc).__name__}: {exc}")


def collate_images(items: list) -> tuple[torch.Tensor, list[tuple[int, str, str]]]:
    """Stack the decoded images of a batch; pass the failures along."""
    pixels = [p for p, failure in items if failure is None]
    return (torch.stack(pixels) if pixels else torch.empty(0)), [f for _, f in items if f is not None]


class _Tokenize:
    """Picklable collate function: tokenises a batch of captions inside a worker."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(texts)


def _loader(dataset, batch_size: int, num_workers: int, device: torch.device, collate_fn=None) -> DataLoader:
    workers = max(0, min(num_workers, len(dataset) // max(batch_size, 1)))  # no idle workers on tiny inputs
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )


@torch.inference_mode()
def _embed(loader: DataLoader, encode, device: torch.device, precision: str, desc: str, progress: bool) -> torch.Tensor:
    chunks, failures = [], []
    with Precision(precision, device).autocast():
        for batch in progress_bar(loader, desc=desc, unit="batch", enabled=progress, leave=False):
            if isinstance(batch, tuple):  # images: (pixels, failures)
                batch, failed = batch
                failures += failed
                if failures:
                    continue  # the run stops at the end; no point embedding the rest
            chunks.append(encode(batch.to(device, non_blocking=True)).float())
    if failures:
        raise ImageFilesError("unreadable", failures, "the images table", DECODE_AT_CHECK)
    if not chunks:
        raise InputError(f"{desc}: nothing to embed (empty input). Fix: check the split has images and captions")
    return torch.cat(chunks).cpu()


def embed_images(
    clip: ClipModel,
    paths: Sequence[str],
    ids: Sequence[int],
    device: torch.device,
    batch_size: int = 256,
    num_workers: int = 2,
    precision: str = "fp16",
    progress: bool = True,
) -> torch.Tensor:
    """Un-normalised image embeddings [N, D] in `paths` order (the reference stores raw `encode_image` outputs)."""
    model = clip.model.to(device).eval()
    loader = _loader(ImageFiles(paths, ids, clip.image_transform()), batch_size, num_workers, device, collate_images)
    return _embed(loader, model.encode_image, device, precision, "embed images", progress)


def embed_texts(
    clip: ClipModel,
    texts: Sequence[str],
    device: torch.device,
    batch_size: int = 1024,
    num_workers: int = 2,
    precision: str = "fp16",
    progress: bool = True,
) -> torch.Tensor:
    """Un-normalised caption embeddings [N, D] in `texts` order; tokenisation runs in the workers."""
    model = clip.model.to(device).eval()
    loader = _loader(list(texts), batch_size, num_workers, device, collate_fn=_Tokenize(clip.tokenizer()))
    return _embed(loader, model.encode_text, device, precision, "embed captions", progress)
