"""A shared 2-D PCA of several embedding sets, for scatter plots of the modality gap.

The paper's Figure 1 style plot shows text, image and bridged embeddings in one plane; fitting the PCA on the
union of the sets puts them all in the same coordinates, so the gap and its closing are visible.
"""

import torch
from torch import Tensor

from diffusion_bridge.errors import InputError
from diffusion_bridge.metrics.alignment import normalize


def _principal_axes(x: Tensor, n_components: int) -> tuple[Tensor, Tensor]:
    """Mean and the top ``n_components`` principal axes ([n_components, D]) of the rows of ``x``, in float64.

    Axes come from the eigen-decomposition of the D x D scatter matrix (cheap for CLIP's 512-d, no N x N
    work), and each axis is signed so that its largest-magnitude loading is positive: the sign no longer
    depends on the eigen-solver, the device or the order of the rows.
    """
    mean = x.mean(dim=0)
    centred = x - mean
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    axes = vectors[:, -n_components:].flip(dims=(1,)).T  # eigh sorts ascending; largest variance first
    pivot = axes.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(axes.gather(1, pivot))
    return mean, axes * torch.where(signs == 0, torch.ones_like(signs), signs)


def pca_2d(*sets: Tensor, normalise: bool = True) -> list[Tensor]:
    """Each set projected onto the first two principal axes of their union, as [N_i, 2] float tensors.

    Rows are L2-normalised first (``normalise=True``) because CLIP embeddings are compared by cosine.
    The result has the dtype of the first set; the fit runs in float64 on its device.
    """
    if not sets:
        raise InputError("pca_2d needs at least one [N, D] set of embeddings to project.")
    for position, x in enumerate(sets):
        if not isinstance(x, Tensor) or x.ndim != 2 or not torch.is_floating_point(x):
            raise InputError(
                f"set {position} must be a 2-D float [rows, dim] tensor, got "
                f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}; stack its embeddings row-wise."
            )
        if x.shape[-1] != sets[0].shape[-1]:
            raise InputError(
                f"set {position} is {x.shape[-1]}-d but set 0 is {sets[0].shape[-1]}-d; "
                "project embeddings from one CLIP model together."
            )
    if sets[0].shape[-1] < 2:
        raise InputError(
            f"embeddings are {sets[0].shape[-1]}-d; a 2-D projection needs at least 2 dims."
        )
    device, dtype = sets[0].device, sets[0].dtype
    prepared = [(normalize(x) if normalise else x).to(device=device, dtype=torch.float64) for x in sets]
    union = torch.cat(prepared)
    if union.shape[0] < 2:
        raise InputError(f"the sets hold {union.shape[0]} rows in all; a PCA needs at least 2.")
    mean, axes = _principal_axes(union, n_components=2)
    return [((x - mean) @ axes.T).to(dtype) for x in prepared]
