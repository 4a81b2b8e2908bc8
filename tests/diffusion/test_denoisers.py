"""Denoiser networks: the reference U-Net's exact layout, and the shapes every denoiser honours."""

import math

import pytest
import torch

from diffusion_bridge.diffusion.denoisers import build_denoiser
from diffusion_bridge.errors import ConfigError


def reference_unet_layout(dim=512, init_dim=32, mults=(1, 2, 4, 8), heads=4, dim_head=32):
    """(key, shape) of the reference's Unet1D state dict, written out from its source code."""
    hidden, time_dim = heads * dim_head, 4 * init_dim
    keys = {
        "init_conv.weight": (init_dim, 1, 7), "init_conv.bias": (init_dim,),
        "time_mlp.1.weight": (time_dim, dim), "time_mlp.1.bias": (time_dim,),
        "time_mlp.3.weight": (time_dim, time_dim), "time_mlp.3.bias": (time_dim,),
    }

    def resnet(p, a, b):
        keys.update({
            f"{p}.mlp.1.weight": (2 * b, time_dim), f"{p}.mlp.1.bias": (2 * b,),
            f"{p}.block1.proj.weight": (b, a, 3), f"{p}.block1.proj.bias": (b,), f"{p}.block1.norm.g": (1, b, 1),
            f"{p}.block2.proj.weight": (b, b, 3), f"{p}.block2.proj.bias": (b,), f"{p}.block2.norm.g": (1, b, 1),
        })
        if a != b:
            keys.update({f"{p}.res_conv.weight": (b, a, 1), f"{p}.res_conv.bias": (b,)})

    def attention(p, c, linear):
        keys.update({f"{p}.fn.fn.to_qkv.weight": (3 * hidden, c, 1), f"{p}.fn.norm.g": (1, c, 1)})
        out = f"{p}.fn.fn.to_out.0" if linear else f"{p}.fn.fn.to_out"
        keys.update({f"{out}.weight": (c, hidden, 1), f"{out}.bias": (c,)})
        if linear:
            keys[f"{p}.fn.fn.to_out.1.g"] = (1, c, 1)

    widths = [init_dim] + [init_dim * m for m in mults]
    stages = list(zip(widths[:-1], widths[1:], strict=True))
    for i, (a, b) in enumerate(stages):
        last = i == len(stages) - 1
        resnet(f"downs.{i}.0", a, a)
        resnet(f"downs.{i}.1", a, a)
        attention(f"downs.{i}.2", a, linear=True)
        keys.update({f"downs.{i}.3.weight": (b, a, 3 if last else 4), f"downs.{i}.3.bias": (b,)})
    resnet("mid_block1", widths[-1], widths[-1])
    attention("mid_attn", widths[-1], linear=False)
    resnet("mid_block2", widths[-1], widths[-1])
    for i, (a, b) in enumerate(reversed(stages)):
        last = i == len(stages) - 1
        resnet(f"ups.{i}.0", b + a, b)
        resnet(f"ups.{i}.1", b + a, b)
        attention(f"ups.{i}.2", b, linear=True)
        conv = f"ups.{i}.3" if last else f"ups.{i}.3.1"
        keys.update({f"{conv}.weight": (a, b, 3), f"{conv}.bias": (a,)})
    resnet("final_res_block", 2 * init_dim, init_dim)
    keys.update({"final_conv.weight": (1, init_dim, 1), "final_conv.bias": (1,)})
    return keys


def test_unet1d_has_the_reference_parameter_count_and_keys():
    unet = build_denoiser("unet1d", 512)
    assert sum(p.numel() for p in unet.parameters()) == 4_037_313
    layout = reference_unet_layout()
    assert sum(math.prod(s) for s in layout.values()) == 4_037_313
    found = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    assert found == layout


def test_unet1d_accepts_flat_and_channel_inputs():
    torch.manual_seed(0)
    unet = build_denoiser("unet1d", 64, init_dim=8, dim_mults=(1, 2))
    x, t = torch.randn(3, 64), torch.tensor([0, 500, 999])
    flat = unet(x, t)
    assert flat.shape == (3, 64)
    torch.testing.assert_close(unet(x.unsqueeze(1), t).squeeze(1), flat)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("mlp", {"width": 64, "depth": 2}), ("transformer", {"tokens": 8, "width": 32, "depth": 2}),
     ("unet1d", {"init_dim": 8, "dim_mults": (1, 2)})],
)
def test_every_denoiser_maps_b_d_to_b_d_and_trains(name, kwargs):
    torch.manual_seed(0)
    net = build_denoiser(name, 32, **kwargs)
    x, t = torch.randn(5, 32), torch.randint(0, 1000, (5,))
    out = net(x, t)
    assert out.shape == (5, 32)
    out.pow(2).mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    # each row depends only on its own input: no mixing across the batch
    torch.testing.assert_close(net(x[2:3], t[2:3]), out[2:3], atol=1e-5, rtol=1e-5)


def test_time_conditioning_changes_the_output():
    torch.manual_seed(0)
    net = build_denoiser("mlp", 16, width=32, depth=2)
    x = torch.randn(1, 16).expand(2, 16)
    torch.testing.assert_close(net(x, torch.tensor([10, 900])), x)  # zero-initialised: starts as the identity
    with torch.no_grad():  # give the zero-initialised layers weights so that t matters
        for block in net.blocks:
            block.film.weight.normal_()
            block.mlp[-1].weight.normal_()
        net.out_proj.weight.normal_()
    out = net(x, torch.tensor([10, 900]))
    assert not torch.allclose(out[0], out[1])


def test_bad_sizes_raise_named_errors():
    with pytest.raises(ConfigError, match="divisible by 8"):
        build_denoiser("unet1d", 100)
    with pytest.raises(ConfigError, match="16 equal tokens"):
        build_denoiser("transformer", 100, tokens=16)
    with pytest.raises(ConfigError, match="resnet"):
        build_denoiser("resnet", 512)
