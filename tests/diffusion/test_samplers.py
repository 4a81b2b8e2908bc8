"""Samplers: the reference's timesteps, DDIM/DDPM/DPM-Solver++ against exact answers and diffusers."""

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from torch import nn

from diffusion_bridge.diffusion import (
    DiffusionModel,
    ddim_sample,
    ddpm_sample,
    dpm_solver_pp_2m,
    reference_timesteps,
)
from diffusion_bridge.errors import ConfigError
from diffusion_bridge.space import project_to_radius

DIM, MU_SCALE, STD = 16, 1.0, 0.5


class GaussianPosteriorMean(nn.Module):
    """The exact x0-predictor for data x0 ~ N(μ, STD² I): E[x0 | x_t] in closed form."""

    def __init__(self, alphas_cumprod: torch.Tensor, mu: torch.Tensor):
        super().__init__()
        self.abar = alphas_cumprod.double()
        self.mu = mu.double()

    def forward(self, x, t):
        a = self.abar[t].unsqueeze(1)
        gain = a.sqrt() * STD**2 / (a * STD**2 + 1 - a)
        return (self.mu + gain * (x.double() - a.sqrt() * self.mu)).float()


def gaussian_model():
    model = DiffusionModel(DIM, denoiser="mlp", denoiser_kwargs={"width": 8, "depth": 1}, rescale=False)
    mu = MU_SCALE * torch.linspace(-1, 1, DIM)
    model.denoiser = GaussianPosteriorMean(model.schedule.alphas_cumprod, mu)
    return model, mu


def exact_flow(x_t, t, s, abar, mu):
    """The probability-flow ODE for Gaussian data maps standardised coordinates identically."""
    def std(a):
        return (a * STD**2 + 1 - a).sqrt()
    a_t, a_s = abar[t].double(), abar[s].double()
    z = (x_t.double() - a_t.sqrt() * mu) / std(a_t)
    return a_s.sqrt() * mu + std(a_s) * z


def test_reference_timesteps_reproduce_the_float32_linspace_truncation():
    assert reference_timesteps(600, 5) == [599, 479, 359, 239, 119, -1]
    assert reference_timesteps(400, 5) == [399, 319, 239, 159, 79, -1]
    for t0, steps in [(600, 7), (1000, 50), (333, 9)]:
        expected = np.linspace(-1, t0 - 1, steps + 1, dtype=np.float32)
        expected = [int(v) for v in torch.from_numpy(expected).int().flip(0)]
        ours = reference_timesteps(t0, steps)
        assert ours[-1] == -1 and len(ours) == steps + 1
        assert ours == expected


def test_dpm_solver_2m_is_more_accurate_than_ddim_and_both_converge():
    model, mu = gaussian_model()
    abar = model.schedule.alphas_cumprod
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(256, DIM, generator=g) * 1.2
    t0, t_end = 800, 20
    exact = exact_flow(x_t, t0, t_end, abar, mu.double())

    def error(sampler, steps):
        times = [int(v) for v in np.linspace(t0, t_end, steps + 1).round()]
        return (sampler(model.predict, model.schedule, x_t, times).double() - exact).norm(dim=-1).mean().item()

    ddim = {n: error(ddim_sample, n) for n in (20, 40)}
    dpm = {n: error(dpm_solver_pp_2m, n) for n in (20, 40)}
    assert dpm[40] < 0.3 * ddim[40]  # second order beats first order at equal cost
    assert 1.7 < ddim[20] / ddim[40] < 2.3  # DDIM is first order: halving h halves the error
    assert dpm[20] / dpm[40] > 3.0  # DPM-Solver++(2M) is second order: ~4x
    assert error(ddim_sample, 400) < 0.01 and error(dpm_solver_pp_2m, 400) < 0.001


def test_first_dpm_step_is_a_ddim_step():
    torch.manual_seed(0)
    model = DiffusionModel(DIM, denoiser_kwargs={"width": 16, "depth": 2})
    x = torch.randn(8, DIM)
    torch.testing.assert_close(dpm_solver_pp_2m(model.predict, model.schedule, x, [599, 300]),
                               ddim_sample(model.predict, model.schedule, x, [599, 300]))


def test_ddpm_equals_ddim_with_eta_one_for_the_same_noise():
    torch.manual_seed(0)
    model = DiffusionModel(DIM, denoiser_kwargs={"width": 16, "depth": 2})
    x = torch.randn(8, DIM) * model.radius / DIM**0.5
    times = [700, 500, 260, 100, -1]
    a = ddpm_sample(model.predict, model.schedule, x, times, generator=torch.Generator().manual_seed(1))
    b = ddim_sample(model.predict, model.schedule, x, times, eta=1.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_ddpm_step_matches_diffusers_posterior():
    model, _ = gaussian_model()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample", clip_sample=False)
    scheduler.set_timesteps(1000)
    x = torch.randn(4, DIM, generator=torch.Generator().manual_seed(2))
    t = 321
    ours = ddpm_sample(model.predict, model.schedule, x, [t, t - 1], generator=torch.Generator().manual_seed(7))
    x0_hat = model.predict(x, torch.full((4,), t)).x0
    theirs = scheduler.step(x0_hat, t, x, generator=torch.Generator().manual_seed(7)).prev_sample
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_ddpm_posterior_is_centred_on_the_re_projected_input():
    """The DDPM mean uses x_t as the network saw it (on the sphere), recovered from (x0_hat, eps_hat) alone."""
    torch.manual_seed(0)
    model = DiffusionModel(DIM, denoiser_kwargs={"width": 16, "depth": 2})
    x = torch.randn(8, DIM) * 3  # off the sphere: the network sees it re-projected to the radius
    t, s = 600, 450
    ours = ddpm_sample(model.predict, model.schedule, x, [t, s], generator=torch.Generator().manual_seed(1))
    a_t, a_s = model.schedule.alpha_bar(t), model.schedule.alpha_bar(s)
    x_seen = project_to_radius(x, model.radius)
    x0 = model.predict(x, torch.full((8,), t)).x0
    mean = (a_s.sqrt() * (1 - a_t / a_s) / (1 - a_t)) * x0 + ((a_t / a_s).sqrt() * (1 - a_s) / (1 - a_t)) * x_seen
    std = ((1 - a_t / a_s) * (1 - a_s) / (1 - a_t)).sqrt()
    expected = mean + std * torch.randn(8, DIM, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sampler", [ddim_sample, dpm_solver_pp_2m])
def test_a_batch_equals_its_rows_sampled_one_at_a_time(sampler):
    torch.manual_seed(0)
    model = DiffusionModel(DIM, denoiser_kwargs={"width": 16, "depth": 2})
    x = torch.randn(6, DIM)
    times = reference_timesteps(600, 5)
    batch = sampler(model.predict, model.schedule, x, times)
    rows = torch.cat([sampler(model.predict, model.schedule, x[i:i + 1], times) for i in range(6)])
    torch.testing.assert_close(batch, rows, rtol=1e-5, atol=1e-5)
    assert not batch.requires_grad


@pytest.mark.parametrize("times", [[100, 200, -1], [599], [1000, -1], [300, -1, -1], [5, -2]])
def test_bad_trajectories_are_rejected(times):
    model = DiffusionModel(DIM, denoiser_kwargs={"width": 8, "depth": 1})
    with pytest.raises(ConfigError):
        ddim_sample(model.predict, model.schedule, torch.zeros(1, DIM), times)
