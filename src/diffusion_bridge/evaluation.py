"""The alignment study: every representation of the test images measured against the test captions,
and a plain reading of which one wins on which metric — whatever the answer is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from diffusion_bridge.metrics.alignment import alignment_metrics, frechet_distance

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
CEILING = "another_caption"


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


def _table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str], first: str) -> list[str]:
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.3f}" if c in values else "–" for c in columns) + " |")
    return lines


def alignment_markdown(report: Mapping[str, Any]) -> str:
    """The Markdown report: main table, t0 sweep, and the reading."""
    results, sweep = report["representations"], report["sweep"]
    columns = list(METRICS)
    lines = [
        "# Alignment of test image representations with the test captions",
        "",
        f"Corpus `{report['corpus']}`, {report['images']} test images, {report['captions']} captions "
        f"(one caption per image is held out as the `{CEILING}` ceiling; all rows are compared with the rest). "
        f"Bridge: t0 = {report['bridge']['t0']}, {report['bridge']['steps']} {report['bridge']['sampler']} steps. "
        "All vectors live in the caption decoder's input space (centred, normalised).",
        "",
        *_table(results, columns, "representation"),
        "",
        f"Fréchet-distance floor (train captions vs test captions): {report['frechet_floor']:.3f}.",
        "",
        "## Insertion step sweep (bridged at t0; t0 = 0 is the mean shift alone)",
        "",
        *_table({f"t0={k}": v for k, v in sweep.items()}, columns, "t0"),
        "",
        "## Reading",
        "",
        *reading(results),
        "",
    ]
    return "\n".join(lines)


def alignment_summary(report: Mapping[str, Any]) -> str:
    """One screen for the end of `kedro run`."""
    results = report["representations"]
    columns = ["centroid_distance", "paired_cosine", "i2t_R@10", "frechet_distance", "probe_accuracy"]
    head = f"{'representation':<16}" + "".join(f"{c:>18}" for c in columns)
    rows = [f"{n:<16}" + "".join(f"{v[c]:>18.3f}" for c in columns) for n, v in results.items()]
    best = winners(results)
    return "\n".join(
        [f"Alignment with test captions (FD floor {report['frechet_floor']:.3f})", head, *rows,
         "closest to text: " + ", ".join(f"{c} → {best[c]}" for c in columns)]
    )
