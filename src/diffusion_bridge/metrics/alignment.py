"""How close a representation of the test images sits to the text embeddings of their captions.

Diffusion Bridge claims that bridging carries CLIP image embeddings into the text distribution (paper §5:
mean-centred cosine to the paired caption rises from 0.306 to 0.606, against a ceiling of 0.652 for another
caption of the same image). These metrics measure that claim from several sides: where the two sets sit
(centroid distance, Fréchet distance), how well matched pairs agree (paired and random-pair cosine, raw and
mean-centred), whether retrieval still works (recall@k both ways), and whether a linear classifier can still
tell the two sets apart.

Every function takes float tensors on any device, is batched (no per-row Python loops), bounds the size of
any [queries, gallery] similarity block by ``chunk_size`` rows, and compares embeddings after L2
normalisation.
"""

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import Tensor

from diffusion_bridge.errors import InputError
from diffusion_bridge.space import centre  # the mean-shifted space the paper reports its cosines in (C3, §3)

Ties = Literal["pessimistic", "random"]

# Rows of a similarity block computed at once: 1024 queries x 25k COCO captions x 4 bytes ~ 100 MB.
DEFAULT_CHUNK_SIZE = 1024




# ---------------------------------------------------------------------------------------------------------
# validation helpers


def _check_embeddings(x: Tensor, name: str, min_rows: int = 1) -> None:
    """Require a finite float [rows, dim] tensor with at least ``min_rows`` rows."""
    if not isinstance(x, Tensor) or x.ndim != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise InputError(
            f"{name} must be a 2-D [rows, dim] tensor of embeddings, got {shape}; stack the vectors row-wise."
        )
    if not torch.is_floating_point(x):
        raise InputError(f"{name} has dtype {x.dtype}; pass float embeddings (e.g. x.float()).")
    if x.shape[0] < min_rows:
        raise InputError(f"{name} has {x.shape[0]} rows but this metric needs at least {min_rows}.")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).nonzero()[0])
        raise InputError(f"{name} row {bad} holds NaN or inf; fix or drop that embedding first.")


