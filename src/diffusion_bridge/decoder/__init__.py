"""The text-only caption decoder (ClipCap style): vocabulary, model, training (resumable runs), generation,
checkpoints."""

from .checkpoints import load_decoder, save_decoder
from .generation import generate
from .model import PrefixCaptioner
from .training import (
    DecoderTrainConfig,
    DecoderTrainResult,
    TokenisedCaptions,
    caption_tokens,
    train_decoder,
)
from .vocabulary import (
    CaptionVocabulary,
    ClipBpeVocabulary,
    GPT2Vocabulary,
    vocabulary_from_json,
)

__all__ = [
    "CaptionVocabulary",
    "ClipBpeVocabulary",
    "DecoderTrainConfig",
    "DecoderTrainResult",
    "GPT2Vocabulary",
    "PrefixCaptioner",
    "TokenisedCaptions",
    "caption_tokens",
    "generate",
    "load_decoder",
    "save_decoder",
    "train_decoder",
    "vocabulary_from_json",
]
