"""Stage `train`: the text-embedding DDPM."""

from diffusion_bridge.pipelines.train.pipeline import create_pipeline

__all__ = ["create_pipeline"]
