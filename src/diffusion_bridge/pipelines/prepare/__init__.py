"""Stage `prepare`: corpus → tables and labels → CLIP → embeddings → modality means and gap report."""

from diffusion_bridge.pipelines.prepare.pipeline import create_pipeline

__all__ = ["create_pipeline"]
