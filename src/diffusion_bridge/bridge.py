"""Bridging: a DDPM trained on text embeddings only carries image embeddings into the text distribution.

The whole method (REFERENCE.md §4), batched over every embedding at once:
  v = r · normalize(normalize(i) − image_mean)        the image, on the text model's sphere
  x_{t0−1} = v   (used as is: no noise is added)       "insert the image at step t0"
  DDIM (eta 0) on reversed(int(linspace(−1, t0−1, S+1))), re-projecting x to norm r before each call
  bridged = normalize(x0_hat)                          a text-like vision embedding
Text augmentation for the caption decoder is the same with text_mean, after noising x0 to t0 first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from diffusion_bridge.checks import require_finite
from diffusion_bridge.diffusion.model import DiffusionModel, draw_noise
from diffusion_bridge.diffusion.samplers import (
    ddim_sample,
    ddpm_sample,
    dpm_solver_pp_2m,
    reference_timesteps,
)
from diffusion_bridge.errors import ConfigError
from diffusion_bridge.space import to_diffusion_space

SAMPLERS: dict[str, Callable[..., Tensor]] = {
    "ddim": ddim_sample,              # the reference (eta 0)
    "ddpm": ddpm_sample,              # ancestral: stochastic
    "dpm_solver_pp": dpm_solver_pp_2m,  # 2nd-order multistep ODE solver
}


def check_bridge_settings(
    t0: int, steps: int, num_timesteps: int, sampler: str = "ddim", eta: float = 0.0, batch_size: int = 1
) -> None:
    """Refuse settings that would make the reference's trajectory degenerate, naming the fix."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r}: bridge at least one row per network call (an integer >= 1)")
    if not 0 <= t0 <= num_timesteps:
        raise ConfigError(f"insertion step t0={t0} must lie in [0, {num_timesteps}] (the model's T); set bridge.t0 accordingly")
    if t0 > 0 and not 1 <= steps <= t0:
        raise ConfigError(
            f"steps={steps} with t0={t0}: need 1 <= steps <= t0 so that the {steps + 1} DDIM times are distinct; "
            "lower bridge.steps or raise bridge.t0"
        )
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; use one of {sorted(SAMPLERS)}")
    if eta < 0 or (eta > 0 and sampler != "ddim"):
        raise ConfigError(f"eta={eta}: eta is the DDIM noise level (>= 0) and only applies to sampler 'ddim'")


def bridge_embeddings(
    model: DiffusionModel,
    embeddings: Tensor,
    mean: Tensor,
    t0: int = 600,
    steps: int = 5,
    *,
    sampler: str = "ddim",
    eta: float = 0.0,
    add_noise: bool = False,
    generator: torch.Generator | None = None,
    batch_size: int = 16384,
    device: torch.device | str | None = None,
) -> Tensor:
    """Unit-norm bridged embeddings [N, D] (float32, on the CPU), in input order.

    `mean` is the modality mean of the input (image_mean for images, text_mean for text augmentation).
    t0 = 0 means no diffusion at all: the result is the mean-shifted input, normalize(normalize(e) − mean).
    `add_noise` first noises v to level t0 (SDEdit; the reference's text augmentation), eta > 0 makes
    DDIM stochastic. `batch_size` rows go through the network at once (the memory budget).
    """
    check_bridge_settings(t0, steps, model.num_timesteps, sampler, eta, batch_size)
    require_finite(embeddings, "embeddings to bridge", fix="recompute them (rerun `prepare`)")
    require_finite(mean, "modality mean", fix="rerun `prepare` to recompute modality_means")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    times = reference_timesteps(t0, steps) if t0 > 0 else []
    kwargs: dict[str, Any] = {"ddim": {"eta": eta, "generator": generator}, "ddpm": {"generator": generator}}.get(sampler, {})
    out = []
    with torch.inference_mode():
        for chunk in embeddings.split(batch_size):
            x = to_diffusion_space(chunk.to(device), mean.to(device), model.radius)
            if times:
                if add_noise:
                    # The reference noises to t0 and then starts denoising at t0−1 (its linspace ends at t0−1).
                    t = torch.full((x.shape[0],), t0, device=device, dtype=torch.long).clamp(max=model.num_timesteps - 1)
                    x = model.schedule.q_sample(x, t, draw_noise(tuple(x.shape), generator, device))
                x = SAMPLERS[sampler](model.predict, model.schedule, x, times, **kwargs)
            out.append(F.normalize(x.float(), dim=-1).cpu())
    return torch.cat(out) if out else embeddings.new_zeros((0, embeddings.shape[-1]))


def bridge_sweep(model: DiffusionModel, embeddings: Tensor, mean: Tensor, t0s: Iterable[int], steps: int = 5,
                 *, seed: int = 0, device: torch.device | str | None = None, **kwargs: Any) -> dict[int, Tensor]:
    """The embeddings bridged at each insertion step of `t0s` (the paper's Table 4), each t0 once.

    Steps are capped at t0 so that small t0 keep distinct DDIM times (t0 = 0 is the mean shift alone);
    every t0 draws from its own generator seeded with `seed`, so each result equals a lone `bridge_embeddings`.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    return {
        t0: bridge_embeddings(model, embeddings, mean, t0, min(steps, max(t0, 1)),
                              generator=torch.Generator(device=device).manual_seed(seed), device=device, **kwargs)
        for t0 in sorted({int(t) for t in t0s})
    }
