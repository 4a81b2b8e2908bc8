"""diffusion-bridge: CLIP image embeddings carried into the text distribution by a text-only DDPM."""

__version__ = "0.1.0"
