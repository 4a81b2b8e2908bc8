"""DiffusionModel: the reference's training loss and predictions, recomputed independently in float64."""

import json

import pytest
import torch
import torch.nn.functional as F

from diffusion_bridge.diffusion import DiffusionModel, default_radius, project_to_radius, to_diffusion_space


def make(objective="pred_x0", weighting="snr", rescale=True, dim=32):
    torch.manual_seed(0)
    return DiffusionModel(
        dim, denoiser="mlp", denoiser_kwargs={"width": 48, "depth": 2},
        objective=objective, weighting=weighting, rescale=rescale,
    )


def float64_schedule(T=1000, s=0.008):
    x = torch.linspace(0, T, T + 1, dtype=torch.float64)
    f = torch.cos((x / T + s) / (1 + s) * torch.pi / 2) ** 2
    return torch.cumprod(1 - (1 - f[1:] / f[:-1]).clip(0, 0.999), 0)


@pytest.mark.parametrize("objective", ["pred_x0", "pred_noise", "pred_v"])
def test_loss_is_the_reference_p_losses(objective):
    model = make(objective)
    g = torch.Generator().manual_seed(3)
    x0 = F.normalize(torch.randn(16, 32, generator=g), dim=-1) * model.radius
    t = torch.randint(0, 1000, (16,), generator=g)
    noise = torch.randn(16, 32, generator=g)

    abar = float64_schedule()[t].unsqueeze(1)
    x_t = abar.sqrt() * x0.double() + (1 - abar).sqrt() * noise.double()
    x_in = model.radius * x_t / x_t.norm(dim=-1, keepdim=True)  # the reference's re-projection
    out = model.denoiser(x_in.float(), t).double()
    target = {"pred_x0": x0.double(), "pred_noise": noise.double(),
              "pred_v": abar.sqrt() * noise.double() - (1 - abar).sqrt() * x0.double()}[objective]
    snr = (abar / (1 - abar)).squeeze(1)
    weight = {"pred_x0": snr, "pred_noise": torch.ones_like(snr), "pred_v": snr / (snr + 1)}[objective]
    expected = (weight * (out - target).pow(2).mean(1)).mean()

    loss = model.loss(x0, t, noise)
    assert loss.ndim == 0
    torch.testing.assert_close(loss.double(), expected, rtol=2e-4, atol=0)


def test_loss_draws_its_own_t_and_noise_reproducibly():
    model = make()
    x0 = F.normalize(torch.randn(8, 32), dim=-1) * model.radius
    a = model.loss(x0, generator=torch.Generator().manual_seed(5))
    b = model.loss(x0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    a.backward()
    assert model.denoiser.out_proj.weight.grad is not None


def test_predictions_reproject_the_input_and_derive_eps_from_it():
    model = make()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 32, generator=g) * 3  # any norm: the model re-projects it
    t = torch.full((6,), 599)
    pred = model.predict(x, t)
    x_in = (model.radius * x.double() / x.double().norm(dim=-1, keepdim=True))
    x0 = model.denoiser(x_in.float(), t).double()
    abar = float64_schedule()[599]
    eps = ((1 / abar).sqrt() * x_in - x0) / (1 / abar - 1).sqrt()
    torch.testing.assert_close(pred.x0.double(), x0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pred.eps.double(), eps, rtol=1e-4, atol=1e-4)


def test_rescale_off_feeds_x_t_unchanged():
    model = make(rescale=False)
    x, t = torch.randn(4, 32) * 3, torch.full((4,), 10)
    torch.testing.assert_close(model.predict(x, t).x0, model.denoiser(x, t))


def test_config_round_trips_through_json():
    model = make(objective="pred_v", weighting="min_snr")
    cfg = json.loads(json.dumps(model.config))
    rebuilt = DiffusionModel.from_config(cfg)
    assert rebuilt.config == model.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    unet = DiffusionModel(64, denoiser="unet1d", denoiser_kwargs={"init_dim": 8, "dim_mults": (1, 2)})
    assert DiffusionModel.from_config(json.loads(json.dumps(unet.config))).config == unet.config


def test_diffusion_space_is_the_reference_vector():
    g = torch.Generator().manual_seed(6)
    emb = torch.randn(5, 512, generator=g).half()
    mean = F.normalize(torch.randn(100, 512, generator=g), dim=-1).mean(0)
    expected = emb.double() / emb.double().norm(dim=-1, keepdim=True) - mean.double()
    expected = 5 * expected / expected.norm(dim=-1, keepdim=True)
    out = to_diffusion_space(emb, mean, default_radius(512))
    assert default_radius(512) == 5.0 and default_radius(768) == pytest.approx(5 * (768 / 512) ** 0.5)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(project_to_radius(out * 3, 2.0).norm(dim=-1), torch.full((5,), 2.0))
