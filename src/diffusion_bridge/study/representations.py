"""The representations of a split's images that the study compares, all in the caption decoder's input space.

That space is the one the decoder is trained in: centred, re-normalised text embeddings,
`centre(t, text_mean)` (the reference's decoder inputs, REFERENCE.md §5). Each representation maps an
image embedding i into it (see `diffusion_bridge.space`):

  raw              centre(i, text_mean)                    the image as if it were text: gap untouched
  mean_shift       centre(i, image_mean)                   C3's "collapse"
  noise            noise_injected(i, image_mean, σ²)       mean shift + CapDec noise, σ² = 0.016
  bridged          the diffusion bridge at the configured t0 (bridge.py); `sweep[t0]` for the t0 sweep
  another_caption  centre(t, text_mean) of one held-out caption of the image: the text ceiling

Every other caption of the image is what the representations are compared with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import Tensor

from diffusion_bridge.errors import InputError, LineageError
from diffusion_bridge.serialization import Tensors
from diffusion_bridge.space import centre, noise_injected
from diffusion_bridge.study.gap import rows_of

CEILING = "another_caption"
NAMES = ("raw", "mean_shift", "noise", "bridged", CEILING)  # report order; the ceiling comes last


@dataclass(frozen=True)
class Representations:
    """Rows in `imgid` order; `sweep` maps each insertion step t0 to the images bridged at it."""

    imgid: Tensor
    raw: Tensor
    mean_shift: Tensor
    noise: Tensor
    bridged: Tensor
    another_caption: Tensor
    another_caption_sentid: Tensor
    sweep: dict[int, Tensor] = field(default_factory=dict)

    def named(self) -> dict[str, Tensor]:
        """The representations by name, in report order (the ceiling last)."""
        return {name: getattr(self, name) for name in NAMES}

    def get(self, name: str) -> Tensor:
        """One representation by name; a name from the parameters that does not exist is a named error."""
        if name not in NAMES:
            raise InputError(f"unknown representation {name!r}; use one of {list(NAMES)}")
        return getattr(self, name)

    def to_tensors(self) -> Tensors:
        """Flat named tensors for safetensors: the sweep as a stacked [K, N, D] tensor plus its t0 values."""
        steps = sorted(self.sweep)
        empty = self.bridged.new_zeros((0, *self.bridged.shape))
        return {
            "imgid": self.imgid,
            **self.named(),
            "another_caption_sentid": self.another_caption_sentid,
            "sweep_t0": torch.tensor(steps, dtype=torch.int64),
            "sweep": torch.stack([self.sweep[t] for t in steps]) if steps else empty,
        }

    @classmethod
    def from_tensors(cls, tensors: Tensors) -> Representations:
        """Inverse of `to_tensors`."""
        missing = sorted({"imgid", *NAMES, "another_caption_sentid", "sweep_t0", "sweep"} - set(tensors))
        if missing:
            raise InputError(f"representations lack {missing}; rerun the `evaluate` stage that writes them")
        sweep = {int(t): v for t, v in zip(tensors["sweep_t0"].tolist(), tensors["sweep"], strict=True)}
        return cls(
            imgid=tensors["imgid"], **{n: tensors[n] for n in NAMES},
            another_caption_sentid=tensors["another_caption_sentid"], sweep=sweep,
        )


def split_off_one_caption(caption_image_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Row of the first caption of every image (the ceiling's "another caption") and the rows of the rest.

    Captions must be grouped by image (as the tables are); images with a single caption have no rest.
    """
    first = torch.ones(len(caption_image_ids), dtype=torch.bool)
    first[1:] = caption_image_ids[1:] != caption_image_ids[:-1]
    return first.nonzero().squeeze(1), (~first).nonzero().squeeze(1)


def comparison_captions(captions: Tensors, image_ids: Tensor, text_mean: Tensor) -> tuple[Tensor, Tensor]:
    """The captions every representation is compared with (all but each image's held-out one), centred,
    and the row of each one's image in `image_ids`."""
    _, rest = split_off_one_caption(captions["imgid"])
    return centre(captions["embeddings"][rest], text_mean), rows_of(image_ids, captions["imgid"][rest])


def build_representations(
    images: Tensors,
    bridged: Tensors,
    captions: Tensors,
    means: Tensors,
    noise_variance: float,
    seed: int,
    sweep: Tensors | None = None,
) -> Representations:
    """Every representation of one split's images, plus one held-out caption per image as the ceiling.

    `bridged` holds the images bridged at the configured t0; `sweep` (the bridge stage's
    `{"imgid", "t0", "embeddings" [K, N, D]}`) the same images bridged at each t0 of the sweep.
    """
    ids = images["imgid"]
    for name, other in (("bridged", bridged), ("sweep", sweep)):
        if other is not None and not torch.equal(other["imgid"], ids):
            raise LineageError(
                f"the {name} embeddings list other images than the raw embeddings of this split; they come "
                "from different `prepare` runs. Fix: rerun `kedro run --pipelines=bridge` on the current embeddings"
            )
    held_out, _ = split_off_one_caption(captions["imgid"])
    if not torch.equal(captions["imgid"][held_out], ids):
        raise InputError("every image needs at least one caption, in the images table's order; rerun `prepare`")
    embeddings = images["embeddings"]
    generator = torch.Generator().manual_seed(seed)
    return Representations(
        imgid=ids,
        raw=centre(embeddings, means["text_mean"]),
        mean_shift=centre(embeddings, means["image_mean"]),
        noise=noise_injected(embeddings, means["image_mean"], noise_variance, generator),
        bridged=bridged["embeddings"],
        another_caption=centre(captions["embeddings"][held_out], means["text_mean"]),
        another_caption_sentid=captions["sentid"][held_out],
        sweep=sweep_by_step(sweep) if sweep is not None else {},
    )


def sweep_by_step(sweep: Mapping[str, Tensor]) -> dict[int, Tensor]:
    """The bridge stage's stacked sweep artifact as {t0: [N, D]}."""
    return {int(t): v for t, v in zip(sweep["t0"].tolist(), sweep["embeddings"], strict=True)}


def held_out_captions(reps: Representations, captions: pd.DataFrame) -> dict[int, str]:
    """imgid -> the text of the caption held out for the ceiling (`another_caption`), from the captions table."""
    text = captions.set_index("sentid")["caption"]
    return {int(i): str(text[int(s)]) for i, s in zip(reps.imgid.tolist(), reps.another_caption_sentid.tolist(), strict=True)}
