"""Alignment metrics against hand computations and independent numpy / scipy oracles."""

import itertools
import json

import numpy as np
import pytest
import scipy.linalg
import torch

from diffusion_bridge.errors import InputError
from diffusion_bridge.metrics.alignment import (
    alignment_metrics,
    centre,
    centred_cosine,
    centroid,
    centroid_distance,
    frechet_distance,
    image_to_text_recall,
    linear_probe_accuracy,
    mean_paired_cosine,
    normalize,
    paired_cosine,
    random_pair_cosine,
    retrieval_recall,
    text_to_image_recall,
)

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")),
]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _random(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) + shift


# --- geometry ---------------------------------------------------------------------------------------------


def test_centroid_and_distance_match_numpy():
    a, b = _random(7, 5, 0, shift=1.0), _random(4, 5, 1)
    ca, cb = _unit_rows(a.numpy()).mean(0), _unit_rows(b.numpy()).mean(0)
    np.testing.assert_allclose(centroid(a).numpy(), ca, atol=1e-6)
    assert centroid_distance(a, b) == pytest.approx(float(np.linalg.norm(ca - cb)), abs=1e-6)
    assert centroid_distance(a, a) == pytest.approx(0.0, abs=1e-7)


def test_centroid_distance_by_hand():
    # Two antipodal single-axis sets: centroids (1, 0) and (-1, 0) are 2 apart; scale must not matter.
    a = torch.tensor([[3.0, 0.0], [0.5, 0.0]])
    b = torch.tensor([[-2.0, 0.0]])
    assert centroid_distance(a, b) == pytest.approx(2.0)


def test_paired_and_centred_cosine_match_numpy():
    a, b = _random(6, 4, 2), _random(6, 4, 3)
    mean = torch.tensor([0.1, -0.2, 0.3, 0.0])
    an, bn = _unit_rows(a.numpy()), _unit_rows(b.numpy())
    np.testing.assert_allclose(paired_cosine(a, b).numpy(), (an * bn).sum(1), atol=1e-6)
    assert mean_paired_cosine(a, b) == pytest.approx(float((an * bn).sum(1).mean()), abs=1e-6)
    ac, bc = _unit_rows(an - mean.numpy()), _unit_rows(bn - mean.numpy())
    np.testing.assert_allclose(centre(a, mean).numpy(), ac, atol=1e-6)
    np.testing.assert_allclose(centred_cosine(a, b, mean).numpy(), (ac * bc).sum(1), atol=1e-6)


def test_centred_cosine_by_hand():
    # normalize((1,1)) - (0.7071, 0) -> (0, 0.7071) -> (0, 1); normalize((1,-1)) - same -> (0, -1): cosine -1.
    half = 2**-0.5
    a, b, mean = torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, -1.0]]), torch.tensor([half, 0.0])
    assert float(paired_cosine(a, b)) == pytest.approx(0.0, abs=1e-7)
    assert float(centred_cosine(a, b, mean)) == pytest.approx(-1.0, abs=1e-6)


def test_paired_cosine_rejects_unmatched_rows():
    with pytest.raises(InputError, match="matched rows"):
        paired_cosine(torch.ones(3, 2), torch.ones(2, 2))
    with pytest.raises(InputError, match="embedding sizes"):
        paired_cosine(torch.ones(3, 2), torch.ones(3, 4))
    with pytest.raises(InputError, match="row 1"):
        paired_cosine(torch.tensor([[1.0, 0.0], [float("nan"), 1.0]]), torch.ones(2, 2))


# --- random pairs -----------------------------------------------------------------------------------------


def _brute_random_cosine(a: np.ndarray, b: np.ndarray, b_to_a: np.ndarray) -> float:
    an, bn = _unit_rows(a), _unit_rows(b)
    values = [an[i] @ bn[j] for i in range(len(a)) for j in range(len(b)) if b_to_a[j] != i]
    return float(np.mean(values))


def test_random_pair_cosine_exact_mean_matches_brute_force():
    a, b = _random(5, 3, 4), _random(5, 3, 5)
    identity = np.arange(5)
    assert random_pair_cosine(a, b) == pytest.approx(
        _brute_random_cosine(a.numpy(), b.numpy(), identity), abs=1e-6
    )
    # Many captions per image: caption j is matched with image b_to_a[j].
    images, captions = _random(4, 3, 6), _random(9, 3, 7)
    b_to_a = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 0])
    expected = _brute_random_cosine(images.numpy(), captions.numpy(), b_to_a.numpy())
    assert random_pair_cosine(images, captions, b_to_a=b_to_a) == pytest.approx(expected, abs=1e-6)


