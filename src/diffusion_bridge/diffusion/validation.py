"""Validation metrics for a DiffusionModel: the training loss per band of t, and how well x0 is recovered."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from diffusion_bridge.errors import ConfigError

from .model import DiffusionModel, draw_noise


def _draw_times(n: int, lo: int, hi: int, generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.randint(lo, hi, (n,), generator=generator, device=generator.device).to(device)


def check_val_timesteps(timesteps: Sequence[int], num_timesteps: int) -> None:
    """Raise ConfigError unless every validation t lies in [0, T)."""
    bad = [int(t) for t in timesteps if not 0 <= int(t) < num_timesteps]
    if bad:
        raise ConfigError(
            f"val_timesteps {bad} lie outside [0, {num_timesteps - 1}] (the model's T = {num_timesteps}); "
            "set diffusion.presets.<preset>.train.val_timesteps to steps the model has"
        )


@torch.no_grad()
def validate(
    model: DiffusionModel,
    x0_val: Tensor,
    timesteps: Sequence[int],
    buckets: int = 10,
    generator: torch.Generator | None = None,
    batch_size: int = 8192,
) -> dict[str, float]:
    """Deterministic (given the generator's seed) validation metrics, as a flat dict of floats.

    - ``loss/tLLL-HHH``: the weighted training loss with t uniform in each of `buckets` equal bands of [0, T);
    - ``loss``: their mean (the training objective with t ~ U[0, T));
    - ``cos_x0/tNNN``: mean cos(x0_hat, x0) when x0 is noised to exactly t = NNN, for each of `timesteps`
      (TrainConfig.val_timesteps in training; include the bridge's insertion step t0 to watch it).
    """
    check_val_timesteps(timesteps, model.num_timesteps)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    x0 = x0_val.to(device, torch.float32)
    n, dim = x0.shape
    T = model.num_timesteps
    edges = [round(i * T / buckets) for i in range(buckets + 1)]
    chunks = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    was_training = model.training
    model.eval()
    try:
        metrics: dict[str, float] = {}
        bucket_losses = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            t = _draw_times(n, lo, hi, generator, device)
            noise = draw_noise((n, dim), generator, device)
            total = sum(model.loss(x0[c], t[c], noise[c]) * (c.stop - c.start) for c in chunks)
            bucket_losses.append(float(total) / n)
            metrics[f"loss/t{lo:03d}-{hi - 1:03d}"] = bucket_losses[-1]
        metrics["loss"] = sum(bucket_losses) / len(bucket_losses)
        for step in timesteps:
            t = torch.full((n,), int(step), device=device, dtype=torch.long)
            noise = draw_noise((n, dim), generator, device)
            cos = sum(
                F.cosine_similarity(model.predict(model.schedule.q_sample(x0[c], t[c], noise[c]), t[c]).x0, x0[c], dim=-1).sum()
                for c in chunks
            )
            metrics[f"cos_x0/t{int(step)}"] = float(cos) / n
    finally:
        model.train(was_training)
    return metrics
