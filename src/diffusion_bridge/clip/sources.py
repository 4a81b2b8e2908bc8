"""Where the CLIP model comes from: a named pretrained tag, a local checkpoint, or (see fitting.py) the corpus."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import open_clip
import pandas as pd
import torch

from diffusion_bridge.clip.model import CONFIG_FILE, ClipModel
from diffusion_bridge.errors import CheckpointError, ConfigError
from diffusion_bridge.training.checkpoint import refused_pickle

log = logging.getLogger(__name__)


def load_pretrained(model_name: str, pretrained: str, cache_dir: str | None = None) -> ClipModel:
    """open_clip's `create_model(name, pretrained=tag)`; downloads the weights on a connected machine."""
    model = open_clip.create_model(model_name, pretrained=pretrained, cache_dir=cache_dir, require_pretrained=True)
    model.eval()
    info = {"source": "pretrained", "model_name": model_name, "pretrained": pretrained}
    return ClipModel(model=model, model_cfg=_model_cfg(model_name), info=info)


def load_checkpoint(model_name: str, checkpoint: str | Path) -> ClipModel:
    """A local weights file (`.pt`/`.bin`/`.safetensors`, loaded with weights_only=True) for `model_name`,
    or a directory in open_clip's `local-dir:` layout (as this project saves fitted models)."""
    path = Path(checkpoint)
    if not path.exists():
        raise CheckpointError(
            f"CLIP checkpoint {path} does not exist. Fix: set clip.checkpoint to the file holding the "
            f"{model_name} weights (e.g. open_clip's ViT-B-32 OpenAI weights), or use clip.source: pretrained."
        )
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointError(f"{path} is a directory without {CONFIG_FILE}; point clip.checkpoint at the weights file instead.")
        clip = ClipModel.load(path)
        clip.info = {**clip.info, "source": "checkpoint", "checkpoint": str(path)}
        return clip
    try:
        model = open_clip.create_model(model_name, pretrained=str(path), weights_only=True)
    except pickle.UnpicklingError:
        raise refused_pickle(path) from None
    except (RuntimeError, AssertionError, KeyError, ValueError) as exc:  # open_clip's key/shape checks
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"CLIP checkpoint {path} does not fit architecture {model_name!r}: {reason}. "
            f"Fix: set clip.model_name to the architecture the checkpoint was trained with."
        ) from exc
    model.eval()
    info = {"source": "checkpoint", "model_name": model_name, "checkpoint": str(path)}
    return ClipModel(model=model, model_cfg=_model_cfg(model_name), info=info)


def _model_cfg(model_name: str) -> dict:
    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        raise CheckpointError(f"unknown open_clip architecture {model_name!r}; see open_clip.list_models()")
    return cfg


CLIP_SOURCES = ("fit", "pretrained", "checkpoint")


def obtain_clip(settings: Mapping[str, Any], train_images: pd.DataFrame, train_captions: pd.DataFrame,
                device: torch.device) -> ClipModel:
    """The CLIP model `settings` (the `clip` parameters) ask for: a pretrained tag, a local checkpoint, or a
    model fitted from scratch on the train split's images and captions (tables in corpus order)."""
    from diffusion_bridge.clip.fitting import ClipFitConfig, fit_clip

    source = settings["source"]
    if source == "pretrained":
        return load_pretrained(settings["model_name"], settings["pretrained"], settings.get("cache_dir"))
    if source == "checkpoint":
        return load_checkpoint(settings["model_name"], settings["checkpoint"])
    if source != "fit":
        raise ConfigError(f"clip.source={source!r}: use one of {list(CLIP_SOURCES)}")
    config = ClipFitConfig(model_name=settings["model_name"], **settings["fit"])
    clip = fit_clip(
        train_images["image_path"].tolist(), train_images["imgid"].tolist(),
        train_captions["caption"].tolist(), train_captions["imgid"].tolist(),
        config, device, progress=settings.get("progress", True),
    )
    fit = clip.info["fit"]
    log.info("Fitted %s: contrastive loss %.3f → %.3f in %.0f s", config.model_name, fit["first_loss"], fit["final_loss"], fit["seconds"])
    return clip