def _check_same_dim(a: Tensor, b: Tensor, names: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise InputError(
            f"{names} have embedding sizes {a.shape[-1]} and {b.shape[-1]}; embed both with the same CLIP model."
        )


def _check_index(index: Tensor, name: str, length: int, upper: int, upper_name: str) -> None:
    """Require a 1-D integer tensor of ``length`` entries, each in [0, upper)."""
    if (
        not isinstance(index, Tensor)
        or index.ndim != 1
        or index.dtype.is_floating_point
        or index.dtype == torch.bool
    ):
        raise InputError(f"{name} must be a 1-D integer tensor, got {index!r:.80}.")
    if index.shape[0] != length:
        raise InputError(
            f"{name} has {index.shape[0]} entries but there are {length} rows to index."
        )
    out = (index < 0) | (index >= upper)
    if bool(out.any()):
        bad = int(out.nonzero()[0])
        raise InputError(
            f"{name}[{bad}] = {int(index[bad])} is outside [0, {upper}) ({upper_name} has {upper} rows)."
        )


def _check_ks(ks: Sequence[int]) -> None:
    if len(ks) == 0 or any(int(k) != k or k < 1 for k in ks):
        raise InputError(
            f"ks = {tuple(ks)} must be a non-empty list of positive integers, e.g. (1, 5, 10)."
        )


# ---------------------------------------------------------------------------------------------------------
# geometry


def normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Rows scaled to unit L2 norm: CLIP compares embeddings by cosine, so their norm carries no meaning."""
    return F.normalize(x, dim=-1, eps=eps)


def centroid(x: Tensor) -> Tensor:
    """Mean of the normalised rows: where a modality sits on the unit sphere (paper's modality means)."""
    return normalize(x).mean(dim=0)


def centroid_distance(a: Tensor, b: Tensor) -> float:
    """``||centroid(a) - centroid(b)||``: the modality gap (~0.82 for CLIP ViT-B/32 images vs texts on COCO)."""
    _check_embeddings(a, "a")
    _check_embeddings(b, "b")
    _check_same_dim(a, b, "a and b")
    return float(torch.linalg.vector_norm(centroid(a).double() - centroid(b).double()))


def paired_cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine of row i of ``a`` with row i of ``b``, shape [N]: agreement of matched pairs."""
    _check_embeddings(a, "a")
    _check_embeddings(b, "b")
    _check_same_dim(a, b, "a and b")
    if a.shape[0] != b.shape[0]:
        raise InputError(
            f"paired_cosine needs matched rows but a has {a.shape[0]} and b has {b.shape[0]}; "
            "index one side so that row i of a goes with row i of b (e.g. a[text_image_index])."
        )
    return einsum(normalize(a), normalize(b), "n d, n d -> n")


def mean_paired_cosine(a: Tensor, b: Tensor) -> float:
    """Mean of :func:`paired_cosine` (paper: 0.3 raw image/text cosine on COCO)."""
    return float(paired_cosine(a, b).double().mean())


def centred_cosine(a: Tensor, b: Tensor, mean_a: Tensor, mean_b: Tensor | None = None) -> Tensor:
    """Paired cosine after centring both sides, shape [N]: the alignment measure of the paper's §5.

    ``a`` is centred with ``mean_a`` and ``b`` with ``mean_b`` (default: the same mean, e.g. the train-split
    text mean for both sides, which is how :func:`alignment_metrics` calls it).
    """
    mean_b = mean_a if mean_b is None else mean_b
    return paired_cosine(centre(a, mean_a), centre(b, mean_b))


def random_pair_cosine(
    a: Tensor,
    b: Tensor,
    generator: torch.Generator | None = None,
    n_pairs: int | None = None,
    *,
    b_to_a: Tensor | None = None,
    chunk_size: int = 65536,
) -> float:
    """Mean cosine over unmatched pairs (row i of ``a``, row j of ``b``): the chance level of paired cosine.

    Row j of ``b`` is matched with row ``b_to_a[j]`` of ``a`` (default: row j), and matched pairs are
    excluded. With ``n_pairs=None`` the mean over *all* unmatched pairs is computed exactly in O((Na+Nb)·D)
    as (sum of all pair cosines - sum of matched ones) / count, so no sampling noise enters and
    ``generator`` is unused. With ``n_pairs`` set, that many pairs are drawn uniformly from the unmatched
    ones using ``generator`` (whose device may differ from the data's).
    """
    _check_embeddings(a, "a", min_rows=2)
    _check_embeddings(b, "b")
    _check_same_dim(a, b, "a and b")
    if b_to_a is None:
        if a.shape[0] != b.shape[0]:
            raise InputError(
                f"a has {a.shape[0]} rows and b has {b.shape[0]}; pass b_to_a to say which row of a each row "
                "of b is matched with."
            )
        b_to_a = torch.arange(b.shape[0], device=b.device)
    _check_index(b_to_a, "b_to_a", b.shape[0], a.shape[0], "a")
    an, bn = normalize(a), normalize(b)
    b_to_a = b_to_a.to(a.device)

    if n_pairs is None:
        total = torch.dot(an.double().sum(dim=0), bn.double().sum(dim=0))
        matched = einsum(an[b_to_a].double(), bn.double(), "n d, n d ->")
        count = a.shape[0] * b.shape[0] - b.shape[0]
        return float((total - matched) / count)

    if n_pairs < 1:
        raise InputError(
            f"n_pairs = {n_pairs} must be a positive number of pairs, or None for the exact mean."
        )
    rng_device = generator.device if generator is not None else torch.device("cpu")
    j = torch.randint(0, b.shape[0], (n_pairs,), generator=generator, device=rng_device)
    # Draw i among the Na - 1 rows of a that are not j's match, then skip over the match: uniform, no rejection.
    i = torch.randint(0, a.shape[0] - 1, (n_pairs,), generator=generator, device=rng_device)
    i, j = i.to(a.device), j.to(a.device)
    i = i + (i >= b_to_a[j]).long()
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    for start in range(0, n_pairs, chunk_size):
        ii, jj = i[start : start + chunk_size], j[start : start + chunk_size]
        total += einsum(an[ii].double(), bn[jj].double(), "n d, n d ->")
    return float(total / n_pairs)


# ---------------------------------------------------------------------------------------------------------
# retrieval


def _log_choose_ratio(n_neg: Tensor, n_tied: Tensor, r: Tensor) -> Tensor:
    """log( C(n_neg, r) / C(n_tied, r) ): chance that r slots drawn from a tie group are all negatives."""
    lg = torch.lgamma
    return lg(n_neg + 1) - lg(n_neg - r + 1) - lg(n_tied + 1) + lg(n_tied - r + 1)


def _hits_at_k(above: Tensor, tied_neg: Tensor, tied_pos: Tensor, k: int, ties: Ties) -> Tensor:
    """Per-query credit (0..1) for "a positive is among the top k", given the counts around the best positive.

    ``above``: negatives scoring strictly higher than the best positive; ``tied_neg`` / ``tied_pos``:
    negatives / positives scoring exactly as high as it.
    """
    if ties == "pessimistic":
        # Worst-case tie breaking: every tied negative is ranked ahead of every tied positive.
        return (1 + above + tied_neg <= k).double()
    # Expected credit under a uniformly random order of the tie group (hypergeometric: the k - above slots
    # left for the tie group all go to negatives with probability C(tied_neg, r) / C(tied_neg + tied_pos, r)).
    r = (k - above).double()
    n_neg, n_tied = tied_neg.double(), (tied_neg + tied_pos).double()
    r_valid = r.clamp(min=0).minimum(n_neg)
    p_all_negative = torch.exp(_log_choose_ratio(n_neg, n_tied, r_valid))
    p_all_negative = torch.where(r > n_neg, torch.zeros_like(r), p_all_negative)
    p_all_negative = torch.where(r <= 0, torch.ones_like(r), p_all_negative)
    return 1.0 - p_all_negative


def retrieval_recall(query: Tensor, gallery: Tensor, query_to_gallery_positives: Tensor,
                     ks: Sequence[int] = (1, 5, 10), **options: Any) -> dict[str, float]:
    """Recall@k of cosine retrieval: the mean over queries of `retrieval_credits` (same arguments)."""
    credits = retrieval_credits(query, gallery, query_to_gallery_positives, ks, **options)
    return {f"R@{k}": float(c.mean()) for k, c in credits.items()}


def retrieval_credits(
    query: Tensor,
    gallery: Tensor,
    query_to_gallery_positives: Tensor,
    ks: Sequence[int] = (1, 5, 10),
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    ties: Ties = "pessimistic",
) -> dict[int, Tensor]:
    """Per-query credit [N_query] (float64, 0..1) for recall@k of cosine retrieval: whether the query has at
    least one correct gallery item in the top k (its mean is the recall; per-query values are what a bootstrap
    resamples).

    ``query_to_gallery_positives`` is an integer [P, 2] tensor of (query row, gallery row) pairs that count
    as correct; every query needs at least one. Returns ``{k: credits [N_query]}`` for ``ks``.

    Ties are never rewarded. A query is scored at its best positive p (highest score s*). With
    ``ties="pessimistic"`` (default) its rank is 1 + the number of gallery items scoring strictly above s*
    + the number of *other* items scoring exactly s*, where other positives are left out of the count
    because ranking any of them first is equally correct (with one positive this is exactly "1 + greater +
    other equal"). A constant representation thus scores 0 for k < N, never 1. With ``ties="random"`` the
    credit is the expected hit under a uniformly random order of the tied items, so a constant
    representation scores exactly the chance level k/N.
    """
    _check_embeddings(query, "query")
    _check_embeddings(gallery, "gallery")
    _check_same_dim(query, gallery, "query and gallery")
    _check_ks(ks)
    if ties not in ("pessimistic", "random"):
        raise InputError(f"ties = {ties!r}; use 'pessimistic' or 'random'.")
    if chunk_size < 1:
        raise InputError(f"chunk_size = {chunk_size} must be a positive number of query rows.")
    pairs = query_to_gallery_positives
    if (
        not isinstance(pairs, Tensor)
        or pairs.ndim != 2
        or pairs.shape[1] != 2
        or pairs.dtype.is_floating_point
    ):
        raise InputError(
            "query_to_gallery_positives must be an integer [P, 2] tensor of (query row, gallery row) pairs, "
            f"got {tuple(pairs.shape) if isinstance(pairs, Tensor) else type(pairs).__name__}."
        )
    n_query, n_gallery = query.shape[0], gallery.shape[0]
    pairs = pairs.to(device=query.device, dtype=torch.long)
    pq, pg = pairs.unbind(dim=1)
    _check_index(pq, "query_to_gallery_positives[:, 0]", pq.shape[0], n_query, "query")
    _check_index(pg, "query_to_gallery_positives[:, 1]", pg.shape[0], n_gallery, "gallery")
    lonely = torch.bincount(pq, minlength=n_query) == 0
    if bool(lonely.any()):
        bad = int(lonely.nonzero()[0])
        raise InputError(
            f"query row {bad} has no positive in query_to_gallery_positives ({int(lonely.sum())} such queries); "
            "drop those queries or add their correct gallery items."
        )

    qn, gn = normalize(query), normalize(gallery)
    credits = {int(k): torch.zeros(n_query, dtype=torch.float64, device=query.device) for k in ks}
    for start in range(0, n_query, chunk_size):
        stop = min(start + chunk_size, n_query)
        scores = qn[start:stop] @ rearrange(gn, "g d -> d g")
        in_chunk = (pq >= start) & (pq < stop)
        positive = torch.zeros_like(scores, dtype=torch.bool)
        positive[pq[in_chunk] - start, pg[in_chunk]] = True
        best = scores.masked_fill(~positive, float("-inf")).amax(dim=1, keepdim=True)
        above = (~positive & (scores > best)).sum(dim=1)
        level = scores == best
        tied_neg, tied_pos = (~positive & level).sum(dim=1), (positive & level).sum(dim=1)
        for k in ks:
            credits[int(k)][start:stop] = _hits_at_k(above, tied_neg, tied_pos, int(k), ties)
    return {k: c.cpu() for k, c in credits.items()}


def _caption_pairs(text_image_index: Tensor, n_images: int, n_texts: int) -> Tensor:
    """(image row, caption row) pairs from ``text_image_index``, after checking it."""
    _check_index(text_image_index, "text_image_index", n_texts, n_images, "image_emb")
    index = text_image_index.long()
    return torch.stack([index, torch.arange(n_texts, device=index.device)], dim=1)


def image_to_text_recall(
    image_emb: Tensor,
    text_emb: Tensor,
    text_image_index: Tensor,
    ks: Sequence[int] = (1, 5, 10),
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    ties: Ties = "pessimistic",
) -> dict[str, float]:
    """Image→text recall@k: an image is correct at k if ANY of its captions is in its top k captions.

    Caption j belongs to image ``text_image_index[j]``; ties as in :func:`retrieval_recall`.
    """
    _check_embeddings(image_emb, "image_emb")
    _check_embeddings(text_emb, "text_emb")
    pairs = _caption_pairs(text_image_index, image_emb.shape[0], text_emb.shape[0])
    return retrieval_recall(image_emb, text_emb, pairs, ks, chunk_size=chunk_size, ties=ties)


def text_to_image_recall(
    text_emb: Tensor,
    image_emb: Tensor,
    text_image_index: Tensor,
    ks: Sequence[int] = (1, 5, 10),
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    ties: Ties = "pessimistic",
) -> dict[str, float]:
    """Text→image recall@k: caption j is correct at k if image ``text_image_index[j]`` is in its top k."""
    _check_embeddings(image_emb, "image_emb")
    _check_embeddings(text_emb, "text_emb")
    pairs = _caption_pairs(text_image_index, image_emb.shape[0], text_emb.shape[0]).flip(dims=(1,))
    return retrieval_recall(text_emb, image_emb, pairs, ks, chunk_size=chunk_size, ties=ties)


# ---------------------------------------------------------------------------------------------------------
# distribution-level distances


def _gaussian_fit(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance of the normalised rows, in float64."""
    x = normalize(x).double()
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / (x.shape[0] - 1)


def weighted_gaussian_fits(unit_rows: Tensor, weights: Tensor, block_elements: int = 1 << 24) -> tuple[Tensor, Tensor]:
    """Means [B, D] and unbiased covariances [B, D, D] of `unit_rows` [N, D] under each row of `weights` [B, N],
    a multiplicity per row: a bootstrap resample drawn with replacement, without copying the rows it repeats.

    The second moments of all B resamples come from one matrix product with the rows' outer products, built
    `block_elements` at a time; float64 keeps the subtraction of the mean's outer product exact enough.
    """
    x = unit_rows.double()
    weights = weights.double()
    n, d = x.shape
    total = weights.sum(dim=1)
    mean = weights @ x / total[:, None]
    second = torch.zeros(len(weights), d * d, dtype=torch.float64, device=x.device)
    rows = max(1, block_elements // (d * d))
    for start in range(0, n, rows):
        block = x[start:start + rows]
        second += weights[:, start:start + rows] @ (block.unsqueeze(-1) * block.unsqueeze(-2)).reshape(len(block), -1)
    covariance = second.view(-1, d, d) - total[:, None, None] * mean.unsqueeze(-1) * mean.unsqueeze(-2)
    return mean, covariance / (total - 1)[:, None, None]


def _psd_eigvals(m: Tensor) -> tuple[Tensor, Tensor]:
    """Eigen-decomposition of symmetric PSD matrices [..., D, D] with round-off eigenvalues (below rank
    tolerance) set to 0."""
    w, v = torch.linalg.eigh((m + m.mT) / 2)
    tol = w.abs().amax(dim=-1, keepdim=True).clamp(min=torch.finfo(w.dtype).tiny) * m.shape[-1] * torch.finfo(w.dtype).eps
    return torch.where(w > tol, w, torch.zeros_like(w)), v


def frechet_from_fits(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> Tensor:
    """The Fréchet distance of Gaussian fits, batched over leading dimensions ([..., D] means, [..., D, D]
    covariances); see `frechet_distance`."""
    w_a, v_a = _psd_eigvals(cov_a)
    sqrt_a = (v_a * w_a.sqrt().unsqueeze(-2)) @ v_a.mT
    w_mid, _ = _psd_eigvals(sqrt_a @ cov_b @ sqrt_a)
    trace = cov_a.diagonal(dim1=-2, dim2=-1).sum(-1) + cov_b.diagonal(dim1=-2, dim2=-1).sum(-1)
    return ((mean_a - mean_b).square().sum(-1) + trace - 2 * w_mid.sqrt().sum(-1)).clamp(min=0.0)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the normalised rows of ``a`` and ``b``.

    FD = ||mu_a - mu_b||² + tr(S_a) + tr(S_b) - 2 tr((S_a^½ S_b S_a^½)^½). The trace term is taken from the
    eigenvalues of the symmetric PSD product S_a^½ S_b S_a^½ in float64, with round-off eigenvalues cut to 0,
    so singular covariances (fewer rows than dimensions) stay exact and FD(x, x) = 0. Negative round-off
    of the total is clipped to 0.
    """
    _check_embeddings(a, "a", min_rows=2)
    _check_embeddings(b, "b", min_rows=2)
    _check_same_dim(a, b, "a and b")
    return float(frechet_from_fits(*_gaussian_fit(a), *_gaussian_fit(b.to(a.device))))


def linear_probe_accuracy(
    a: Tensor,
    b: Tensor,
    generator: torch.Generator | None = None,
    *,
    test_fraction: float = 0.3,
    steps: int = 300,
    lr: float = 0.05,
    weight_decay: float = 1e-3,
) -> float:
    """Held-out accuracy of a logistic regression telling normalised rows of ``a`` from those of ``b``.

    ~1.0 means the sets are linearly separable (a modality gap remains); ~0.5 means a linear model cannot
    tell them apart. The larger set is subsampled to the size of the smaller so that chance is exactly 0.5;
    each class holds out ``test_fraction`` of its rows. Features are standardised with train statistics and
    the model is fitted full-batch with Adam for ``steps`` steps from zero weights (L2 ``weight_decay`` keeps
    separable data from diverging), so the result depends only on ``generator``.
    """
    _check_embeddings(a, "a", min_rows=2)
    _check_embeddings(b, "b", min_rows=2)
    _check_same_dim(a, b, "a and b")
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction = {test_fraction} must lie strictly between 0 and 1.")
    n = min(a.shape[0], b.shape[0])
    n_test = round(n * test_fraction)
    if not 1 <= n_test < n:
        raise InputError(
            f"with {n} rows per class and test_fraction = {test_fraction}, {n_test} rows would be held out; "
            "pass more rows or a test_fraction that leaves at least one row on each side."
        )
    device = a.device
    rng_device = generator.device if generator is not None else torch.device("cpu")
    order_a = torch.randperm(a.shape[0], generator=generator, device=rng_device)[:n].to(device)
    order_b = torch.randperm(b.shape[0], generator=generator, device=rng_device)[:n].to(device)
    xa, xb = normalize(a)[order_a].float(), normalize(b.to(device))[order_b].float()
    x_train = torch.cat([xa[n_test:], xb[n_test:]])
    x_test = torch.cat([xa[:n_test], xb[:n_test]])
    y_train = torch.cat([torch.zeros(n - n_test), torch.ones(n - n_test)]).to(device)
    y_test = torch.cat([torch.zeros(n_test), torch.ones(n_test)]).to(device)

    shift, scale = x_train.mean(dim=0), x_train.std(dim=0).clamp(min=1e-6)
    x_train, x_test = (x_train - shift) / scale, (x_test - shift) / scale
    weight = torch.zeros(x_train.shape[1], device=device, requires_grad=True)
    bias = torch.zeros((), device=device, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            logits = x_train @ weight + bias
            loss = F.binary_cross_entropy_with_logits(logits, y_train) + weight_decay * weight.square().sum()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        predicted = (x_test @ weight + bias > 0).float()
        return float((predicted == y_test).double().mean())


# ---------------------------------------------------------------------------------------------------------
# everything at once


def alignment_metrics(
    rep: Tensor,
    text: Tensor,
    text_image_index: Tensor,
    text_mean: Tensor,
    generator: torch.Generator | None = None,
    ks: Sequence[int] = (1, 5, 10),
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    n_random_pairs: int | None = None,
    ties: Ties = "pessimistic",
) -> dict[str, float]:
    """All alignment metrics of one image-side representation against the caption embeddings, as floats.

    ``rep`` is [N_images, D] (row i = image i: raw, mean-shifted, noise-injected or bridged embedding),
    ``text`` is [N_captions, D] with caption j belonging to image ``text_image_index[j]``; both must live in
    the same space as ``text_mean`` (the train-split mean of normalised text embeddings). For the
    "another caption" ceiling pass one caption per image as ``rep`` and the *remaining* captions as
    ``text``, so that no caption is compared with itself. ``generator`` drives the probe's split (and the
    random pairs when ``n_random_pairs`` is set; by default their mean is exact).

    Keys: ``centroid_distance``; ``paired_cosine`` / ``random_cosine`` (mean over captions of the cosine to
    their own image / over unmatched image-caption pairs) and the same with suffix ``_centred`` (both sides
    centred with ``text_mean``, the paper's §5 measure); ``i2t_R@k`` and ``t2i_R@k``; ``frechet_distance``;
    ``probe_accuracy`` (rep vs text).
    """
    _check_embeddings(rep, "rep", min_rows=2)
    _check_embeddings(text, "text", min_rows=2)
    _check_same_dim(rep, text, "rep and text")
    if text_mean.shape != rep.shape[-1:]:
        raise InputError(
            f"text_mean has shape {tuple(text_mean.shape)} but embeddings are {rep.shape[-1]}-d; pass the [D] "
            "mean of the normalised train-split text embeddings."
        )
    _check_index(text_image_index, "text_image_index", text.shape[0], rep.shape[0], "rep")
    index = text_image_index.to(rep.device).long()
    text = text.to(rep.device)
    text_mean = text_mean.to(rep.device)
    rep_c, text_c = centre(rep, text_mean), centre(text, text_mean)

    metrics = {
        "centroid_distance": centroid_distance(rep, text),
        "paired_cosine": mean_paired_cosine(rep[index], text),
        "random_cosine": random_pair_cosine(rep, text, generator, n_random_pairs, b_to_a=index),
        "paired_cosine_centred": mean_paired_cosine(rep_c[index], text_c),
        "random_cosine_centred": random_pair_cosine(rep_c, text_c, generator, n_random_pairs, b_to_a=index),
    }
    i2t = image_to_text_recall(rep, text, index, ks, chunk_size=chunk_size, ties=ties)
    t2i = text_to_image_recall(text, rep, index, ks, chunk_size=chunk_size, ties=ties)
    metrics |= {f"i2t_{name}": value for name, value in i2t.items()}
    metrics |= {f"t2i_{name}": value for name, value in t2i.items()}
    metrics["frechet_distance"] = frechet_distance(rep, text)
    metrics["probe_accuracy"] = linear_probe_accuracy(rep, text, generator)
    return metrics
