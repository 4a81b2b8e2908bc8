"""Importing a reference `model-*.pt`: the test writes one in the reference trainer's format, then checks
our predictions and a full DDIM bridge against a float64 re-computation of the reference math."""

import math

import pytest
import torch
import torch.nn.functional as F

from diffusion_bridge.diffusion import (
    build_denoiser,
    ddim_sample,
    load_reference_checkpoint,
    reference_timesteps,
)
from diffusion_bridge.errors import CheckpointError

# ---------------------------------------------------------------- the reference's buffers, in float64


def reference_buffers(T=1000, s=0.008):
    """What GaussianDiffusion1D_norm(objective='pred_x0', beta_schedule='cosine') registers (float64 → float32)."""
    x = torch.linspace(0, T, T + 1, dtype=torch.float64)
    f = torch.cos(((x / T) + s) / (1 + s) * math.pi * 0.5) ** 2
    f = f / f[0]
    betas = torch.clip(1 - f[1:] / f[:-1], 0, 0.999)
    alphas = 1 - betas
    ac = torch.cumprod(alphas, 0)
    ac_prev = F.pad(ac[:-1], (1, 0), value=1.0)
    post_var = betas * (1 - ac_prev) / (1 - ac)
    buffers = {
        "betas": betas, "alphas_cumprod": ac, "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": ac.sqrt(), "sqrt_one_minus_alphas_cumprod": (1 - ac).sqrt(),
        "log_one_minus_alphas_cumprod": (1 - ac).log(), "sqrt_recip_alphas_cumprod": (1 / ac).sqrt(),
        "sqrt_recipm1_alphas_cumprod": (1 / ac - 1).sqrt(), "posterior_variance": post_var,
        "posterior_log_variance_clipped": post_var.clamp(min=1e-20).log(),
        "posterior_mean_coef1": betas * ac_prev.sqrt() / (1 - ac),
        "posterior_mean_coef2": (1 - ac_prev) * alphas.sqrt() / (1 - ac),
        "loss_weight": ac / (1 - ac),
    }
    return {k: v.float() for k, v in buffers.items()}, ac


# ---------------------------------------------------------------- the reference U-Net, functionally, float64


def reference_unet(w, x, t):
    """Unet1D.forward of the reference, written with torch.nn.functional over the weight dict."""

    def conv(h, p, **kw):
        return F.conv1d(h, w[f"{p}.weight"], w.get(f"{p}.bias"), **kw)

    def rms(h, g):
        return F.normalize(h, dim=1) * w[g] * math.sqrt(h.shape[1])

    def block(h, p, scale_shift=None):
        h = rms(conv(h, f"{p}.proj", padding=1), f"{p}.norm.g")
        if scale_shift is not None:
            h = h * (scale_shift[0] + 1) + scale_shift[1]
        return F.silu(h)

    def resnet(h, p):
        e = F.linear(F.silu(temb), w[f"{p}.mlp.1.weight"], w[f"{p}.mlp.1.bias"])[:, :, None]
        out = block(block(h, f"{p}.block1", e.chunk(2, dim=1)), f"{p}.block2")
        return out + (conv(h, f"{p}.res_conv") if f"{p}.res_conv.weight" in w else h)

    def split_heads(h):
        return h.reshape(h.shape[0], 4, 32, h.shape[-1])  # b (h c) n -> b h c n

    def linear_attention(h, p):
        q, k, v = map(split_heads, F.conv1d(rms(h, f"{p}.fn.norm.g"), w[f"{p}.fn.fn.to_qkv.weight"]).chunk(3, dim=1))
        q, k = q.softmax(dim=-2) * 32**-0.5, k.softmax(dim=-1)
        out = torch.einsum("bhde,bhdn->bhen", torch.einsum("bhdn,bhen->bhde", k, v), q)
        out = conv(out.reshape(h.shape[0], 128, -1), f"{p}.fn.fn.to_out.0")
        return rms(out, f"{p}.fn.fn.to_out.1.g") + h

    def full_attention(h, p):
        q, k, v = map(split_heads, F.conv1d(rms(h, f"{p}.fn.norm.g"), w[f"{p}.fn.fn.to_qkv.weight"]).chunk(3, dim=1))
        attn = torch.einsum("bhdi,bhdj->bhij", q * 32**-0.5, k).softmax(dim=-1)
        out = torch.einsum("bhij,bhdj->bhid", attn, v).permute(0, 1, 3, 2).reshape(h.shape[0], 128, -1)
        return conv(out, f"{p}.fn.fn.to_out") + h

    half = 256
    freqs = torch.exp(torch.arange(half, dtype=torch.float64) * -(math.log(10000) / (half - 1)))
    angles = t.double()[:, None] * freqs[None]
    temb = torch.cat((angles.sin(), angles.cos()), dim=-1)
    temb = F.linear(F.gelu(F.linear(temb, w["time_mlp.1.weight"], w["time_mlp.1.bias"])),
                    w["time_mlp.3.weight"], w["time_mlp.3.bias"])

    h = conv(x, "init_conv", padding=3)
    r, skips = h.clone(), []
    for i in range(4):
        h = resnet(h, f"downs.{i}.0")
        skips.append(h)
        h = linear_attention(resnet(h, f"downs.{i}.1"), f"downs.{i}.2")
        skips.append(h)
        h = conv(h, f"downs.{i}.3", padding=1) if i == 3 else conv(h, f"downs.{i}.3", stride=2, padding=1)
    h = resnet(full_attention(resnet(h, "mid_block1"), "mid_attn"), "mid_block2")
    for i in range(4):
        h = resnet(torch.cat((h, skips.pop()), dim=1), f"ups.{i}.0")
        h = linear_attention(resnet(torch.cat((h, skips.pop()), dim=1), f"ups.{i}.1"), f"ups.{i}.2")
        if i == 3:
            h = conv(h, f"ups.{i}.3", padding=1)
        else:
            h = conv(F.interpolate(h, scale_factor=2, mode="nearest"), f"ups.{i}.3.1", padding=1)
    h = resnet(torch.cat((h, r), dim=1), "final_res_block")
    return conv(h, "final_conv")


