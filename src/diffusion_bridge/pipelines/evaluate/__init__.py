"""Stage `evaluate`: the alignment report."""

from diffusion_bridge.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
