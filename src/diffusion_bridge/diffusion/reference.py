"""Import a `model-*.pt` written by the reference trainer (lucidrains' Trainer1D in mongeoroo/diffusion-bridge).

Such a file is a torch.save'd dict {'step', 'model', 'opt', 'ema', 'scaler', 'version'}: `model` is the
GaussianDiffusion1D_norm state dict (U-Net weights under `model.`, plus the schedule buffers
`betas`, `alphas_cumprod`, ... and `loss_weight`); `ema` is an ema_pytorch.EMA state dict
(`initted`, `step`, then `online_model.` and `ema_model.` copies of that same dict).
The reference's bridge loads `checkpoint['model']` (not the EMA), so that is the default here.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from torch import Tensor

from diffusion_bridge.errors import ConfigError
from diffusion_bridge.space import REFERENCE_RADIUS
from diffusion_bridge.training.checkpoint import refused_pickle

from .checkpoints import CheckpointError, check_state_dict
from .model import DiffusionModel
from .schedules import make_schedule

UNET_PREFIX = "model."
EMA_PREFIX = "ema_model."
# Buffers GaussianDiffusion1D_norm registers (besides `loss_weight`, which depends on the objective).
SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)


def _strip(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _diffusion_state(ckpt: dict, weights: str, source: str) -> dict[str, Tensor]:
    if weights not in ("model", "ema"):
        raise ConfigError(f"weights must be 'model' or 'ema', got {weights!r}")
    if not isinstance(ckpt, dict) or weights not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{source}: no {weights!r} entry (found {keys}); expected a model-*.pt saved by the reference Trainer1D"
        )
    state = dict(ckpt[weights])
    if weights == "ema":
        state = _strip(state, EMA_PREFIX)
        if not state:
            raise CheckpointError(
                f"{source}: the 'ema' entry has no '{EMA_PREFIX}*' keys; it is not an ema_pytorch.EMA state dict"
            )
    if all(k.startswith("module.") for k in state):  # saved from a DDP-wrapped model
        state = _strip(state, "module.")
    return state


def _infer_unet_kwargs(unet: dict[str, Tensor], source: str) -> tuple[int, dict]:
    """(dim, Unet1D kwargs) read off the weight shapes: init_dim, dim_mults and the sinusoid width."""
    try:
        init_dim, channels, _ = unet["init_conv.weight"].shape
        _, sin_dim = unet["time_mlp.1.weight"].shape
        stages = sorted({int(m.group(1)) for k in unet if (m := re.match(r"downs\.(\d+)\.", k))})
        mults = [unet[f"downs.{i}.3.weight"].shape[0] // init_dim for i in stages]
    except (KeyError, ValueError) as err:
        raise CheckpointError(
            f"{source}: cannot read a reference Unet1D from the '{UNET_PREFIX}*' weights ({err!r}); "
            "expected Unet1D(dim=512, init_dim=32, dim_mults=(1, 2, 4, 8), channels=1)"
        ) from err
    if channels != 1:
        raise CheckpointError(
            f"{source}: init_conv.weight has {channels} input channels; the bridge needs channels=1 "
            "(one embedding as a 1-channel sequence)"
        )
    return int(sin_dim), {"init_dim": int(init_dim), "dim_mults": mults}


def _objective(loss_weight: Tensor | None, snr: Tensor, source: str) -> str:
    if loss_weight is None:
        return "pred_x0"  # the reference's setting (train_norm.py)
    for objective, expected in (
        ("pred_x0", snr),
        ("pred_noise", torch.ones_like(snr)),
        ("pred_v", snr / (snr + 1)),
    ):
        if loss_weight.shape == expected.shape and torch.allclose(loss_weight.float(), expected, rtol=1e-5):
            return objective
    raise CheckpointError(f"{source}: 'loss_weight' matches none of pred_x0/pred_noise/pred_v")


def _check_schedule(buffers: dict[str, Tensor], source: str) -> str:
    """The schedule name whose float32 buffers equal the file's; raises if none does."""
    missing = [k for k in SCHEDULE_BUFFERS if k not in buffers]
    if missing:
        raise CheckpointError(f"{source}: schedule buffers {missing} are missing from the 'model' dict")
    timesteps = buffers["betas"].shape[0]
    worst = {}
    for name in ("cosine", "linear"):
        ours = make_schedule(name, timesteps)
        diffs = {k: (getattr(ours, k) - buffers[k].float().cpu()).abs().max().item() for k in SCHEDULE_BUFFERS}
        bad = {k: d for k, d in diffs.items() if d > 1e-5 * max(1.0, getattr(ours, k).abs().max().item())}
        if not bad:
            return name
        worst[name] = max(bad.items(), key=lambda kv: kv[1])
    raise CheckpointError(
        f"{source}: the schedule buffers (T={timesteps}) match neither our cosine nor our linear schedule "
        f"(largest differences: {worst}); this file was not written by GaussianDiffusion1D_norm"
    )


def load_reference_checkpoint(
    path: str | Path,
    weights: str = "model",
    map_location: str | torch.device = "cpu",
    dim: int | None = None,
) -> DiffusionModel:
    """A DiffusionModel (Unet1D, reference schedule/objective, radius 5, re-projection on) from a reference file.

    weights="model" are the raw weights the reference bridges with; "ema" the EMA copy (ema_model.*).
    `dim`, if given, is checked against the checkpoint's embedding width.
    """
    source = str(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise refused_pickle(source) from None
    state = _diffusion_state(ckpt, weights, source)
    unet = _strip(state, UNET_PREFIX)
    buffers = {k: v for k, v in state.items() if not k.startswith(UNET_PREFIX)}

    schedule = _check_schedule(buffers, source)
    sin_dim, unet_kwargs = _infer_unet_kwargs(unet, source)
    if dim is not None and dim != sin_dim:
        raise CheckpointError(
            f"{source}: this U-Net was built for {sin_dim}-d embeddings (time_mlp.1.weight is "
            f"{tuple(unet['time_mlp.1.weight'].shape)}), but dim={dim} was requested; use the CLIP model it was "
            "trained with"
        )
    snr = make_schedule(schedule, buffers["betas"].shape[0]).snr_values
    model = DiffusionModel(
        dim=sin_dim,
        denoiser="unet1d",
        denoiser_kwargs=unet_kwargs,
        schedule=schedule,
        timesteps=int(buffers["betas"].shape[0]),
        objective=_objective(buffers.get("loss_weight"), snr, source),
        weighting="snr",
        radius=REFERENCE_RADIUS,  # GaussianDiffusion1D_norm(rescale=5): not stored in the file
        rescale=True,
    )
    expected = model.denoiser.state_dict()
    check_state_dict(
        expected, unet, f"{source} ['{weights}']",
        "Only the reference Unet1D(dim, init_dim, dim_mults, channels=1) layout is supported.",
    )
    model.denoiser.load_state_dict({k: v.float() for k, v in unet.items()}, strict=True)
    return model.to(map_location)