def reference_bridge(w, abar, v, times):
    """ddim_sample_with_img in float64: re-project to 5, x0 from the net, eps from the re-projected x."""
    img = v.double().unsqueeze(1)
    for time, time_next in zip(times[:-1], times[1:], strict=True):
        img = F.normalize(img, dim=-1) * 5
        x0 = reference_unet(w, img, torch.full((img.shape[0],), time))
        eps = ((1 / abar[time]).sqrt() * img - x0) / (1 / abar[time] - 1).sqrt()
        if time_next < 0:
            img = x0
            continue
        img = x0 * abar[time_next].sqrt() + (1 - abar[time_next]).sqrt() * eps
    return img.squeeze(1)


# ---------------------------------------------------------------- the checkpoint file


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory):
    torch.manual_seed(0)
    unet = build_denoiser("unet1d", 512)
    with torch.no_grad():  # move every weight off its init value so all of them matter
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    weights = {k: v.clone() for k, v in unet.state_dict().items()}
    buffers, abar = reference_buffers()
    model_dict = {**{f"model.{k}": v for k, v in weights.items()}, **buffers}
    ema_weights = {k: v + 0.01 * torch.randn_like(v) for k, v in weights.items()}
    ema_dict = {f"model.{k}": v for k, v in ema_weights.items()} | buffers
    optimizer = torch.optim.Adam([p.clone().requires_grad_() for p in weights.values()], lr=8e-5, betas=(0.9, 0.99))
    for p in optimizer.param_groups[0]["params"]:
        p.grad = torch.randn_like(p)
    optimizer.step()
    checkpoint = {
        "step": 300,
        "model": model_dict,
        "opt": optimizer.state_dict(),
        "ema": {"initted": torch.tensor([True]), "step": torch.tensor([3000]),
                **{f"online_model.{k}": v for k, v in model_dict.items()},
                **{f"ema_model.{k}": v for k, v in ema_dict.items()}},
        "scaler": torch.amp.GradScaler("cpu").state_dict(),
        "version": "2.0.0",
    }
    assert checkpoint["scaler"], "a real (enabled) GradScaler state"
    path = tmp_path_factory.mktemp("reference") / "model-300.pt"
    torch.save(checkpoint, path)
    return path, checkpoint, {k: v.double() for k, v in weights.items()}, ema_weights, abar


def vision_vectors(n=4):
    g = torch.Generator().manual_seed(11)
    image = F.normalize(torch.randn(n, 512, generator=g), dim=-1)
    image_mean = F.normalize(torch.randn(512, generator=g), dim=-1) * 0.8
    return F.normalize(image - image_mean, dim=-1) * 5


def test_imports_the_raw_weights_with_the_reference_settings(reference_file):
    path, checkpoint, _, _, _ = reference_file
    model = load_reference_checkpoint(path)
    assert model.config | {"denoiser_kwargs": None} == {
        "dim": 512, "denoiser": "unet1d", "denoiser_kwargs": None, "schedule": "cosine", "schedule_kwargs": {},
        "timesteps": 1000, "objective": "pred_x0", "weighting": "snr", "min_snr_gamma": 5.0, "radius": 5.0,
        "rescale": True,
    }
    for key, value in model.denoiser.state_dict().items():
        assert torch.equal(value, checkpoint["model"][f"model.{key}"]), key


