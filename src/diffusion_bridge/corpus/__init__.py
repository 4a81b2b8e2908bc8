"""Image-caption corpora: the Karpathy-split reader, the synthetic renderer, caption clean-up, image checks."""

from diffusion_bridge.corpus.karpathy import read_karpathy
from diffusion_bridge.corpus.records import SPLITS, Corpus

__all__ = ["SPLITS", "Corpus", "read_karpathy"]
