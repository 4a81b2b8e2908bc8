"""Noise schedules against independent float64 formulas and against diffusers' DDPMScheduler."""

import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from diffusion_bridge.diffusion.schedules import (
    cosine_beta_schedule,
    linear_beta_schedule,
    make_schedule,
    sigmoid_beta_schedule,
)
from diffusion_bridge.errors import ConfigError


def cosine_alpha_bar(t: np.ndarray, T: int, s: float = 0.008) -> np.ndarray:
    return np.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2


def test_cosine_betas_match_the_closed_form_in_float64():
    T = 1000
    t = np.arange(T + 1, dtype=np.float64)
    expected = np.clip(1 - cosine_alpha_bar(t[1:], T) / cosine_alpha_bar(t[:-1], T), 0, 0.999)
    betas = cosine_beta_schedule(T)
    assert betas.dtype == torch.float64
    np.testing.assert_allclose(betas.numpy(), expected, rtol=1e-12, atol=1e-15)
    assert betas[-1].item() == pytest.approx(0.999)  # the cap is reached at the end


@pytest.mark.parametrize(
    ("ours", "diffusers_name"),
    [("cosine", "squaredcos_cap_v2"), ("linear", "linear")],
)
def test_schedule_buffers_match_diffusers(ours, diffusers_name):
    reference = DDPMScheduler(num_train_timesteps=1000, beta_schedule=diffusers_name)
    schedule = make_schedule(ours, 1000)
    # diffusers builds its betas in float32, so agreement is to float32 rounding
    torch.testing.assert_close(schedule.betas, reference.betas.float(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(schedule.alphas_cumprod, reference.alphas_cumprod.float(), rtol=1e-4, atol=1e-7)


def test_linear_schedule_rescales_with_T():
    np.testing.assert_allclose(linear_beta_schedule(1000).numpy(), np.linspace(1e-4, 0.02, 1000), rtol=1e-12)
    short = linear_beta_schedule(250).numpy()
    assert short[0] == pytest.approx(4e-4) and short[-1] == pytest.approx(0.08)


def test_sigmoid_schedule_matches_its_definition():
    T, start, end, tau = 100, -3.0, 3.0, 1.0
    t = np.linspace(0, 1, T + 1)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    abar = (sig(end / tau) - sig((t * (end - start) + start) / tau)) / (sig(end / tau) - sig(start / tau))
    expected = np.clip(1 - abar[1:] / abar[:-1], 0, 0.999)
    np.testing.assert_allclose(sigmoid_beta_schedule(T).numpy(), expected, rtol=1e-10, atol=1e-14)


def test_derived_buffers_against_float64_numpy():
    schedule = make_schedule("cosine", 1000)
    betas = cosine_beta_schedule(1000).numpy()
    abar = np.cumprod(1 - betas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    expected = {
        "alphas_cumprod": abar,
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1 / abar - 1),
        "posterior_variance": betas * (1 - abar_prev) / (1 - abar),
        "posterior_mean_coef2": (1 - abar_prev) * np.sqrt(1 - betas) / (1 - abar),
        "snr_values": abar / (1 - abar),
    }
    for name, value in expected.items():
        buffer = getattr(schedule, name)
        assert buffer.dtype == torch.float32
        # float64 → float32 cast: exactly the rounded float64 value
        np.testing.assert_array_equal(buffer.numpy(), value.astype(np.float32), err_msg=name)
    t = torch.tensor([0, 10, 600, 999])
    np.testing.assert_array_equal(schedule.snr(t).numpy(), (abar / (1 - abar)).astype(np.float32)[t.numpy()])


def test_q_sample_has_the_forward_process_moments():
    schedule = make_schedule("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 16, generator=g).expand(20000, 16)
    t = torch.full((20000,), 400)
    noise = torch.randn(20000, 16, generator=g)
    x_t = schedule.q_sample(x0, t, noise)
    abar = float(cosine_alpha_bar(np.array(400.0), 1000) / cosine_alpha_bar(np.array(0.0), 1000))
    torch.testing.assert_close(x_t.mean(0), math.sqrt(abar) * x0[0], atol=0.03, rtol=0)
    torch.testing.assert_close(x_t.var(0), torch.full((16,), 1 - abar), atol=0.03, rtol=0)


def test_unknown_schedule_is_named():
    with pytest.raises(ConfigError, match="quadratic"):
        make_schedule("quadratic")
