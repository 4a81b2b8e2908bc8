"""Paired bootstrap intervals over test images: how sure a difference between two systems is.

Both systems are scored on the same images, so each resample draws one set of image indices (with
replacement) and recomputes both statistics on it; the interval is the 2.5–97.5 percentile range of
the differences (95% by default). Most statistics are a mean of per-image values or a ratio of per-image
sums (`PerImage`: e.g. attribute precision = correct mentions / mentions), so a resample is one indexed
sum; the others (`SetStatistic`: centroid and Fréchet distances) are computed from each resample's image
multiplicities, a batch of resamples at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from diffusion_bridge.errors import InputError

RESAMPLES = 2000  # percentile intervals at 95% are stable to ~0.01 of their width at this count


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0  # False when undefined (NaN)

    @property
    def defined(self) -> bool:
        return math.isfinite(self.estimate) and math.isfinite(self.low) and math.isfinite(self.high)

    def to_dict(self) -> dict[str, float | None]:
        """JSON-safe: an undefined value (e.g. a precision when nothing was mentioned) becomes None."""
        return {k: v if math.isfinite(v) else None for k, v in asdict(self).items()}


@dataclass(frozen=True)
class PerImage:
    """Per-image values of one system: the statistic is sum(numerator) / sum(denominator) over the images.

    For a plain mean the denominator is all ones (`PerImage.mean_of`).
    """

    numerator: Tensor
    denominator: Tensor

    @classmethod
    def mean_of(cls, values: Tensor | list[float]) -> PerImage:
        values = torch.as_tensor(values, dtype=torch.float64)
        return cls(values, torch.ones_like(values))

    @classmethod
    def ratio_of(cls, numerator: Tensor | list[float], denominator: Tensor | list[float]) -> PerImage:
        return cls(torch.as_tensor(numerator, dtype=torch.float64), torch.as_tensor(denominator, dtype=torch.float64))

    def __post_init__(self) -> None:
        if self.numerator.ndim != 1 or self.numerator.shape != self.denominator.shape or len(self.numerator) == 0:
            raise InputError(
                f"per-image values need two equal 1-D tensors with one entry per image; got "
                f"{tuple(self.numerator.shape)} and {tuple(self.denominator.shape)}"
            )

    def value(self) -> float:
        total = self.denominator.sum()
        return float(self.numerator.sum() / total) if total > 0 else math.nan

    def resampled(self, indices: Tensor) -> Tensor:
        """The statistic on every row of `indices` [B, N]: one value per resample."""
        return self.numerator[indices].sum(1) / self.denominator[indices].sum(1)


@dataclass(frozen=True)
class SetStatistic:
    """A statistic of a whole set of images that is not a sum over them.

    `of(weights [B, N]) -> [B]` computes it for B resamples at once, where a resample's weight of an image is
    how often it was drawn (the set itself: all ones), so no resampled copy of the data is ever built.
    """

    of: Callable[[Tensor], Tensor]
    n: int
    batch: int = 100  # resamples per call (bounds the memory `of` needs)

    def value(self) -> float:
        return float(self.of(torch.ones(1, self.n, dtype=torch.float64))[0])

    def resampled(self, indices: Tensor) -> Tensor:
        chunks = []
        for rows in indices.split(self.batch):
            weights = torch.zeros(len(rows), self.n, dtype=torch.float64)
            chunks.append(self.of(weights.scatter_add_(1, rows, torch.ones_like(rows, dtype=torch.float64))))
        return torch.cat(chunks).double()


Statistic = PerImage | SetStatistic


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = 0) -> Tensor:
    """[resamples, n] image indices drawn with replacement from a seeded generator (the same for every pair)."""
    return torch.randint(0, n, (resamples, n), generator=torch.Generator().manual_seed(seed))


def _percentiles(samples: Tensor, level: float) -> tuple[float, float]:
    finite = samples[torch.isfinite(samples)]
    if len(finite) == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2
    low, high = torch.quantile(finite, torch.tensor([tail, 1 - tail], dtype=finite.dtype)).tolist()
    return low, high


def interval(system: Statistic, indices: Tensor, level: float = 0.95) -> Interval:
    """The statistic of one system with its bootstrap interval."""
    low, high = _percentiles(system.resampled(indices), level)
    return Interval(system.value(), low, high)


def _size(system: Statistic) -> int:
    return system.n if isinstance(system, SetStatistic) else len(system.numerator)


def paired_difference(a: Statistic, b: Statistic, indices: Tensor, level: float = 0.95) -> Interval:
    """statistic(a) − statistic(b) on the same images, with its paired bootstrap interval."""
    if _size(a) != _size(b) or indices.shape[1] != _size(a):
        raise InputError(f"a paired comparison needs the same images on both sides; got {_size(a)} and {_size(b)} "
                         f"images and resamples of {indices.shape[1]}")
    low, high = _percentiles(a.resampled(indices) - b.resampled(indices), level)
    return Interval(a.value() - b.value(), low, high)

