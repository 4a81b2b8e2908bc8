"""Pieces every training loop of the project shares (diffusion model, caption decoder, CLIP fit):
mixed precision and loss scaling, optimizers and learning-rate schedules, and checkpoints that resume exactly."""

from diffusion_bridge.training.checkpoint import (
    STATE_FILE,
    capture_rng,
    read_training_state,
    restore_rng,
    tensor_digest,
    write_checkpoint,
)
from diffusion_bridge.training.optim import LR_SCHEDULES, lr_scheduler, make_optimizer, param_groups
from diffusion_bridge.training.precision import PRECISIONS, Precision, accelerator_for

__all__ = [
    "LR_SCHEDULES",
    "PRECISIONS",
    "STATE_FILE",
    "Precision",
    "accelerator_for",
    "capture_rng",
    "lr_scheduler",
    "make_optimizer",
    "param_groups",
    "read_training_state",
    "restore_rng",
    "tensor_digest",
    "write_checkpoint",
]