def test_random_pair_cosine_excludes_matched_pairs():
    # Matched pairs have cosine 1, every unmatched pair cosine 0: any included match would lift the mean.
    images = torch.eye(4)
    b_to_a = torch.tensor([0, 0, 1, 2, 2, 2, 3])
    captions = images[b_to_a]
    g = torch.Generator().manual_seed(0)
    assert random_pair_cosine(images, captions, b_to_a=b_to_a) == 0.0
    assert random_pair_cosine(images, captions, g, n_pairs=5000, b_to_a=b_to_a, chunk_size=777) == 0.0
    assert random_pair_cosine(images, images, g, n_pairs=5000) == 0.0
    assert mean_paired_cosine(images[b_to_a], captions) == pytest.approx(1.0)


def test_random_pair_cosine_sampling_is_seeded_and_converges():
    a, b = _random(50, 8, 8), _random(50, 8, 9)
    exact = random_pair_cosine(a, b)
    first = random_pair_cosine(a, b, torch.Generator().manual_seed(1), n_pairs=200_000)
    again = random_pair_cosine(a, b, torch.Generator().manual_seed(1), n_pairs=200_000)
    assert first == again
    assert first == pytest.approx(exact, abs=5e-3)  # std of the mean ~ 0.35 / sqrt(2e5) ~ 8e-4


def test_random_pair_cosine_needs_a_mapping_for_unequal_sets():
    with pytest.raises(InputError, match="b_to_a"):
        random_pair_cosine(torch.randn(3, 2), torch.randn(5, 2))
    with pytest.raises(InputError, match=r"b_to_a\[1\] = 3"):
        random_pair_cosine(torch.randn(3, 2), torch.randn(2, 2), b_to_a=torch.tensor([0, 3]))


# --- retrieval --------------------------------------------------------------------------------------------


def _recall_by_enumeration(scores: np.ndarray, positive: np.ndarray, k: int) -> tuple[float, float]:
    """(worst case, mean) over every order of the gallery consistent with the scores, averaged over queries."""
    worst, mean = [], []
    n = scores.shape[1]
    for s, pos in zip(scores, positive, strict=True):
        outcomes = []
        for order in itertools.permutations(range(n)):
            # Stable sort by descending score: items of equal score keep their order in `order`.
            ranked = sorted(order, key=lambda g, s=s: -s[g])
            outcomes.append(any(pos[g] for g in ranked[:k]))
        worst.append(min(outcomes))
        mean.append(np.mean(outcomes))
    return float(np.mean(worst)), float(np.mean(mean))


def test_retrieval_ties_by_hand():
    # Query (1, 0); gallery: positive (1, 0), negative (2, 0) tied with it, negative (0, 1) below.
    query = torch.tensor([[1.0, 0.0]])
    gallery = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    pairs = torch.tensor([[0, 0]])
    assert retrieval_recall(query, gallery, pairs, ks=(1, 2)) == {"R@1": 0.0, "R@2": 1.0}
    assert retrieval_recall(query, gallery, pairs, ks=(1, 2), ties="random") == {"R@1": 0.5, "R@2": 1.0}
    # Two positives tied at the top: either one ranked first is correct, so the tie costs nothing.
    both = torch.tensor([[0, 0], [0, 1]])
    assert retrieval_recall(query, gallery, both, ks=(1,)) == {"R@1": 1.0}


def test_constant_representation_gets_no_credit_from_ties():
    n = 10
    images, texts = torch.ones(n, 4), torch.ones(n, 4)
    index = torch.arange(n)
    pessimistic = image_to_text_recall(images, texts, index)
    assert pessimistic == {"R@1": 0.0, "R@5": 0.0, "R@10": 1.0}
    chance = image_to_text_recall(images, texts, index, ties="random")
    assert chance == pytest.approx({"R@1": 1 / n, "R@5": 5 / n, "R@10": 1.0})


def test_retrieval_matches_enumeration_over_tie_orders():
    # Axis vectors make every score exactly -1, 0 or 1, so ties are exact; several positives per query.
    axes = torch.cat([torch.eye(3), -torch.eye(3)])
    g = torch.Generator().manual_seed(3)
    query = axes[torch.randint(0, 6, (5,), generator=g)]
    gallery = axes[torch.randint(0, 6, (6,), generator=g)]
    positive = torch.rand(5, 6, generator=g) < 0.3
    positive[torch.arange(5), torch.randint(0, 6, (5,), generator=g)] = True
    pairs = positive.nonzero()
    scores = (query @ gallery.T).numpy()
    for k in (1, 2, 3, 5):
        worst, mean = _recall_by_enumeration(scores, positive.numpy(), k)
        assert retrieval_recall(query, gallery, pairs, ks=(k,))[f"R@{k}"] == pytest.approx(worst)
        assert retrieval_recall(query, gallery, pairs, ks=(k,), ties="random")[f"R@{k}"] == pytest.approx(
            mean
        )


