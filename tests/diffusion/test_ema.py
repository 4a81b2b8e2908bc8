"""The trainer's EMA against ema-pytorch, configured as the reference's Trainer1D uses it."""

import pytest
import torch
from ema_pytorch import EMA as ReferenceEMA

from diffusion_bridge.diffusion import DiffusionModel, TrainConfig
from diffusion_bridge.diffusion.trainer import EMA


@pytest.mark.parametrize("steps", [95, 2000])  # still copying; then ~190 lerps through the warm-up of the decay
def test_ema_matches_ema_pytorch_as_the_reference_trainer_uses_it(steps):
    torch.manual_seed(0)
    model = DiffusionModel(16, denoiser_kwargs={"width": 32, "depth": 2, "time_dim": 16})
    config = TrainConfig(ema_decay=0.995, ema_every=10, ema_start=100, ema_power=2 / 3)
    theirs = ReferenceEMA(model, beta=0.995, update_every=10, update_after_step=100, power=2 / 3, inv_gamma=1.0)
    ours = EMA(model, config)
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        with torch.no_grad():  # an optimizer step's worth of change (drifting, so the average lags behind)
            for p in model.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=g) + 0.002)
        theirs.update()
        ours.update(model, step)
    expected = theirs.ema_model.state_dict()
    for key, value in ours.shadow.items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(ours.shadow["denoiser.in_proj.weight"], model.denoiser.in_proj.weight) or steps < 100