def test_x0_prediction_matches_the_reference_math(reference_file):
    path, _, w, _, _ = reference_file
    model = load_reference_checkpoint(path)
    v = vision_vectors() * 1.7  # any norm: both re-project to 5
    t = torch.full((4,), 599)
    ours = model.predict(v, t).x0
    expected = reference_unet(w, (F.normalize(v.double(), dim=-1) * 5).unsqueeze(1), t).squeeze(1)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-4, atol=1e-4)


def test_full_ddim_bridge_from_600_in_5_steps_matches_the_reference_math(reference_file):
    path, _, w, _, abar = reference_file
    model = load_reference_checkpoint(path).eval()
    v = vision_vectors()
    times = reference_timesteps(600, 5)
    assert times == [599, 479, 359, 239, 119, -1]
    ours = ddim_sample(model.predict, model.schedule, v, times)
    expected = reference_bridge(w, abar, v, times)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-4, atol=5e-5)  # measured: 2e-6
    cos = F.cosine_similarity(ours.double(), expected, dim=-1)
    assert cos.min() > 0.99999


def test_ema_weights_come_from_the_ema_model_copy(reference_file):
    path, _, _, ema_weights, _ = reference_file
    model = load_reference_checkpoint(path, weights="ema")
    for key, value in model.denoiser.state_dict().items():
        assert torch.equal(value, ema_weights[key]), key


def _rewrite(tmp_path, checkpoint, **model_changes):
    bad = dict(checkpoint, model=dict(checkpoint["model"]))
    for key, value in model_changes.items():
        if value is None:
            bad["model"].pop(key)
        else:
            bad["model"][key] = value
    path = tmp_path / "model-bad.pt"
    torch.save(bad, path)
    return path


def test_a_wrong_shape_raises_checkpoint_mismatch(reference_file, tmp_path):
    path, checkpoint, _, _, _ = reference_file
    bad = _rewrite(tmp_path, checkpoint, **{"model.downs.1.0.block1.proj.weight": torch.zeros(32, 16, 3)})
    with pytest.raises(CheckpointError, match=r"downs\.1\.0\.block1\.proj\.weight.*\(32, 16, 3\).*\(32, 32, 3\)"):
        load_reference_checkpoint(bad)
    with pytest.raises(CheckpointError, match="512-d embeddings.*dim=768"):
        load_reference_checkpoint(path, dim=768)


def test_wrong_schedule_or_missing_buffers_are_named(reference_file, tmp_path):
    _, checkpoint, _, _, _ = reference_file
    with pytest.raises(CheckpointError, match="posterior_variance"):
        load_reference_checkpoint(_rewrite(tmp_path, checkpoint, posterior_variance=None))
    shifted = checkpoint["model"]["alphas_cumprod"] * 0.9
    with pytest.raises(CheckpointError, match="neither our cosine nor our linear"):
        load_reference_checkpoint(_rewrite(tmp_path, checkpoint, alphas_cumprod=shifted))


class Pickled:
    pass


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "model-evil.pt"
    torch.save({"model": Pickled()}, path)
    with pytest.raises(CheckpointError, match="arbitrary code") as refused:
        load_reference_checkpoint(path)
    assert "model-evil.pt" in str(refused.value)
    assert "weights_only=False" not in str(refused.value)  # never advise running the pickle


def test_bridge_embeddings_equals_the_reference_vision_script(reference_file):
    """bridge_embeddings on raw image embeddings == make_dataset_with_diffusion_vision.py, recomputed in float64."""
    from diffusion_bridge.bridge import bridge_embeddings

    path, _, w, _, abar = reference_file
    model = load_reference_checkpoint(path).eval()
    g = torch.Generator().manual_seed(5)
    images = torch.randn(6, 512, generator=g) * 3  # raw CLIP outputs are not unit-norm
    image_mean = F.normalize(torch.randn(512, generator=g), dim=-1) * 0.8
    ours = bridge_embeddings(model, images, image_mean, t0=600, steps=5, batch_size=4)  # two chunks
    v = F.normalize(F.normalize(images.double(), dim=-1) - image_mean.double(), dim=-1) * 5
    expected = F.normalize(reference_bridge(w, abar, v, [599, 479, 359, 239, 119, -1]), dim=-1)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-4, atol=5e-5)
