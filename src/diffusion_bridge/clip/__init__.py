"""CLIP through open_clip: loading (pretrained tag, local checkpoint), fitting from scratch, batched embedding."""

from pathlib import Path

import open_clip

# Our small architectures (e.g. SynthCLIP-Tiny for the built-in corpus) become ordinary open_clip names.
open_clip.add_model_config(Path(__file__).parent / "model_configs")

from diffusion_bridge.clip.model import ClipModel  # noqa: E402
from diffusion_bridge.clip.sources import load_checkpoint, load_pretrained, obtain_clip  # noqa: E402

__all__ = ["ClipModel", "load_checkpoint", "load_pretrained", "obtain_clip"]
