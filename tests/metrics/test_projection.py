"""Shared 2-D PCA against numpy's SVD and against its own invariances."""

import numpy as np
import pytest
import torch

from diffusion_bridge.errors import InputError
from diffusion_bridge.metrics.projection import pca_2d

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")),
]


def _sets() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([3.0, 2.0, 1.0, 0.5, 0.3, 0.2])
    return [
        torch.randn(n, 6, generator=g) * scales + shift for n, shift in ((30, 1.0), (20, -1.0), (10, 0.0))
    ]


def _numpy_pca_2d(x: np.ndarray) -> np.ndarray:
    """Scores on the top two right singular vectors, each signed so its largest-|loading| entry is positive."""
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    axes = axes * np.sign(axes[np.arange(2), np.abs(axes).argmax(1)])[:, None]
    return centred @ axes.T


@pytest.mark.parametrize("device", DEVICES)
def test_pca_matches_numpy_svd(device):
    sets = [s.to(device) for s in _sets()]
    projected = pca_2d(*sets)
    union = np.concatenate([s.cpu().double().numpy() for s in sets])
    expected = _numpy_pca_2d(union / np.linalg.norm(union, axis=1, keepdims=True))
    assert [p.shape for p in projected] == [(30, 2), (20, 2), (10, 2)]
    assert all(p.dtype == torch.float32 and p.device.type == device for p in projected)
    np.testing.assert_allclose(torch.cat(projected).cpu().numpy(), expected, atol=1e-5)


def test_pca_without_normalisation_matches_numpy():
    sets = _sets()
    projected = pca_2d(*sets, normalise=False)
    expected = _numpy_pca_2d(torch.cat(sets).double().numpy())
    np.testing.assert_allclose(torch.cat(projected).numpy(), expected, atol=1e-5)
    variances = torch.cat(projected).var(dim=0)
    assert variances[0] > variances[1]


def test_pca_ignores_how_rows_are_grouped_and_ordered():
    sets = _sets()
    together = torch.cat(pca_2d(torch.cat(sets)))
    grouped = torch.cat(pca_2d(*sets))
    torch.testing.assert_close(grouped, together, atol=1e-6, rtol=0)
    order = torch.randperm(60, generator=torch.Generator().manual_seed(1))
    shuffled = pca_2d(torch.cat(sets)[order])[0]
    torch.testing.assert_close(shuffled, together[order], atol=1e-5, rtol=0)  # same signs, same axes


def test_pca_by_hand():
    # Points on a line along (1, 1, 0) with a small spread along z, uncorrelated with it: axis 1 is (1, 1, 0)/sqrt(2), axis 2 is z.
    x = torch.tensor([[-2.0, -2.0, 0.1], [0.0, 0.0, -0.1], [2.0, 2.0, -0.1], [4.0, 4.0, 0.1]])
    (projected,) = pca_2d(x, normalise=False)
    root2 = 2**0.5
    expected_first = torch.tensor([-3.0, -1.0, 1.0, 3.0]) * root2
    torch.testing.assert_close(projected[:, 0], expected_first, atol=1e-5, rtol=0)
    torch.testing.assert_close(projected[:, 1], torch.tensor([0.1, -0.1, -0.1, 0.1]), atol=1e-5, rtol=0)


def test_pca_input_errors():
    with pytest.raises(InputError, match="at least one"):
        pca_2d()
    with pytest.raises(InputError, match="set 1 is 3-d"):
        pca_2d(torch.randn(4, 5), torch.randn(4, 3))
    with pytest.raises(InputError, match="set 0 must be a 2-D float"):
        pca_2d(torch.randn(5))
    with pytest.raises(InputError, match="at least 2"):
        pca_2d(torch.randn(1, 5))
