"""Conversions among ε, x0 and v, and loss weights that mean the same thing for every objective."""

import numpy as np
import pytest
import torch

from diffusion_bridge.diffusion.objectives import (
    OBJECTIVES,
    eps_from_x0,
    to_x0_eps,
    training_target,
    v_from_x0_eps,
    x0_from_eps,
    x0_from_v,
)
from diffusion_bridge.diffusion.schedules import make_schedule
from diffusion_bridge.diffusion.weighting import loss_weight, x0_space_weight
from diffusion_bridge.errors import ConfigError


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    schedule = make_schedule("cosine", 1000)
    x0 = torch.randn(64, 32, generator=g)
    eps = torch.randn(64, 32, generator=g)
    t = torch.randint(0, 1000, (64,), generator=g)
    return schedule, x0, eps, t, schedule.q_sample(x0, t, eps)


def test_conversions_round_trip(batch):
    schedule, x0, eps, t, x_t = batch
    torch.testing.assert_close(x0_from_eps(schedule, x_t, t, eps), x0, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(eps_from_x0(schedule, x_t, t, x0), eps, atol=2e-3, rtol=1e-3)
    v = v_from_x0_eps(schedule, x0, t, eps)
    torch.testing.assert_close(x0_from_v(schedule, x_t, t, v), x0, atol=1e-5, rtol=1e-5)


def test_v_matches_its_definition_in_float64(batch):
    schedule, x0, eps, t, _ = batch
    abar = torch.cumprod(1 - torch.as_tensor(np.clip(_cosine_betas(), 0, 0.999)), 0)[t].unsqueeze(1)
    v = abar.sqrt() * eps.double() - (1 - abar).sqrt() * x0.double()
    torch.testing.assert_close(v_from_x0_eps(schedule, x0, t, eps).double(), v, atol=1e-6, rtol=1e-6)


def _cosine_betas(T=1000, s=0.008):
    x = np.arange(T + 1) / T
    f = np.cos((x + s) / (1 + s) * np.pi / 2) ** 2
    return 1 - f[1:] / f[:-1]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_exact_network_output_recovers_x0_and_eps(batch, objective):
    schedule, x0, eps, t, x_t = batch
    keep = t > 20  # at tiny t, ε is ill-determined by x_t (sqrt(1-ᾱ) → 0)
    output = training_target(objective, schedule, x0, t, eps)
    x0_hat, eps_hat = to_x0_eps(objective, schedule, x_t, t, output)
    torch.testing.assert_close(x0_hat, x0, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(eps_hat[keep], eps[keep], atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("weighting", ["snr", "min_snr", "uniform"])
def test_weighted_losses_agree_across_objectives(weighting):
    """Same x0 error ⇒ same weighted loss whichever space the network regresses in."""
    schedule = make_schedule("cosine", 1000)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(32, 16, generator=g, dtype=torch.float64)
    eps = torch.randn(32, 16, generator=g, dtype=torch.float64)
    t = torch.randint(30, 1000, (32,), generator=g)
    abar = schedule.alphas_cumprod.double()[t].unsqueeze(1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    x0_hat = x0 + 0.1 * torch.randn(32, 16, generator=g, dtype=torch.float64)
    eps_hat = (x_t - abar.sqrt() * x0_hat) / (1 - abar).sqrt()
    v = abar.sqrt() * eps - (1 - abar).sqrt() * x0
    v_hat = abar.sqrt() * eps_hat - (1 - abar).sqrt() * x0_hat
    snr = (abar / (1 - abar)).squeeze(1)
    errors = {
        "pred_x0": (x0_hat - x0).pow(2).mean(1),
        "pred_noise": (eps_hat - eps).pow(2).mean(1),
        "pred_v": (v_hat - v).pow(2).mean(1),
    }
    losses = {o: loss_weight(weighting, o, snr) * e for o, e in errors.items()}
    expected = x0_space_weight(weighting, snr) * errors["pred_x0"]
    for objective, loss in losses.items():
        torch.testing.assert_close(loss, expected, rtol=1e-9, atol=0, msg=objective)


def test_reference_weights():
    snr = torch.tensor([0.01, 1.0, 4.0, 100.0])
    torch.testing.assert_close(loss_weight("snr", "pred_x0", snr), snr)  # the reference's loss_weight
    torch.testing.assert_close(loss_weight("snr", "pred_noise", snr), torch.ones(4))
    torch.testing.assert_close(loss_weight("snr", "pred_v", snr), snr / (snr + 1))
    torch.testing.assert_close(loss_weight("min_snr", "pred_x0", snr), torch.tensor([0.01, 1.0, 4.0, 5.0]))
    torch.testing.assert_close(loss_weight("min_snr", "pred_noise", snr), torch.tensor([1.0, 1.0, 1.0, 0.05]))


def test_unknown_names_are_named():
    with pytest.raises(ConfigError, match="pred_y"):
        training_target("pred_y", make_schedule(), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), torch.zeros(1, 2))
    with pytest.raises(ConfigError, match="p2"):
        loss_weight("p2", "pred_x0", torch.ones(1))
