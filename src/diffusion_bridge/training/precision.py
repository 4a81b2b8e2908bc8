"""Mixed precision, decided once per run: autocast on CUDA only (CPU always runs fp32), and a GradScaler
whenever fp16 runs, so no loop can forget loss scaling."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from diffusion_bridge.errors import ConfigError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# accelerate's names for the same settings
_ACCELERATE = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


def check_precision(precision: str, where: str = "precision") -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"{where}={precision!r} is not one of {sorted(PRECISIONS)}")
    return precision


@dataclass(frozen=True)
class Precision:
    """The precision a loop runs at on `device`: `autocast()` around forward passes, `scaler` for fp16."""

    name: str
    device: torch.device

    def __post_init__(self) -> None:
        check_precision(self.name)

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype actually used: float32 on CPU whatever was asked."""
        return PRECISIONS[self.name] if self.device.type == "cuda" else torch.float32

    def autocast(self) -> AbstractContextManager:
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A GradScaler when fp16 runs (bf16 and fp32 need none)."""
        return torch.amp.GradScaler(self.device.type) if self.dtype == torch.float16 else None


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    parameters,
    grad_clip: float = 0.0,
) -> None:
    """backward, (unscale), clip the gradient norm when `grad_clip` > 0, step, (update the scale), zero grads."""
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    optimizer.zero_grad(set_to_none=True)


def accelerator_for(precision: str, cpu: bool):
    """An accelerate `Accelerator` whose mixed precision is the run's own setting.

    `accelerate launch --mixed_precision ...` (or a saved accelerate config) sets ACCELERATE_MIXED_PRECISION;
    when it disagrees with the run's setting the launch is refused rather than one silently overriding the other.
    """
    from accelerate import Accelerator

    wanted = "no" if cpu else _ACCELERATE[check_precision(precision)]
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if launched is not None and launched.lower() != wanted:
        raise ConfigError(
            f"accelerate was launched with mixed_precision={launched!r} but the run's precision is {precision!r} "
            f"(= {wanted!r} on {'CPU' if cpu else 'CUDA'}). Fix: launch with `--mixed_precision {wanted}`, or set "
            "the training `precision` to match the launch"
        )
    return Accelerator(mixed_precision=wanted, cpu=cpu)
