"""The alignment study: every representation of the test images measured against the test captions,
and a plain reading of which one wins on which metric — whatever the answer is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from diffusion_bridge.metrics.alignment import (
    alignment_metrics,
    frechet_distance,
    frechet_from_fits,
    normalize,
    retrieval_credits,
    weighted_gaussian_fits,
)
from diffusion_bridge.serialization import Tensors
from diffusion_bridge.space import centre
from diffusion_bridge.study.claims import Claim, judge
from diffusion_bridge.study.gap import rows_of
from diffusion_bridge.study.intervals import RESAMPLES, PerImage, SetStatistic, Statistic, resample_indices
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


SET_STATISTIC_ELEMENTS = 1 << 24  # float64 elements of one call's covariances (128 MB): 4,096 64-d, 64 512-d


def per_image_statistics(rep: Tensor, text: Tensor, index: Tensor, ks: Sequence[int]) -> dict[str, Statistic]:
    """Every alignment metric of one representation as something a paired bootstrap over images can resample.

    Paired cosine and t2i recall are ratios of per-image sums over the image's captions; i2t recall is a mean
    of per-image credits; centroid and Fréchet distances are recomputed on each resampled set of images and
    their captions. The linear probe is left out: refitting it per resample would cost a fit each.
    """
    n = rep.shape[0]
    per_caption = normalize(rep)[index].mul(normalize(text)).sum(-1).double()
    counts = torch.bincount(index, minlength=n).double()

    def by_image(values: Tensor) -> Tensor:
        return torch.zeros(n, dtype=torch.float64).index_add_(0, index, values.double())

    stats: dict[str, Statistic] = {"paired_cosine": PerImage(by_image(per_caption), counts)}
    pairs = torch.stack([index, torch.arange(len(index))], dim=1)
    for k, credit in retrieval_credits(rep, text, pairs, ks, ties="random").items():
        stats[f"i2t_R@{k}"] = PerImage.mean_of(credit)
    for k, credit in retrieval_credits(text, rep, pairs.flip(dims=(1,)), ks, ties="random").items():
        stats[f"t2i_R@{k}"] = PerImage(by_image(credit), counts)
    # a resample's captions are its images' captions, each weighted by how often its image was drawn
    unit_rep, unit_text = normalize(rep).double(), normalize(text).double()

    def centroid_gap(weights: Tensor) -> Tensor:
        rep_mean = weights @ unit_rep / weights.sum(1, keepdim=True)
        caption_weights = weights[:, index]
        text_mean = caption_weights @ unit_text / caption_weights.sum(1, keepdim=True)
        return torch.linalg.vector_norm(rep_mean - text_mean, dim=-1)

    def frechet(weights: Tensor) -> Tensor:
        return frechet_from_fits(*weighted_gaussian_fits(unit_rep, weights),
                                 *weighted_gaussian_fits(unit_text, weights[:, index]))

    batch = max(1, SET_STATISTIC_ELEMENTS // unit_text.shape[1] ** 2)  # resamples per call: [B, D, D] covariances
    stats["centroid_distance"] = SetStatistic(centroid_gap, n, batch)
    stats["frechet_distance"] = SetStatistic(frechet, n, batch)
    return stats


def caption_average_evidence(captions: Tensor, index: Tensor) -> dict[str, float]:
    """How much closer an average of captions is to a caption than one caption is (leave-one-out, same image).

    `one_caption`: mean cos(c, c') over pairs of distinct captions of an image; `mean_of_the_others`: mean
    cos(c, normalize(sum of the image's other captions)). A mean sits closer to every sample than a sample
    does, which is why a denoiser's x0-prediction, a posterior mean, can beat the one-caption ceiling.
    """
    unit = normalize(captions).double()
    n_images = int(index.max()) + 1
    sums = torch.zeros(n_images, unit.shape[1], dtype=torch.float64).index_add_(0, index, unit)
    counts = torch.bincount(index, minlength=n_images)
    keep = counts[index] > 1
    others = sums[index] - unit
    pair_cos = ((unit * others).sum(-1) / (counts[index] - 1).clamp(min=1))[keep]
    mean_cos = F.cosine_similarity(unit, others, dim=-1)[keep]
    return {"one_caption": float(pair_cos.mean()), "mean_of_the_others": float(mean_cos.mean()),
            "captions_averaged": float((counts[counts > 1] - 1).double().mean())}


ALIGNMENT_CLAIMS = (
    ("bridged image embeddings sit closer to their own captions than mean-shifted ones (§5: 0.606 vs 0.306 raw)",
     "bridged", "mean_shift"),
    ("bridged image embeddings sit closer to their own captions than raw ones", "bridged", "raw"),
)


def alignment_claims(systems: Mapping[str, Mapping[str, Statistic]], steps: Sequence[int]) -> list[Claim]:
    """The bridge against the simpler remedies on every metric with an interval, and each t0 against t0 = 0."""
    claims = [Claim(statement, better, worse, metric, METRICS[metric][1] > 0)
              for statement, better, worse in ALIGNMENT_CLAIMS for metric in systems.get(better, {})
              if METRICS.get(metric, ("", 0))[1] != 0 and (worse == "mean_shift" or metric == "paired_cosine")]
    claims += [Claim(f"bridging at t0 = {t} brings images closer to their captions than t0 = 0", f"t0={t}", "t0=0",
                     "paired_cosine") for t in steps if t > 0 and 0 in steps]
    return claims


def alignment_study(
    reps: Representations, captions: Tensors, train_captions: Tensors, means: Tensors, ks: Sequence[int], seed: int,
    resamples: int = RESAMPLES,
) -> dict[str, Any]:
    """Every alignment metric of every representation and of each t0 of the sweep, against the held-in captions,
    with the bridge's comparisons judged by paired bootstrap intervals over the test images."""
    text, index = comparison_captions(captions, reps.imgid, means["text_mean"])
    sweep = measure_representations({str(t): v for t, v in reps.sweep.items()}, text, index, seed, ks)
    named = reps.named()
    compared = {name: named[name] for name in ("raw", "mean_shift", "bridged")}
    compared |= {f"t0={t}": v for t, v in reps.sweep.items()}
    systems = {name: per_image_statistics(rep, text, index, ks) for name, rep in compared.items()}
    claims = alignment_claims(systems, sorted(reps.sweep))
    return {
        "images": len(reps.imgid),
        "captions": len(captions["imgid"]),
        "frechet_floor": distribution_floor(centre(train_captions["embeddings"], means["text_mean"]), text),
        "representations": measure_representations(named, text, index, seed, ks),
        "sweep": {int(t): m for t, m in sweep.items()},
        "caption_average": caption_average_evidence(
            centre(captions["embeddings"], means["text_mean"]), rows_of(reps.imgid, captions["imgid"])),
        "comparisons": judge(claims, systems, resample_indices(len(reps.imgid), resamples, seed)),
        "bootstrap": {"resamples": resamples, "seed": seed, "images": len(reps.imgid)},
    }