def test_image_and_text_recall_by_hand():
    # Image 0 and 1 with captions; caption 2 (image 1) is closer to image 0 than its own image.
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, 0.2], [0.2, 1.0]])
    index = torch.tensor([0, 1, 1, 1])
    # i2t: image 0's best caption is its own (rank 1); image 1's captions 1 and 3 are its top 2.
    assert image_to_text_recall(images, texts, index, ks=(1,)) == {"R@1": 1.0}
    # t2i: captions 0, 1, 3 find their image first; caption 2 finds image 0 first.
    assert text_to_image_recall(texts, images, index, ks=(1, 2)) == {"R@1": 0.75, "R@2": 1.0}


@pytest.mark.parametrize("device", DEVICES)
def test_chunked_recall_equals_unchunked(device):
    images, texts = _random(37, 16, 10).to(device), _random(111, 16, 11).to(device)
    index = torch.randint(0, 37, (111,), generator=torch.Generator().manual_seed(12))
    index[:37] = torch.arange(37)  # every image has at least one caption
    for ties in ("pessimistic", "random"):
        whole_i2t = image_to_text_recall(
            images, texts, index, ks=(1, 5, 10, 50), chunk_size=10_000, ties=ties
        )
        whole_t2i = text_to_image_recall(
            texts, images, index, ks=(1, 5, 10, 50), chunk_size=10_000, ties=ties
        )
        for chunk_size in (1, 7, 36):
            assert (
                image_to_text_recall(images, texts, index, (1, 5, 10, 50), chunk_size=chunk_size, ties=ties)
                == whole_i2t
            )
            assert (
                text_to_image_recall(texts, images, index, (1, 5, 10, 50), chunk_size=chunk_size, ties=ties)
                == whole_t2i
            )


def test_recall_against_numpy_argsort_without_ties():
    images, texts = _random(20, 8, 13), _random(60, 8, 14)
    index = torch.arange(60) % 20
    scores = _unit_rows(images.numpy()) @ _unit_rows(texts.numpy()).T
    top = np.argsort(-scores, axis=1)
    for k in (1, 5, 10):
        hits = [(index.numpy()[top[i, :k]] == i).any() for i in range(20)]
        assert image_to_text_recall(images, texts, index, ks=(k,))[f"R@{k}"] == pytest.approx(np.mean(hits))


def test_recall_input_errors():
    images, texts = torch.randn(3, 2), torch.randn(4, 2)
    with pytest.raises(InputError, match="query row 2 has no positive"):
        image_to_text_recall(images, texts, torch.tensor([0, 0, 1, 1]))
    with pytest.raises(InputError, match=r"text_image_index\[3\] = 5"):
        image_to_text_recall(images, texts, torch.tensor([0, 1, 2, 5]))
    with pytest.raises(InputError, match="positive integers"):
        image_to_text_recall(images, texts, torch.tensor([0, 1, 2, 2]), ks=(0,))
    with pytest.raises(InputError, match=r"\[P, 2\]"):
        retrieval_recall(images, texts, torch.tensor([0, 1, 2]))


# --- Fréchet distance -------------------------------------------------------------------------------------


def _frechet_scipy(a: np.ndarray, b: np.ndarray) -> float:
    a, b = _unit_rows(a.astype(np.float64)), _unit_rows(b.astype(np.float64))
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


