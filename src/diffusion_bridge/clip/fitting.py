"""Fitting a small CLIP from scratch on a corpus' train split (the offline default: no download at all).

The logit scale is frozen: on small data a learnable temperature closes the modality gap almost completely,
while a fixed one keeps it, as in real CLIP — and the gap is what this study is about. The frozen value is a
parameter; see conf/base/parameters_prepare.yml for why the default is 38 rather than CLIP's cap of 100.
A fixed step count and seed make the fit deterministic. The optimizer and learning-rate schedule are the
ones every training loop here builds (diffusion_bridge.training.optim): AdamW, decay on matrices only, fused
where torch has the kernel (on CPU it is several times faster than the per-tensor loop over the text tower's
49,408-row token table), and transformers' warm-up + cosine schedule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import open_clip
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from torch.utils.data import DataLoader

from diffusion_bridge.clip.encoding import ImageFiles, collate_images
from diffusion_bridge.clip.model import ClipModel
from diffusion_bridge.corpus.images import DECODE_AT_CHECK
from diffusion_bridge.errors import ConfigError, ImageFilesError, InputError
from diffusion_bridge.progress import progress_bar
from diffusion_bridge.training.optim import lr_scheduler, make_optimizer, param_groups


@dataclass(frozen=True)
class ClipFitConfig:
    """Hyper-parameters of the from-scratch fit (defaults live in conf/base/parameters_prepare.yml)."""

    model_name: str = "SynthCLIP-RN8"
    steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    logit_scale: float = 38.0
    seed: int = 0
    num_workers: int = 2
    # one: each image meets one of its captions per step (CLIP); all: every caption of each image, a
    # multi-positive loss (more text signal per image forward, several times the text tower's work).
    positives: str = "one"

    def __post_init__(self) -> None:
        if self.positives not in POSITIVES:
            raise ConfigError(f"clip.fit.positives={self.positives!r}: use one of {list(POSITIVES)}")


POSITIVES = ("one", "all")


def fit_clip(
    image_paths: Sequence[str],
    image_ids: Sequence[int],
    captions: Sequence[str],
    caption_image_ids: Sequence[int],
    config: ClipFitConfig,
    device: torch.device,
    progress: bool = True,
) -> ClipModel:
    """Train `config.model_name` with open_clip's ClipLoss on (image, one of its captions) pairs, or with every
    caption of each image of the batch as its positives (`config.positives`)."""
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng():  # seeded initial weights without touching the caller's global RNG
        torch.manual_seed(config.seed)
        model = open_clip.create_model(config.model_name, device=device)
    model.visual.to(memory_format=torch.channels_last)  # oneDNN's convolutions run faster channels-last on CPU
    model.logit_scale.data.fill_(math.log(config.logit_scale))
    model.logit_scale.requires_grad_(False)
    clip = ClipModel(model=model, model_cfg=open_clip.get_model_config(config.model_name), info={})

    pixels = _load_pixels(clip, image_paths, image_ids, config, device)
    tokens = clip.tokenizer()(list(captions)).to(device)
    first, count = _caption_groups(image_ids, caption_image_ids)

    optimizer = make_optimizer("adamw", param_groups(model, config.weight_decay), config.lr, fused=True)
    schedule = lr_scheduler(optimizer, "cosine", config.warmup_steps, config.steps)
    loss_fn = ClipLoss()
    batch = min(config.batch_size, len(image_paths))
    losses = torch.zeros(config.steps)
    start = time.perf_counter()
    model.train()
    bar = progress_bar(range(config.steps), desc="fit CLIP", enabled=progress, leave=False)
    for step in bar:
        images = torch.randperm(len(image_paths), generator=generator)[:batch]
        image_features = model.encode_image(pixels[images.to(device)], normalize=True)
        if config.positives == "one":
            pick = (torch.rand(batch, generator=generator) * count[images]).long()
            text_features = model.encode_text(tokens[(first[images] + pick).to(device)], normalize=True)
            loss = loss_fn(image_features, text_features, model.logit_scale.exp())
        else:
            rows, owner = _all_captions(first[images], count[images].long())
            text_features = model.encode_text(tokens[rows.to(device)], normalize=True)
            loss = multi_positive_loss(image_features, text_features, owner.to(device), model.logit_scale.exp())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses[step] = loss.detach().cpu()
        if progress and step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    clip.info = {
        "source": "fit",
        "model_name": config.model_name,
        "fit": {
            **asdict(config),
            "train_images": len(image_paths),
            "train_captions": len(captions),
            "first_loss": float(losses[:10].mean()),
            "final_loss": float(losses[-10:].mean()),
            "loss_curve": [round(float(v), 4) for v in losses.view(-1, _curve_stride(config.steps)).mean(1)],
            "seconds": round(time.perf_counter() - start, 1),
        },
    }
    return clip


def _all_captions(first: torch.Tensor, count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of every caption of the batch's images, and the batch position of the image owning each."""
    owner = torch.repeat_interleave(torch.arange(len(first)), count)
    start = torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
    return first[owner] + torch.arange(len(owner)) - start, owner


def multi_positive_loss(image_features: torch.Tensor, text_features: torch.Tensor, owner: torch.Tensor,
                        logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric cross-entropy when image i owns every caption j with owner[j] == i: each image's target
    is spread evenly over its own captions, each caption's target is its image. With one caption per image it
    is exactly open_clip's ClipLoss."""
    logits = logit_scale * image_features @ text_features.T  # [images, captions]
    own = owner[None, :] == torch.arange(len(image_features), device=owner.device)[:, None]
    target = own.float() / own.sum(1, keepdim=True)
    image_to_text = -(target * logits.log_softmax(1)).sum(1).mean()
    return (image_to_text + F.cross_entropy(logits.T, owner)) / 2


def _load_pixels(clip: ClipModel, paths, ids, config: ClipFitConfig, device: torch.device) -> torch.Tensor:
    """Decode and preprocess every train image once; the small corpus fits on the device."""
    loader = DataLoader(ImageFiles(paths, ids, clip.image_transform()), batch_size=256,
                        num_workers=config.num_workers, collate_fn=collate_images)
    batches = list(loader)
    failures = [f for _, failed in batches for f in failed]
    if failures:
        raise ImageFilesError("unreadable", failures, "the images table", DECODE_AT_CHECK)
    return torch.cat([pixels for pixels, _ in batches]).to(device).contiguous(memory_format=torch.channels_last)


def _caption_groups(image_ids: Sequence[int], caption_image_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """For each image (in `image_ids` order): index of its first caption and its caption count.

    Captions must be grouped by image in the same order (as the captions table is).
    """
    caption_images = torch.as_tensor(list(caption_image_ids))
    position = {int(i): k for k, i in enumerate(image_ids)}
    owner = torch.tensor([position[int(i)] for i in caption_images.tolist()])
    if owner.numel() and bool((owner[1:] < owner[:-1]).any()):
        raise InputError("the captions table must list captions grouped by image, in the images table's order. "
                         "Fix: rerun `prepare`, which writes both tables")
    count = torch.bincount(owner, minlength=len(position))
    if bool((count == 0).any()):
        raise InputError("every train image needs at least one caption. Fix: rerun `prepare`, which drops nothing "
                         "silently, or give the image a caption in the annotation file")
    first = torch.cumsum(count, 0) - count
    return first, count.float()



def _curve_stride(steps: int) -> int:
    """Largest divisor of `steps` up to steps/20, so the logged curve has ~20 points."""
    return max(d for d in range(1, max(1, steps // 20) + 1) if steps % d == 0)
