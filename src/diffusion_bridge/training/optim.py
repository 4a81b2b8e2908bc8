"""Optimizers and learning-rate schedules, built the same way for every loop.

AdamW/Adam take the fused kernel on CUDA (or wherever torch has one, with `fused=True`); weight decay
applies to matrices only (as nanoGPT and open_clip do), never to biases and norms. Schedules are transformers' (warm-up, then constant, linear
or cosine decay), stepped once per optimizer step; their state is saved with each checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from diffusion_bridge.errors import ConfigError

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
LR_SCHEDULES = ("constant", "linear", "cosine")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters, with weight decay on the matrices (ndim >= 2) only."""
    params = [p for p in model.parameters() if p.requires_grad]
    if weight_decay <= 0:  # explicit: AdamW's own default would decay by 0.01
        return [{"params": params, "weight_decay": 0.0}]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def make_optimizer(kind: str, groups: Iterable[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                   device: torch.device | None = None, fused: bool | None = None) -> torch.optim.Optimizer:
    """Adam or AdamW over `groups`. `fused`: None = the fused implementation on CUDA only; True = wherever torch
    has a fused kernel for these parameters (CPU too), else the default one; False = never.

    Fused and unfused kernels round differently, so a loop keeps one choice for its whole life (and resumes)."""
    if kind not in OPTIMIZERS:
        raise ConfigError(f"optimizer {kind!r} is not one of {sorted(OPTIMIZERS)}")
    groups = list(groups)
    if fused is None:
        fused = device is not None and device.type == "cuda"
    if fused:
        try:
            return OPTIMIZERS[kind](groups, lr=lr, betas=tuple(betas), fused=True)
        except (RuntimeError, TypeError):  # no fused kernel for this device or dtype
            pass
    return OPTIMIZERS[kind](groups, lr=lr, betas=tuple(betas))


def lr_scheduler(optimizer: torch.optim.Optimizer, schedule: str, warmup_steps: int, total_steps: int,
                 min_lr_ratio: float = 0.0) -> torch.optim.lr_scheduler.LRScheduler:
    """transformers' schedule `schedule` with linear warm-up: the factor rises from 0 over `warmup_steps`, then
    stays (constant), falls linearly to 0 (linear) or follows a cosine to `min_lr_ratio` (cosine) at `total_steps`."""
    from transformers import get_scheduler  # here, not at module level: importing transformers takes seconds

    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule {schedule!r} is not one of {list(LR_SCHEDULES)}")
    if schedule == "constant":
        return get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=warmup_steps)
    if schedule == "linear":
        return get_scheduler("linear", optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
    return get_scheduler("cosine_with_min_lr", optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps,
                         scheduler_specific_kwargs={"min_lr_rate": min_lr_ratio})