def test_frechet_distance_matches_scipy_sqrtm():
    a, b = _random(300, 6, 15), _random(200, 6, 16, shift=0.4) * torch.linspace(0.5, 2.0, 6)
    expected = _frechet_scipy(a.numpy(), b.numpy())
    assert expected > 0.05
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_frechet_distance_with_singular_covariances():
    # Fewer rows than dimensions: both covariances are rank deficient.
    a, b = _random(20, 64, 17), _random(30, 64, 18, shift=0.2)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    an, bn = _unit_rows(a.numpy().astype(np.float64)), _unit_rows(b.numpy().astype(np.float64))
    cov_a, cov_b = np.cov(an, rowvar=False), np.cov(bn, rowvar=False)
    # tr sqrt(S_a S_b) from the (real, non-negative) eigenvalues of the non-symmetric product.
    eig = np.clip(np.linalg.eigvals(cov_a @ cov_b).real, 0, None)
    expected = (
        ((an.mean(0) - bn.mean(0)) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(eig).sum()
    )
    assert frechet_distance(a, b) == pytest.approx(float(expected), abs=1e-6)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = _random(500, 32, 19)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(x, x * 3.0) == pytest.approx(0.0, abs=1e-6)  # rows are normalised first


# --- linear probe -----------------------------------------------------------------------------------------


def test_probe_separates_separable_sets():
    a, b = _random(200, 16, 20), _random(300, 16, 21)
    a[:, 0] += 6.0
    b[:, 0] -= 6.0
    assert linear_probe_accuracy(a, b, torch.Generator().manual_seed(0)) == 1.0


def test_probe_is_at_chance_for_identical_distributions():
    a, b = _random(1000, 16, 22), _random(1000, 16, 23)
    accuracy = linear_probe_accuracy(a, b, torch.Generator().manual_seed(0))
    assert abs(accuracy - 0.5) < 0.06  # 600 test rows: std of chance accuracy ~ 0.02
    assert linear_probe_accuracy(a, b, torch.Generator().manual_seed(0)) == accuracy


def test_probe_balances_unequal_sets():
    # 100 vs 1000 rows of one distribution: without balancing, always answering "b" would score 0.91.
    a, b = _random(100, 8, 24), _random(1000, 8, 25)
    assert abs(linear_probe_accuracy(a, b, torch.Generator().manual_seed(1)) - 0.5) < 0.15


def test_probe_rejects_bad_split():
    with pytest.raises(InputError, match="test_fraction"):
        linear_probe_accuracy(torch.randn(5, 2), torch.randn(5, 2), test_fraction=1.5)


# --- everything at once -----------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_alignment_metrics_agree_with_the_parts(device):
    n_images, per_image, d = 40, 3, 12
    images = _random(n_images, d, 26).to(device)
    index = torch.arange(n_images).repeat_interleave(per_image)
    texts = (images[index.to(device)] + 0.8 * _random(n_images * per_image, d, 27).to(device) + 0.5).to(
        device
    )
    text_mean = centroid(texts)
    metrics = alignment_metrics(
        images, texts, index, text_mean, torch.Generator().manual_seed(5), chunk_size=16
    )
    json.dumps(metrics)  # plain floats only
    assert all(type(value) is float for value in metrics.values())
    expected_keys = {
        "centroid_distance", "paired_cosine", "random_cosine", "paired_cosine_centred", "random_cosine_centred",
        "i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10", "frechet_distance", "probe_accuracy",
    }  # fmt: skip
    assert set(metrics) == expected_keys

    im, tx = images.cpu().double().numpy(), texts.cpu().double().numpy()
    imn, txn, mean = _unit_rows(im), _unit_rows(tx), text_mean.cpu().double().numpy()
    assert metrics["centroid_distance"] == pytest.approx(np.linalg.norm(imn.mean(0) - txn.mean(0)), abs=1e-6)
    assert metrics["paired_cosine"] == pytest.approx((imn[index] * txn).sum(1).mean(), abs=1e-6)
    imc, txc = _unit_rows(imn - mean), _unit_rows(txn - mean)
    assert metrics["paired_cosine_centred"] == pytest.approx((imc[index] * txc).sum(1).mean(), abs=1e-6)
    assert metrics["random_cosine_centred"] == pytest.approx(
        _brute_random_cosine(imc, txc, index.numpy()), abs=1e-6
    )
    assert metrics["random_cosine"] == pytest.approx(_brute_random_cosine(im, tx, index.numpy()), abs=1e-6)
    assert metrics["paired_cosine"] > metrics["random_cosine"] + 0.2
    i2t = image_to_text_recall(images.cpu(), texts.cpu(), index)
    assert metrics["i2t_R@1"] == i2t["R@1"] and metrics["i2t_R@10"] == i2t["R@10"]
    assert metrics["frechet_distance"] == pytest.approx(frechet_distance(images.cpu(), texts.cpu()), rel=1e-5)


def test_alignment_metrics_for_a_perfect_representation():
    # rep = the single caption of each image: perfect retrieval, no gap, chance-level probe.
    texts = _random(300, 8, 28)
    index = torch.arange(300)
    metrics = alignment_metrics(
        texts.clone(), texts, index, centroid(texts), torch.Generator().manual_seed(0)
    )
    assert metrics["i2t_R@1"] == 1.0 and metrics["t2i_R@1"] == 1.0
    assert metrics["paired_cosine"] == pytest.approx(1.0)
    assert metrics["paired_cosine_centred"] == pytest.approx(1.0)
    assert metrics["centroid_distance"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["frechet_distance"] == pytest.approx(0.0, abs=1e-6)
    assert abs(metrics["probe_accuracy"] - 0.5) < 0.12


def test_alignment_metrics_rejects_a_wrong_mean():
    with pytest.raises(InputError, match="text_mean"):
        alignment_metrics(torch.randn(3, 4), torch.randn(3, 4), torch.arange(3), torch.zeros(5))


def test_normalize_keeps_direction():
    x = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    torch.testing.assert_close(normalize(x), torch.tensor([[0.6, 0.8], [0.0, -1.0]]))
