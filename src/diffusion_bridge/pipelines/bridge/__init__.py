"""Stage `bridge`: image embeddings into the text distribution; augmented train text."""

from diffusion_bridge.pipelines.bridge.pipeline import create_pipeline

__all__ = ["create_pipeline"]
