"""Reverse-process samplers over explicit integer timesteps, from any t with a given x_t.

Every sampler is `sampler(predict, schedule, x_t, timesteps, ...)`: `predict(x_t, t) -> Prediction(x0, eps)`
is the network behind one callable (`DiffusionModel.predict`, or any closed form), `schedule` the
NoiseSchedule it was trained with. Whatever the network does to its input (the reference re-projects x_t
to the sphere) stays inside `predict`; a sampler sees only (x0_hat, eps_hat) and the ᾱ's.

Why a callable rather than diffusers' `step(model_output, t, x_t)`: here a sampler is a whole trajectory,
and a trajectory reads best as one loop — DPM-Solver++(2M) keeps its history in two local variables
instead of scheduler state that a caller must step in the right order, and the bridge calls one function.
The separation diffusers is admired for holds all the same: no sampler imports or reaches into a network.

Every function works on whole batches [B, D]; a trajectory is a descending list of times ending at -1
(ᾱ_{-1} = 1), where the result is the model's x0_hat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from diffusion_bridge.errors import ConfigError

from .model import Prediction, draw_noise
from .schedules import NoiseSchedule

Predict = Callable[[Tensor, Tensor], Prediction]


def reference_timesteps(t0: int, steps: int) -> list[int]:
    """The reference's DDIM times from insertion step t0 with S steps: reversed(int(linspace(-1, t0-1, S+1))).

    The float32 linspace and `.int()` truncation are kept, so e.g. (600, 5) → [599, 479, 359, 239, 119, -1].
    """
    times = torch.linspace(-1, t0 - 1, steps=steps + 1)
    return list(reversed(times.int().tolist()))


def _pairs(timesteps: Sequence[int], num_timesteps: int) -> list[tuple[int, int]]:
    times = [int(t) for t in timesteps]
    if len(times) < 2:
        raise ConfigError(f"a trajectory needs at least a start and an end time; got {times}")
    if times[0] >= num_timesteps or times[-1] < -1:
        raise ConfigError(
            f"timesteps must lie in [-1, {num_timesteps - 1}] (T={num_timesteps}); got {times}"
        )
    if any(a <= b for a, b in zip(times[:-1], times[1:], strict=True)):
        raise ConfigError(f"timesteps must be strictly descending; got {times}")
    if -1 in times[:-1]:
        raise ConfigError(f"-1 (the clean end) can only be the last time; got {times}")
    return list(zip(times[:-1], times[1:], strict=True))


def _at(predict: Predict, x: Tensor, t: int) -> Prediction:
    return predict(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))


@torch.inference_mode()
def ddim_sample(
    predict: Predict,
    schedule: NoiseSchedule,
    x_t: Tensor,
    timesteps: Sequence[int],
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DDIM (Song et al.) from x_t at timesteps[0]; eta=0 is the reference bridge (deterministic, no clamping).

    x ← sqrt(ᾱ_s) x0_hat + sqrt(1 - ᾱ_s - σ²) eps_hat + σ z,  σ = eta·sqrt((1-ᾱ_t/ᾱ_s)(1-ᾱ_s)/(1-ᾱ_t)).
    """
    x = x_t
    for t, s in _pairs(timesteps, schedule.num_timesteps):
        pred = _at(predict, x, t)
        if s < 0:
            x = pred.x0
            continue
        a_t, a_s = schedule.alpha_bar(t), schedule.alpha_bar(s)
        if eta == 0:
            x = pred.x0 * a_s.sqrt() + (1 - a_s).sqrt() * pred.eps  # the reference's exact float32 update
            continue
        sigma = eta * ((1 - a_t / a_s) * (1 - a_s) / (1 - a_t)).sqrt()
        c = (1 - a_s - sigma**2).sqrt()
        x = pred.x0 * a_s.sqrt() + c * pred.eps + sigma * draw_noise(tuple(x.shape), generator, x.device)
    return x


@torch.inference_mode()
def ddpm_sample(
    predict: Predict,
    schedule: NoiseSchedule,
    x_t: Tensor,
    timesteps: Sequence[int],
    generator: torch.Generator | None = None,
) -> Tensor:
    """Ancestral sampling from the DDPM posterior q(x_s | x_t, x0_hat), for any s < t (not only t-1).

    With ᾱ_{t|s} = ᾱ_t/ᾱ_s: mean = sqrt(ᾱ_s)(1-ᾱ_{t|s})/(1-ᾱ_t) x0 + sqrt(ᾱ_{t|s})(1-ᾱ_s)/(1-ᾱ_t) x_t,
    variance = (1-ᾱ_{t|s})(1-ᾱ_s)/(1-ᾱ_t); for s = t-1 these are Ho et al.'s posterior buffers.
    x_t in the mean is the point the predictions belong to, sqrt(ᾱ_t) x0_hat + sqrt(1-ᾱ_t) eps_hat: with the
    reference's re-projection that is the network's input (on the sphere), not the x handed in.
    """
    x = x_t
    for t, s in _pairs(timesteps, schedule.num_timesteps):
        pred = _at(predict, x, t)
        if s < 0:
            x = pred.x0
            continue
        a_t, a_s = schedule.alpha_bar(t), schedule.alpha_bar(s)
        a_ts = a_t / a_s
        x_seen = a_t.sqrt() * pred.x0 + (1 - a_t).sqrt() * pred.eps
        mean = (a_s.sqrt() * (1 - a_ts) / (1 - a_t)) * pred.x0 + (a_ts.sqrt() * (1 - a_s) / (1 - a_t)) * x_seen
        std = ((1 - a_ts) * (1 - a_s) / (1 - a_t)).sqrt()
        x = mean + std * draw_noise(tuple(x.shape), generator, x.device)
    return x


@torch.inference_mode()
def dpm_solver_pp_2m(predict: Predict, schedule: NoiseSchedule, x_t: Tensor, timesteps: Sequence[int]) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022), the multistep 2nd-order data-prediction ODE solver.

    In λ = log(α/σ), step t→s with h = λ_s - λ_t:  x_s = (σ_s/σ_t) x_t - α_s (e^{-h} - 1) D,
    D = x0_hat (first step) or (1 + 1/2r) x0_hat - (1/2r) x0_prev with r = h_prev/h.
    Written through eps_hat (x_t = α_t x0_hat + σ_t eps_hat on the network's input) as
    x_s = α_s x0_hat + σ_s eps_hat + α_s (1 - e^{-h}) (D - x0_hat): the first step is exactly DDIM.
    The final step to -1 (σ = 0, h = ∞) is first order, returning x0_hat.
    """
    x = x_t
    prev_x0: Tensor | None = None
    prev_h: Tensor | None = None
    for t, s in _pairs(timesteps, schedule.num_timesteps):
        pred = _at(predict, x, t)
        if s < 0:
            x = pred.x0
            continue
        a_t, a_s = schedule.alpha_bar(t).double(), schedule.alpha_bar(s).double()
        h = 0.5 * (torch.log(a_s / (1 - a_s)) - torch.log(a_t / (1 - a_t)))  # λ = ½ log SNR
        x = a_s.sqrt().float() * pred.x0 + (1 - a_s).sqrt().float() * pred.eps
        if prev_x0 is not None:
            r = prev_h / h
            correction = (pred.x0 - prev_x0) / (2 * r.float())
            x = x + (a_s.sqrt() * -torch.expm1(-h)).float() * correction
        prev_x0, prev_h = pred.x0, h
    return x
