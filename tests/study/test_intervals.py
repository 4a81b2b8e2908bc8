"""Paired bootstrap intervals and the claims judged with them, against independent computations."""

import math

import numpy as np
import pytest
import torch

from diffusion_bridge.errors import InputError
from diffusion_bridge.study.claims import Claim, claim_lines, judge
from diffusion_bridge.study.intervals import (
    PerImage,
    SetStatistic,
    interval,
    paired_difference,
    resample_indices,
)


def scores(n: int, mean: float, seed: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + mean


def test_an_interval_contains_its_estimate_and_matches_numpy_percentiles():
    values = scores(200, 0.3, 1)
    indices = resample_indices(200, 2000, seed=5)
    result = interval(PerImage.mean_of(values), indices)
    assert result.low < result.estimate < result.high
    assert result.estimate == pytest.approx(float(values.mean()))
    means = values.numpy()[indices.numpy()].mean(axis=1)  # the same resamples, computed by NumPy
    assert (result.low, result.high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=1e-12)


def test_intervals_shrink_with_more_images():
    widths = []
    for n in (100, 400, 1600):
        a, b = scores(n, 0.2, 2), scores(n, 0.0, 3)
        d = paired_difference(PerImage.mean_of(a), PerImage.mean_of(b), resample_indices(n, 1000, seed=0))
        assert d.low <= d.estimate <= d.high
        widths.append(d.high - d.low)
    # a mean's spread falls as 1/sqrt(n): each 4x more images roughly halves the width
    assert widths[1] < 0.7 * widths[0] and widths[2] < 0.7 * widths[1]


def test_pairing_removes_what_both_systems_share():
    shared = scores(300, 0.0, 4) * 10  # image difficulty, common to both systems
    a, b = shared + 0.1, shared.clone()
    indices = resample_indices(300, 500, seed=1)
    paired = paired_difference(PerImage.mean_of(a), PerImage.mean_of(b), indices)
    assert paired.estimate == pytest.approx(0.1) and paired.high - paired.low < 1e-9  # an exact, constant gap
    unpaired_width = interval(PerImage.mean_of(a), indices).high - interval(PerImage.mean_of(a), indices).low
    assert unpaired_width > 0.5


def test_ratio_statistics_are_ratios_of_sums_and_undefined_without_mentions():
    correct, mentions = torch.tensor([1.0, 0.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 2.0, 3.0])
    assert PerImage.ratio_of(correct, mentions).value() == pytest.approx(4 / 8)
    nothing = PerImage.ratio_of(torch.zeros(4), torch.zeros(4))
    assert math.isnan(nothing.value())
    assert interval(nothing, resample_indices(4, 10)).to_dict() == {"estimate": None, "low": None, "high": None}
    with pytest.raises(InputError, match="one entry per image"):
        PerImage.ratio_of([1.0, 2.0], [1.0])


def test_set_statistics_see_each_resample_as_image_multiplicities():
    values = scores(50, 1.0, 6)
    drawn_max = SetStatistic(lambda w: torch.where(w > 0, values, -math.inf).amax(1), 50, batch=7)  # odd batches
    weighted_mean = SetStatistic(lambda w: w @ values / w.sum(1), 50, batch=64)
    indices = resample_indices(50, 200, seed=2)
    result = interval(drawn_max, indices)
    assert result.estimate == pytest.approx(float(values.max())) and result.high <= float(values.max())
    assert result.low == pytest.approx(float(np.percentile([values[r].max() for r in indices], 2.5)))
    means = weighted_mean.resampled(indices)  # a repeated image counts as often as it was drawn
    torch.testing.assert_close(means, values[indices].mean(1), rtol=0, atol=1e-12)


def test_claims_hold_reverse_or_are_not_shown_by_their_intervals():
    n = 400
    jitter = scores(n, 0.0, 9)
    systems = {
        "good": {"CIDEr": PerImage.mean_of(scores(n, 1.0, 7)), "hallucination_rate": PerImage.mean_of(torch.zeros(n))},
        "bad": {"CIDEr": PerImage.mean_of(scores(n, 0.0, 8)), "hallucination_rate": PerImage.mean_of(torch.ones(n))},
        "same": {"CIDEr": PerImage.mean_of(scores(n, 0.0, 8) + (jitter - jitter.mean()))},  # differs, on average by 0
    }
    claims = [Claim("good beats bad", "good", "bad", "CIDEr"), Claim("bad beats good", "bad", "good", "CIDEr"),
              Claim("same beats bad", "same", "bad", "CIDEr"),
              Claim("good hallucinates less", "good", "bad", "hallucination_rate", higher_is_better=False),
              Claim("a metric this run lacks", "good", "bad", "SPICE")]
    judged = judge(claims, systems, resample_indices(n, 1000, seed=3))
    assert [j["verdict"] for j in judged] == ["holds", "reversed", "not shown", "holds"]
    line = claim_lines(judged[:1], {"CIDEr": 100.0})[0]
    assert line.startswith("- **holds** — good beats bad: CIDEr good − bad = +") and "95% CI" in line
