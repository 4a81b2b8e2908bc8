"""What the network predicts (ε, x0 or v) and exact conversions among them.

Each conversion uses the same float32 schedule buffers and operation order as the reference
(lucidrains' GaussianDiffusion1D), so a reference checkpoint reproduces its predictions bit for bit.
"""

from __future__ import annotations

from torch import Tensor

from diffusion_bridge.errors import ConfigError

from .schedules import NoiseSchedule, gather

OBJECTIVES = ("pred_noise", "pred_x0", "pred_v")




def check_objective(objective: str) -> str:
    """Return `objective` if known, else raise ConfigError."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}; choose one of {list(OBJECTIVES)}")
    return objective


def x0_from_eps(schedule: NoiseSchedule, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """x0 = sqrt(1/ᾱ) x_t - sqrt(1/ᾱ - 1) ε."""
    return gather(schedule.sqrt_recip_alphas_cumprod, t, x_t) * x_t - (
        gather(schedule.sqrt_recipm1_alphas_cumprod, t, x_t) * eps
    )


def eps_from_x0(schedule: NoiseSchedule, x_t: Tensor, t: Tensor, x0: Tensor) -> Tensor:
    """ε = (sqrt(1/ᾱ) x_t - x0) / sqrt(1/ᾱ - 1)."""
    return (gather(schedule.sqrt_recip_alphas_cumprod, t, x_t) * x_t - x0) / gather(
        schedule.sqrt_recipm1_alphas_cumprod, t, x_t
    )


def v_from_x0_eps(schedule: NoiseSchedule, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """v = sqrt(ᾱ) ε - sqrt(1-ᾱ) x0 (Salimans & Ho, progressive distillation, App. D)."""
    return gather(schedule.sqrt_alphas_cumprod, t, x0) * eps - (
        gather(schedule.sqrt_one_minus_alphas_cumprod, t, x0) * x0
    )


def x0_from_v(schedule: NoiseSchedule, x_t: Tensor, t: Tensor, v: Tensor) -> Tensor:
    """x0 = sqrt(ᾱ) x_t - sqrt(1-ᾱ) v."""
    return gather(schedule.sqrt_alphas_cumprod, t, x_t) * x_t - (
        gather(schedule.sqrt_one_minus_alphas_cumprod, t, x_t) * v
    )


def training_target(objective: str, schedule: NoiseSchedule, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """The regression target for `objective`, built from the clean x0 and the drawn noise (as the reference)."""
    check_objective(objective)
    if objective == "pred_noise":
        return noise
    if objective == "pred_x0":
        return x0
    return v_from_x0_eps(schedule, x0, t, noise)


def to_x0_eps(objective: str, schedule: NoiseSchedule, x_t: Tensor, t: Tensor, output: Tensor) -> tuple[Tensor, Tensor]:
    """(x0_hat, eps_hat) from the network output at (x_t, t), without clamping (the reference never clamps)."""
    check_objective(objective)
    if objective == "pred_noise":
        return x0_from_eps(schedule, x_t, t, output), output
    x0 = output if objective == "pred_x0" else x0_from_v(schedule, x_t, t, output)
    return x0, eps_from_x0(schedule, x_t, t, x0)
