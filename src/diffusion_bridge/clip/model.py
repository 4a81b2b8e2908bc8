"""The CLIP model artifact: an open_clip model with its config and preprocessing, saved in open_clip's
`local-dir:` layout (`open_clip_config.json` + `open_clip_model.safetensors`) so open_clip itself can load it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from safetensors.torch import save_file

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"


@dataclass
class ClipModel:
    """An open_clip CLIP plus everything needed to embed with it and to trace where it came from."""

    model: torch.nn.Module
    model_cfg: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)  # provenance: source, name, tag/path, fitting stats

    @property
    def embed_dim(self) -> int:
        return int(self.model_cfg["embed_dim"])

    @property
    def preprocess_cfg(self) -> dict[str, Any]:
        return dict(self.model.visual.preprocess_cfg)

    def image_transform(self):
        """The evaluation transform (resize, centre crop, normalise) open_clip uses for this model."""
        return image_transform_v2(PreprocessCfg(**self.preprocess_cfg), is_train=False)

    def tokenizer(self):
        """open_clip's tokenizer for this model's text tower (BPE, truncated to its context length)."""
        text_cfg = self.model_cfg.get("text_cfg", {})
        if text_cfg.get("hf_tokenizer_name"):
            return open_clip.get_tokenizer(self.info.get("model_name", ""))
        return open_clip.tokenizer.SimpleTokenizer(context_length=int(text_cfg.get("context_length", 77)))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        preprocess = {k: list(v) if isinstance(v, tuple) else v for k, v in self.preprocess_cfg.items()}
        document = {"model_cfg": self.model_cfg, "preprocess_cfg": preprocess, "diffusion_bridge": self.info}
        (directory / CONFIG_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> ClipModel:
        document = json.loads((Path(directory) / CONFIG_FILE).read_text(encoding="utf-8"))
        model = open_clip.create_model(f"local-dir:{directory}", device=device)
        model.eval()
        return cls(model=model, model_cfg=document["model_cfg"], info=document.get("diffusion_bridge", {}))
