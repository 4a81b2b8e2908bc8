"""The alignment study: every representation of the test images measured against the test captions,
and a plain reading of which one wins on which metric — whatever the answer is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from diffusion_bridge.metrics.alignment import alignment_metrics, frechet_distance
from diffusion_bridge.serialization import Tensors
from diffusion_bridge.space import centre
from diffusion_bridge.study.representations import CEILING, Representations, comparison_captions

# How to read each metric: +1 higher is closer to text, −1 lower is closer, 0 closer to 0.5 is closer.
METRICS: dict[str, tuple[str, int]] = {
    "centroid_distance": ("distance of the centroid to the text centroid", -1),
    "paired_cosine": ("mean cosine to the image's own captions", +1),
    "random_cosine": ("mean cosine to other images' captions", 0),
    "i2t_R@1": ("image→text recall@1", +1),
    "i2t_R@5": ("image→text recall@5", +1),
    "i2t_R@10": ("image→text recall@10", +1),
    "t2i_R@1": ("text→image recall@1", +1),
    "t2i_R@5": ("text→image recall@5", +1),
    "t2i_R@10": ("text→image recall@10", +1),
    "frechet_distance": ("Fréchet distance to the caption distribution", -1),
    "probe_accuracy": ("linear-probe accuracy telling it from text (0.5 = inseparable)", 0),
}


def measure_representations(
    representations: Mapping[str, Tensor],
    text: Tensor,
    text_image_index: Tensor,
    seed: int,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, dict[str, float]]:
    """Alignment metrics of each [N_images, D] representation against the [N_captions, D] text set.

    Everything is already in the decoder's (centred) space, so no further centring is applied; ties in
    retrieval are broken at random in expectation (a constant representation scores k/N).
    """
    zero = torch.zeros(text.shape[1])
    out = {}
    for name, rep in representations.items():
        metrics = alignment_metrics(
            rep, text, text_image_index, zero, torch.Generator().manual_seed(seed), ks, ties="random"
        )
        out[name] = {k: metrics[k] for k in METRICS if k in metrics}
    return out


def distribution_floor(train_text: Tensor, test_text: Tensor) -> float:
    """Fréchet distance between train and test captions: how close "indistinguishable from text" gets."""
    return frechet_distance(train_text, test_text)


def _closeness(metric: str, value: float) -> float:
    direction = METRICS[metric][1]
    return value * direction if direction else -abs(value - (0.5 if metric == "probe_accuracy" else 0.0))


def winners(results: Mapping[str, Mapping[str, float]], exclude: Sequence[str] = (CEILING,)) -> dict[str, str]:
    """For each metric, the representation closest to text (the ceiling excluded)."""
    names = [n for n in results if n not in exclude]
    return {m: max(names, key=lambda n: _closeness(m, results[n][m])) for m in METRICS if all(m in results[n] for n in names)}


def reading(results: Mapping[str, Mapping[str, float]], baseline: str = "mean_shift", subject: str = "bridged") -> list[str]:
    """Plain sentences: who wins each metric, and where the bridge stands against the simpler remedy."""
    lines = []
    for metric, best in winners(results).items():
        label, _ = METRICS[metric]
        line = f"- {label}: **{best}** ({results[best][metric]:.3f})"
        if best != subject and subject in results:
            line += f"; {subject}: {results[subject][metric]:.3f}"
        lines.append(line)
    if subject in results and baseline in results:
        shared = [m for m in METRICS if m in results[subject] and m in results[baseline]]
        better = [m for m in shared if _closeness(m, results[subject][m]) > _closeness(m, results[baseline][m])]
        worse = [m for m in shared if _closeness(m, results[subject][m]) < _closeness(m, results[baseline][m])]
        lines.append(
            f"- {subject} vs {baseline}: closer to text on {len(better)} of {len(shared)} metrics"
            + (f" ({', '.join(better)})" if better else "")
            + (f"; further on {', '.join(worse)}" if worse else "")
            + "."
        )
    return lines


def alignment_study(
    reps: Representations, captions: Tensors, train_captions: Tensors, means: Tensors, ks: Sequence[int], seed: int
) -> dict[str, Any]:
    """Every alignment metric of every representation and of each t0 of the sweep, against the held-in captions."""
    text, index = comparison_captions(captions, reps.imgid, means["text_mean"])
    sweep = measure_representations({str(t): v for t, v in reps.sweep.items()}, text, index, seed, ks)
    return {
        "images": len(reps.imgid),
        "captions": len(captions["imgid"]),
        "frechet_floor": distribution_floor(centre(train_captions["embeddings"], means["text_mean"]), text),
        "representations": measure_representations(reps.named(), text, index, seed, ks),
        "sweep": {int(t): m for t, m in sweep.items()},
    }
