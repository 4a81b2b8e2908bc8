"""Figures of the alignment and captioning studies.

Built with matplotlib's object API (`Figure`, no pyplot): no global backend or figure registry is touched,
so the same functions serve a headless `kedro run` and a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor

from diffusion_bridge.metrics.alignment import paired_cosine
from diffusion_bridge.metrics.projection import pca_2d
from diffusion_bridge.serialization import Tensors
from diffusion_bridge.study.representations import Representations, comparison_captions


def _subplots(*args, figsize, **kwargs):
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def paired_cosine_histogram(representations: Mapping[str, Tensor], text: Tensor, text_image_index: Tensor) -> Figure:
    """Distribution of cos(representation of an image, one of its captions), one curve per representation."""
    fig, ax = _subplots(figsize=(7, 4))
    for name, rep in representations.items():
        values = paired_cosine(rep[text_image_index], text).numpy()
        ax.hist(values, bins=40, range=(-1, 1), histtype="step", linewidth=1.5, label=name, density=True)
    ax.set_xlabel("cosine to a paired caption (decoder space)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def projection_scatter(sets: Mapping[str, Tensor], max_points: int = 1500, seed: int = 0) -> Figure:
    """The sets on the first two principal axes of their union."""
    generator = torch.Generator().manual_seed(seed)
    picked = {n: x[torch.randperm(len(x), generator=generator)[:max_points]] for n, x in sets.items()}
    points = pca_2d(*picked.values())
    fig, ax = _subplots(figsize=(6, 5))
    for name, xy in zip(picked, points, strict=True):
        ax.scatter(xy[:, 0].numpy(), xy[:, 1].numpy(), s=4, alpha=0.5, label=name)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(markerscale=3, fontsize=8)
    fig.tight_layout()
    return fig


def sweep_plot(sweep: Mapping[int, Mapping[str, float]], metrics: tuple[str, ...]) -> Figure:
    """Each metric against the insertion step t0."""
    steps = sorted(sweep, key=int)  # JSON gives the t0 keys back as strings
    fig, axes = _subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), squeeze=False)
    axes = axes[0]
    for ax, metric in zip(axes, metrics, strict=True):
        ax.plot([int(t) for t in steps], [sweep[t][metric] for t in steps], marker="o")
        ax.set_xlabel("t0")
        ax.set_title(metric, fontsize=9)
    fig.tight_layout()
    return fig


def alignment_figures(reps: Representations, captions: Tensors, means: Mapping[str, Tensor],
                      alignment: Mapping[str, Any]) -> tuple[Figure, Figure, Figure]:
    """The alignment report's figures: paired-cosine histogram, 2-D projection, metrics against t0."""
    text, index = comparison_captions(captions, reps.imgid, means["text_mean"])
    histogram = paired_cosine_histogram(reps.named(), text, index)
    projection = projection_scatter({"captions": text, "images (mean shift)": reps.mean_shift, "bridged": reps.bridged})
    sweep = sweep_plot(alignment["sweep"], ("paired_cosine", "i2t_R@10", "frechet_distance", "probe_accuracy"))
    return histogram, projection, sweep


def contact_sheet(image_paths: list[str], captions: Mapping[str, list[str]], image_ids: list[int]) -> Figure:
    """Test images, each with the caption every representation produced for it."""
    from PIL import Image

    n = len(image_paths)
    fig, axes = _subplots(n, 2, figsize=(11, 1.9 * n), gridspec_kw={"width_ratios": [1, 5]})
    axes = axes.reshape(n, 2)
    for row, (path, imgid) in enumerate(zip(image_paths, image_ids, strict=True)):
        with Image.open(path) as image:
            axes[row, 0].imshow(image.convert("RGB"))
        axes[row, 0].set_title(f"imgid {imgid}", fontsize=7)
        text = "\n".join(f"{name}: {caps[row]}" for name, caps in captions.items())
        axes[row, 1].text(0, 0.5, text, fontsize=7, va="center", family="monospace")
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def caption_contact_sheet(results: Mapping[str, Any], images: pd.DataFrame, count: int, seed: int,
                          held_out: Mapping[int, str] | None = None) -> Figure:
    """`count` test images (drawn with `seed`), each with the caption every evaluation produced for it; with
    `held_out` (imgid -> the held-out ground-truth caption), that caption first, so the ceiling row can be read
    against the very caption whose embedding it decoded."""
    test = images.loc[images["split"] == "test"]
    picked = test.sample(n=min(count, len(test)), random_state=seed)
    ids = picked["imgid"].tolist()
    by_name = {name: {int(r["image_id"]): r["caption"] for r in rows} for name, rows in results["evaluations"].items()}
    if held_out is not None:
        by_name = {"ground truth (held out)": {i: held_out[i] for i in ids}, **by_name}
    return contact_sheet(picked["image_path"].tolist(), {n: [c[i] for i in ids] for n, c in by_name.items()}, ids)
