"""The diffusion core: schedules, objectives, denoisers, the model, samplers, checkpoints, the trainer and
preset runs.

Usable without Kedro:  `from diffusion_bridge.diffusion import DiffusionModel, ddim_sample, train, ...`;
samplers take the network as one callable, `ddim_sample(model.predict, model.schedule, x_t, times)`.
"""

from diffusion_bridge.space import default_radius, project_to_radius, to_diffusion_space

from .checkpoints import (
    load_model,
    load_training_state,
    read_checkpoint_config,
    save_checkpoint,
)
from .denoisers import DENOISERS, build_denoiser
from .model import DiffusionModel, Prediction
from .objectives import OBJECTIVES
from .presets import preset_model, train_preset
from .reference import load_reference_checkpoint
from .samplers import ddim_sample, ddpm_sample, dpm_solver_pp_2m, reference_timesteps
from .schedules import (
    NoiseSchedule,
    cosine_beta_schedule,
    linear_beta_schedule,
    make_schedule,
    sigmoid_beta_schedule,
)
from .trainer import RunOptions, TrainConfig, TrainResult, train
from .validation import validate
from .weighting import WEIGHTINGS, loss_weight

__all__ = [
    "DENOISERS",
    "OBJECTIVES",
    "WEIGHTINGS",
    "DiffusionModel",
    "NoiseSchedule",
    "Prediction",
    "RunOptions",
    "TrainConfig",
    "TrainResult",
    "build_denoiser",
    "cosine_beta_schedule",
    "ddim_sample",
    "ddpm_sample",
    "default_radius",
    "dpm_solver_pp_2m",
    "linear_beta_schedule",
    "load_model",
    "load_reference_checkpoint",
    "load_training_state",
    "loss_weight",
    "make_schedule",
    "project_to_radius",
    "read_checkpoint_config",
    "reference_timesteps",
    "save_checkpoint",
    "preset_model",
    "sigmoid_beta_schedule",
    "to_diffusion_space",
    "train",
    "train_preset",
    "validate",
]
