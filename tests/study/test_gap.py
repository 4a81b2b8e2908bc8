"""Modality means and gap statistics against brute-force NumPy computations."""

import numpy as np
import pytest
import torch

from diffusion_bridge.errors import InputError
from diffusion_bridge.space import modality_means
from diffusion_bridge.study.gap import gap_statistics, rows_of, same_image_caption_cosine


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def corpus():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(6, 8, generator=g) + 2.0
    image_ids = torch.tensor([10, 11, 12, 13, 14, 15])
    owners = torch.tensor([10, 10, 11, 11, 11, 12, 13, 13, 14, 15, 15])
    texts = torch.randn(len(owners), 8, generator=g) - 1.0
    return images, image_ids, texts, owners


def test_means_are_means_of_unit_vectors(corpus):
    images, _, texts, _ = corpus
    means = modality_means(images, texts)
    np.testing.assert_allclose(means["image_mean"], unit(images.double().numpy()).mean(0), atol=1e-6)
    np.testing.assert_allclose(means["text_mean"], unit(texts.double().numpy()).mean(0), atol=1e-6)


def test_gap_statistics_match_brute_force(corpus):
    images, image_ids, texts, owners = corpus
    stats = gap_statistics(images, image_ids, texts, owners)
    im, T = unit(images.double().numpy()), unit(texts.double().numpy())
    row = {int(i): k for k, i in enumerate(image_ids)}
    own = np.array([row[int(o)] for o in owners])
    cos = T @ im.T  # [captions, images]
    matched = cos[np.arange(len(T)), own]
    mask = np.ones_like(cos, dtype=bool)
    mask[np.arange(len(T)), own] = False
    unmatched = cos[mask]
    pairs = [(a, b) for a in range(len(T)) for b in range(len(T)) if a != b and owners[a] == owners[b]]
    same = np.mean([T[a] @ T[b] for a, b in pairs])
    assert stats["centroid_distance"] == pytest.approx(np.linalg.norm(im.mean(0) - T.mean(0)), abs=1e-6)
    assert stats["matched_cosine"] == pytest.approx(matched.mean(), abs=1e-6)
    assert stats["random_pair_cosine"] == pytest.approx(unmatched.mean(), abs=1e-6)
    assert stats["same_image_caption_cosine"] == pytest.approx(same, abs=1e-6)
    assert stats["images"] == 6 and stats["captions"] == 11


def test_single_caption_images_have_no_pairs():
    assert np.isnan(same_image_caption_cosine(torch.randn(3, 4), torch.tensor([1, 2, 3])))


def test_rows_of_names_missing_ids():
    assert rows_of(torch.tensor([5, 3, 9]), torch.tensor([9, 5, 5])).tolist() == [2, 0, 0]
    with pytest.raises(InputError, match=r"\[4\]"):
        rows_of(torch.tensor([5, 3, 9]), torch.tensor([9, 4]))
