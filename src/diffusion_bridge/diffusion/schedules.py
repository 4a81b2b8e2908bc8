"""Noise schedules: beta sequences (computed in float64, as lucidrains does) and the buffers derived from them."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from diffusion_bridge.errors import ConfigError


def linear_beta_schedule(timesteps: int) -> Tensor:
    """Ho et al.'s linear betas, rescaled so that any T spans the same total noise as T=1000."""
    scale = 1000 / timesteps
    return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)


def cosine_beta_schedule(timesteps: int, s: float = 0.008) -> Tensor:
    """Nichol & Dhariwal's cosine schedule; s=0.008 and the 0.999 cap are the paper's (and the reference's)."""
    steps = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    alphas_cumprod = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return betas.clip(0, 0.999)


def sigmoid_beta_schedule(timesteps: int, start: float = -3, end: float = 3, tau: float = 1) -> Tensor:
    """Jabri et al.'s sigmoid schedule (arXiv 2212.11972), as in lucidrains; all in float64."""
    steps = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    v_start = torch.tensor(start / tau, dtype=torch.float64).sigmoid()
    v_end = torch.tensor(end / tau, dtype=torch.float64).sigmoid()
    alphas_cumprod = (v_end - ((steps * (end - start) + start) / tau).sigmoid()) / (v_end - v_start)
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return betas.clip(0, 0.999)


BETA_SCHEDULES = {
    "linear": linear_beta_schedule,
    "cosine": cosine_beta_schedule,
    "sigmoid": sigmoid_beta_schedule,
}




def gather(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """values[t] shaped [B, 1, ...] so it broadcasts against `like` ([B, ...])."""
    out = values.gather(0, t.to(values.device, torch.long))
    return out.reshape(t.shape[0], *([1] * (like.ndim - 1)))


class NoiseSchedule(nn.Module):
    """A discrete-time DDPM schedule: float32 buffers derived in float64, under the reference's names.

    Buffers are non-persistent: a schedule is rebuilt from its name and T, never loaded from weights.
    """

    def __init__(self, betas: Tensor, name: str = "custom", kwargs: dict | None = None):
        super().__init__()
        betas = betas.to(torch.float64)
        self.name = name
        self.kwargs = dict(kwargs or {})
        self.num_timesteps = int(betas.shape[0])

        alphas = 1 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
        posterior_variance = betas * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod)

        derived = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1 - alphas_cumprod).sqrt(),
            "log_one_minus_alphas_cumprod": (1 - alphas_cumprod).log(),
            "sqrt_recip_alphas_cumprod": (1 / alphas_cumprod).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1 / alphas_cumprod - 1).sqrt(),
            "posterior_variance": posterior_variance,
            # the variance is 0 at t=0, so its log is clipped (as lucidrains/the reference)
            "posterior_log_variance_clipped": posterior_variance.clamp(min=1e-20).log(),
            "posterior_mean_coef1": betas * alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod),
            "posterior_mean_coef2": (1 - alphas_cumprod_prev) * alphas.sqrt() / (1 - alphas_cumprod),
            # signal-to-noise ratio; equals the reference's `loss_weight` buffer for pred_x0
            "snr_values": alphas_cumprod / (1 - alphas_cumprod),
        }
        for key, value in derived.items():
            self.register_buffer(key, value.to(torch.float32), persistent=False)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(ᾱ_t) x0 + sqrt(1-ᾱ_t) ε (forward process, any batch shape [B, ...])."""
        return (
            gather(self.sqrt_alphas_cumprod, t, x0) * x0
            + gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        )

    def snr(self, t: Tensor) -> Tensor:
        """ᾱ_t / (1-ᾱ_t) per element of t (shape [B])."""
        return self.snr_values.gather(0, t.to(self.snr_values.device, torch.long))

    def alpha_bar(self, t: int) -> Tensor:
        """ᾱ_t as a 0-d float32 tensor; ᾱ_{-1} = 1 (the clean end of a sampling trajectory)."""
        if t < 0:
            return self.alphas_cumprod.new_ones(())
        return self.alphas_cumprod[t]

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_timesteps={self.num_timesteps}"


def make_schedule(name: str = "cosine", timesteps: int = 1000, **kwargs) -> NoiseSchedule:
    """Build a NoiseSchedule by name: T=1000 and cosine are the reference's (DDPM on CLIP text embeddings)."""
    if name not in BETA_SCHEDULES:
        raise ConfigError(
            f"unknown noise schedule {name!r}; choose one of {sorted(BETA_SCHEDULES)}"
        )
    return NoiseSchedule(BETA_SCHEDULES[name](timesteps, **kwargs), name=name, kwargs=kwargs)
