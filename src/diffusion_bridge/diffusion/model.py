"""DiffusionModel: a denoiser plus its noise schedule, objective, loss weighting and sphere radius."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from diffusion_bridge.serialization import jsonable
from diffusion_bridge.space import default_radius, project_to_radius

from .denoisers import build_denoiser
from .objectives import check_objective, to_x0_eps, training_target
from .schedules import make_schedule
from .weighting import check_weighting, loss_weight


class Prediction(NamedTuple):
    """The model's estimates of the clean vector and of the noise at (x_t, t)."""

    x0: Tensor
    eps: Tensor


def draw_noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal noise from `generator` (drawn on the generator's device, then moved)."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def draw_timesteps(n: int, num_timesteps: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """n training times uniform in [0, T), as the reference (`torch.randint(0, T, (b,))`)."""
    if generator is None:
        return torch.randint(0, num_timesteps, (n,), device=device)
    return torch.randint(0, num_timesteps, (n,), generator=generator, device=generator.device).to(device)


class DiffusionModel(nn.Module):
    """A DDPM over [B, dim] vectors on the sphere of radius `radius`.

    Defaults are the reference's (ddpm/train_norm.py): cosine schedule, T=1000, pred_x0 with SNR
    weights, radius 5 at dim 512, and `rescale` on — the noised input is re-projected onto the
    sphere before every network call, in training and in sampling. The denoiser default is the
    fast MLP; use denoiser="unet1d" for the reference network.
    """

    def __init__(
        self,
        dim: int = 512,
        denoiser: str = "mlp",
        denoiser_kwargs: dict[str, Any] | None = None,
        schedule: str = "cosine",
        timesteps: int = 1000,
        schedule_kwargs: dict[str, Any] | None = None,
        objective: str = "pred_x0",
        weighting: str = "snr",
        min_snr_gamma: float = 5.0,
        radius: float | None = None,
        rescale: bool = True,
    ):
        super().__init__()
        self.dim = dim
        self.denoiser_name = denoiser
        self.denoiser_kwargs = dict(denoiser_kwargs or {})
        self.objective = check_objective(objective)
        self.weighting = check_weighting(weighting)
        self.min_snr_gamma = float(min_snr_gamma)
        self.radius = float(radius) if radius is not None else default_radius(dim)
        self.rescale = bool(rescale)
        self.denoiser = build_denoiser(denoiser, dim, **self.denoiser_kwargs)
        self.schedule = make_schedule(schedule, timesteps, **(schedule_kwargs or {}))

    @property
    def num_timesteps(self) -> int:
        return self.schedule.num_timesteps

    @property
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model (JSON-serialisable; tuples become lists)."""
        return {
            "dim": self.dim,
            "denoiser": self.denoiser_name,
            "denoiser_kwargs": jsonable(self.denoiser_kwargs),
            "schedule": self.schedule.name,
            "schedule_kwargs": jsonable(self.schedule.kwargs),
            "timesteps": self.num_timesteps,
            "objective": self.objective,
            "weighting": self.weighting,
            "min_snr_gamma": self.min_snr_gamma,
            "radius": self.radius,
            "rescale": self.rescale,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> DiffusionModel:
        """Rebuild a (freshly initialised) model from `config`."""
        return cls(**cfg)

    def network_input(self, x_t: Tensor) -> Tensor:
        """What the network sees: x_t re-projected to norm `radius` when `rescale` is on (the reference's quirk)."""
        return project_to_radius(x_t, self.radius) if self.rescale else x_t

    def predict(self, x_t: Tensor, t: Tensor) -> Prediction:
        """(x0_hat, eps_hat) at (x_t, t), both derived from the re-projected x_t as in the reference's sampler
        (its `model_predictions`); the one callable every sampler takes."""
        x = self.network_input(x_t)
        out = self.denoiser(x, t).float()
        return Prediction(*to_x0_eps(self.objective, self.schedule, x, t, out))

    def loss(
        self,
        x0: Tensor,
        t: Tensor | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The weighted training loss: mean over the batch of w(t)·mean_d (output - target)².

        Noising as the reference's p_losses: x_t = q_sample(x0, t, ε), re-projected to the sphere
        before the network; the target (ε, x0 or v) is built from the un-projected x0 and ε.
        """
        if t is None:
            t = draw_timesteps(x0.shape[0], self.num_timesteps, generator, x0.device)
        if noise is None:
            noise = draw_noise(tuple(x0.shape), generator, x0.device)
        x_t = self.schedule.q_sample(x0, t, noise)
        out = self.denoiser(self.network_input(x_t), t).float()
        target = training_target(self.objective, self.schedule, x0, t, noise)
        per_sample = (out - target).pow(2).mean(dim=-1)
        weights = loss_weight(self.weighting, self.objective, self.schedule.snr(t), self.min_snr_gamma)
        return (per_sample * weights).mean()

    def forward(self, x0: Tensor, t: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        """The training loss (so DDP's forward hook sees the whole training computation)."""
        return self.loss(x0, t, noise)

