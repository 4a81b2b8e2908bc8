"""The text-only caption decoder (ClipCap style): vocabulary, model, training, generation, checkpoints."""

from .checkpoints import DecoderCheckpointError, load_decoder, save_decoder
from .generation import generate
from .model import DecoderInputError, PrefixCaptioner
from .training import (
    DecoderTrainConfig,
    DecoderTrainConfigError,
    DecoderTrainResult,
    caption_tokens,
    train_decoder,
)
from .vocabulary import (
    CaptionVocabulary,
    ClipBpeVocabulary,
    GPT2Vocabulary,
    VocabularyError,
    vocabulary_from_json,
)

__all__ = [
    "CaptionVocabulary",
    "ClipBpeVocabulary",
    "DecoderCheckpointError",
    "DecoderInputError",
    "DecoderTrainConfig",
    "DecoderTrainConfigError",
    "DecoderTrainResult",
    "GPT2Vocabulary",
    "PrefixCaptioner",
    "VocabularyError",
    "caption_tokens",
    "generate",
    "load_decoder",
    "save_decoder",
    "train_decoder",
    "vocabulary_from_json",
]
