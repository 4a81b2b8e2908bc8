"""Decoder checkpoints: a folder of model.safetensors + config.json + vocabulary.json (no pickle).

Written through `atomic.atomic_path`, so a crash never leaves half a checkpoint under the final name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from diffusion_bridge.atomic import atomic_path, resolve
from diffusion_bridge.errors import CheckpointError

from .model import PrefixCaptioner
from .vocabulary import CaptionVocabulary, vocabulary_from_json

WEIGHTS, CONFIG, VOCABULARY = "model.safetensors", "config.json", "vocabulary.json"
FORMAT = "diffusion_bridge.decoder/1"


def save_decoder(directory: str | os.PathLike, model: PrefixCaptioner, vocab: CaptionVocabulary,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint folder atomically; `extra` (JSON-able: scores, settings) goes into config.json."""
    target = Path(directory)
    config = {"format": FORMAT, "model": model.config, "extra": dict(extra or {})}
    with atomic_path(target, directory=True) as staging:
        # save_model de-duplicates GPT-2's tied input/output embeddings, which save_file refuses.
        save_model(model, str(staging / WEIGHTS))
        (staging / CONFIG).write_text(json.dumps(config, indent=2))
        (staging / VOCABULARY).write_text(json.dumps(vocab.to_json()))
    return target


def _require(path: Path) -> Path:
    if not path.is_file():
        raise CheckpointError(
            f"{path} is missing; a decoder checkpoint folder holds {WEIGHTS}, {CONFIG} and {VOCABULARY}. "
            "Point to the folder save_decoder wrote, or retrain the decoder."
        )
    return path


def _read_json(path: Path) -> Any:
    _require(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}); re-save the decoder.") from error


def load_decoder(directory: str | os.PathLike, map_location: str | torch.device = "cpu",
                 expected_embed_dim: int | None = None) -> tuple[PrefixCaptioner, CaptionVocabulary, dict[str, Any]]:
    """Rebuild (model in eval mode, vocabulary, extra) from a folder written by `save_decoder`.

    With `expected_embed_dim` (the width of the embeddings it will caption) a mismatch raises
    `CheckpointError` before any weights are read.
    """
    folder = resolve(directory, CONFIG) or Path(directory)  # a copy a crash left aside mid-overwrite counts
    config_path = folder / CONFIG
    config = _read_json(config_path)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(
            f"{config_path} has format {config.get('format') if isinstance(config, dict) else None!r}, "
            f"expected {FORMAT!r}; it was not written by save_decoder: re-save or retrain the decoder."
        )
    embed_dim = int(config["model"]["embed_dim"])
    if expected_embed_dim is not None and expected_embed_dim != embed_dim:
        raise CheckpointError(
            f"{config_path}: the decoder was trained on {embed_dim}-d embeddings but the data are "
            f"{expected_embed_dim}-d. Use the CLIP model the decoder was trained with, or retrain the "
            "decoder on these embeddings (delete the checkpoint so the pipeline trains a new one)."
        )
    try:
        vocab = vocabulary_from_json(_read_json(folder / VOCABULARY), str(folder / VOCABULARY))
    except (CheckpointError, KeyError) as error:
        raise CheckpointError(f"{folder / VOCABULARY}: {error}") from error

    weights = _require(folder / WEIGHTS)
    model = PrefixCaptioner.from_config(config["model"])
    try:
        load_model(model, str(weights), strict=True, device=str(map_location))
    except (RuntimeError, ValueError) as error:
        raise CheckpointError(
            f"{weights} does not match the model described by {config_path} ({error}); "
            "the folder mixes files from different runs: re-save or retrain the decoder."
        ) from error
    model.to(map_location)
    model.eval()
    return model, vocab, config.get("extra", {})


class CaptionDecoder:
    """A trained decoder, its vocabulary and its training record as one artifact (what the catalog versions)."""

    def __init__(self, model: PrefixCaptioner, vocab: CaptionVocabulary, extra: dict[str, Any] | None = None) -> None:
        self.model, self.vocab, self.extra = model, vocab, dict(extra or {})

    def save(self, directory: Path) -> None:
        save_decoder(directory, self.model, self.vocab, self.extra)

    @classmethod
    def load(cls, directory: Path, map_location: str | torch.device = "cpu") -> CaptionDecoder:
        return cls(*load_decoder(directory, map_location))
