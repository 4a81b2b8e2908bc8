"""Stage `caption`: text-only caption decoders and the paper's captioning evaluation."""

from diffusion_bridge.pipelines.caption.pipeline import create_pipeline

__all__ = ["create_pipeline"]
