"""Input checks shared by the stages: NaN/inf never travel silently from one artifact to the next."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from diffusion_bridge.errors import NonFiniteError


def require_finite(x: torch.Tensor, what: str, ids: Sequence[int] | torch.Tensor | None = None, fix: str = "") -> None:
    """Raise `NonFiniteError` naming the first offending rows (by id when given) if `x` is not all finite."""
    finite = torch.isfinite(x)
    if bool(finite.all()):
        return
    bad = (~finite.reshape(len(x), -1).all(dim=1)).nonzero().squeeze(1)
    shown = [int(ids[i]) for i in bad[:10]] if ids is not None else bad[:10].tolist()
    label = "ids" if ids is not None else "rows"
    raise NonFiniteError(
        f"{what}: {len(bad)} row(s) hold NaN or infinity ({label} {shown}{' ...' if len(bad) > 10 else ''}). "
        f"Fix: {fix or 'recompute them from their source (e.g. rerun the stage that wrote them)'}."
    )
