"""bridge_embeddings: the reference procedure step by step, its options, and its argument checks."""

import pytest
import torch
import torch.nn.functional as F

from diffusion_bridge.bridge import bridge_embeddings, check_bridge_settings
from diffusion_bridge.diffusion import DiffusionModel
from diffusion_bridge.errors import ConfigError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = DiffusionModel(dim=16, denoiser="mlp", denoiser_kwargs={"width": 32, "depth": 2, "time_dim": 16})
    with torch.no_grad():  # a random but non-trivial network (zero-initialised outputs would hide bugs)
        for p in m.denoiser.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m.eval()


def data(n=10, d=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * 2, F.normalize(torch.randn(d, generator=g), dim=-1) * 0.7


def float64_reference(model, embeddings, mean, times, noise=None, t_noise=None):
    """The reference's loop written out in float64 (the network itself is evaluated in float32, as it runs):
    x0 from the net on the re-projected x, eps from that same x, the DDIM update, x0 at the end."""
    denoiser = lambda x, t: model.denoiser(x.float(), t).double()  # noqa: E731
    abar = model.schedule.alphas_cumprod.double()
    r = model.radius
    x = F.normalize(F.normalize(embeddings.double(), dim=-1) - mean.double(), dim=-1) * r
    if noise is not None:
        x = abar[t_noise].sqrt() * x + (1 - abar[t_noise]).sqrt() * noise.double()
    with torch.no_grad():
        for t, s in zip(times[:-1], times[1:], strict=True):
            x = F.normalize(x, dim=-1) * r
            x0 = denoiser(x, torch.full((len(x),), t))
            eps = ((1 / abar[t]).sqrt() * x - x0) / (1 / abar[t] - 1).sqrt()
            x = x0 if s < 0 else abar[s].sqrt() * x0 + (1 - abar[s]).sqrt() * eps
    return F.normalize(x, dim=-1)


def test_matches_a_float64_recomputation_of_the_reference(model):
    images, mean = data()
    ours = bridge_embeddings(model, images, mean, t0=600, steps=5)
    expected = float64_reference(model, images, mean, [599, 479, 359, 239, 119, -1])
    torch.testing.assert_close(ours.double(), expected, rtol=1e-5, atol=1e-5)
    assert ours.dtype == torch.float32 and torch.isfinite(ours).all()
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(len(images)))


def test_text_augmentation_noises_to_t0_then_denoises_from_t0_minus_1(model):
    texts, mean = data(seed=2)
    g = torch.Generator().manual_seed(3)
    ours = bridge_embeddings(model, texts, mean, t0=400, steps=5, add_noise=True, generator=g)
    noise = torch.randn(texts.shape, generator=torch.Generator().manual_seed(3))
    expected = float64_reference(model, texts, mean, [399, 319, 239, 159, 79, -1], noise=noise, t_noise=400)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-5, atol=1e-5)


def test_chunking_and_single_rows_give_the_same_answer(model):
    images, mean = data(n=7)
    whole = bridge_embeddings(model, images, mean, batch_size=1024)
    chunked = bridge_embeddings(model, images, mean, batch_size=3)
    one_by_one = torch.cat([bridge_embeddings(model, images[i : i + 1], mean) for i in range(7)])
    torch.testing.assert_close(whole, chunked, rtol=0, atol=1e-6)
    torch.testing.assert_close(whole, one_by_one, rtol=0, atol=1e-6)


def test_t0_zero_is_the_mean_shift_alone(model):
    images, mean = data()
    expected = F.normalize(F.normalize(images, dim=-1) - mean, dim=-1)
    torch.testing.assert_close(bridge_embeddings(model, images, mean, t0=0), expected)


@pytest.mark.parametrize("sampler", ["ddpm", "dpm_solver_pp"])
def test_other_samplers_run_and_stay_on_the_sphere(model, sampler):
    images, mean = data()
    out = bridge_embeddings(model, images, mean, sampler=sampler, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.norm(dim=1), torch.ones(len(images)))


def test_eta_makes_ddim_stochastic_and_seeded(model):
    images, mean = data()
    a = bridge_embeddings(model, images, mean, eta=1.0, generator=torch.Generator().manual_seed(0))
    b = bridge_embeddings(model, images, mean, eta=1.0, generator=torch.Generator().manual_seed(0))
    c = bridge_embeddings(model, images, mean, eta=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, c)


@pytest.mark.parametrize(
    ("t0", "steps", "sampler", "eta", "match"),
    [
        (1001, 5, "ddim", 0.0, "t0=1001 must lie in"),
        (-1, 5, "ddim", 0.0, "t0=-1"),
        (3, 5, "ddim", 0.0, "steps=5 with t0=3"),
        (600, 0, "ddim", 0.0, "steps=0"),
        (600, 5, "heun", 0.0, "unknown sampler 'heun'"),
        (600, 5, "ddpm", 0.5, "eta=0.5"),
        (600, 5, "ddim", -0.1, "eta=-0.1"),
    ],
)
def test_bad_settings_are_refused_with_the_fix(t0, steps, sampler, eta, match):
    with pytest.raises(ConfigError, match=match):
        check_bridge_settings(t0, steps, 1000, sampler, eta)
