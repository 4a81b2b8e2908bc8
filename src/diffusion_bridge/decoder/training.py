"""Text-only training of the prefix captioner (ClipCap objective), with the checkpoint chosen by validation.

The data live on the device as three tensors (inputs, pre-padded tokens, lengths); a batch is an index
into them, so there is no DataLoader and no per-row Python work. The loss is read back once per epoch.
Given a workdir, every epoch ends with a checkpoint (`runs.py`) and a rerun resumes from the last one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from diffusion_bridge.errors import ConfigError, InputError
from diffusion_bridge.progress import progress_bar
from diffusion_bridge.training.checkpoint import tensor_digest
from diffusion_bridge.training.optim import lr_scheduler, make_optimizer
from diffusion_bridge.training.precision import PRECISIONS, Precision, optimizer_step

from .model import PrefixCaptioner
from .runs import Progress, load_epoch, run_fingerprint, run_folder, save_epoch
from .vocabulary import CaptionVocabulary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecoderTrainConfig:
    """Settings of `train_decoder`; defaults are the reference's COCO run (configs/coco.yaml)."""

    epochs: int = 10  # reference: lightning.trainer.max_epochs
    batch_size: int = 40  # reference: train.batch_size
    lr: float = 2e-5  # reference: lightning.trainer.lr
    warmup_steps: int = 5000  # reference: linear_schedule_with_warmup, then linear decay to 0
    weight_decay: float = 0.01  # reference uses torch's AdamW default
    noise_std: float = 0.0  # CapDec noise injection: sqrt(0.016) ~ 0.126 in the paper's baselines
    precision: str = "fp16"  # reference: 16-bit mixed precision; only ever applied on CUDA
    seed: int = 0
    max_tokens: int | None = None  # caption tokens incl. the end token; None = the longest caption
    eval_every_epoch: bool = True  # False: validate once, after the last epoch

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"decoder training {name}={value!r} must be > 0.")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.noise_std < 0:
            raise ConfigError(
                f"warmup_steps={self.warmup_steps}, weight_decay={self.weight_decay}, "
                f"noise_std={self.noise_std} must all be >= 0."
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision={self.precision!r} is not one of {sorted(PRECISIONS)}; set it in the decoder parameters."
            )
        if self.max_tokens is not None and self.max_tokens < 2:
            raise ConfigError(f"max_tokens={self.max_tokens} must leave room for a word and the end token.")


@dataclass
class DecoderTrainResult:
    """The chosen weights (on CPU), when they were chosen and the per-epoch record."""

    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    best_score: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    max_tokens: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    complete: bool = True  # False when `stop_after_epochs` ended the run early
    run_dir: str | None = None  # the run's folder under the workdir, when checkpointed


class TokenisedCaptions(NamedTuple):
    """Captions encoded once, end token appended, right-padded: what several decoders of one vocabulary share."""

    tokens: torch.Tensor  # [N, L] token ids, `pad_id` after each caption's end
    lengths: torch.Tensor  # [N] tokens per caption, its end token included


def caption_tokens(vocab: CaptionVocabulary, captions: Sequence[str],
                   max_tokens: int | None = None) -> TokenisedCaptions:
    """Every caption encoded once, end token appended, right-padded (at most `max_tokens` each)."""
    encoded = [ids + [vocab.eos_id] for ids in vocab.encode(list(captions))]
    if max_tokens is not None:
        encoded = [ids if len(ids) <= max_tokens else ids[: max_tokens - 1] + [vocab.eos_id] for ids in encoded]
    lengths = torch.tensor([len(ids) for ids in encoded], dtype=torch.long)
    tokens = torch.full((len(encoded), int(lengths.max())), vocab.pad_id, dtype=torch.long)
    for row, ids in enumerate(encoded):
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return TokenisedCaptions(tokens, lengths)


def _check_inputs(model: PrefixCaptioner, vocab: CaptionVocabulary, embeddings: torch.Tensor,
                  captions: TokenisedCaptions, max_tokens: int | None) -> None:
    model.check_embeddings(embeddings, "training embeddings")
    if captions.tokens.shape[0] != embeddings.shape[0] or captions.lengths.shape != captions.tokens.shape[:1]:
        raise InputError(
            f"{embeddings.shape[0]} training embeddings but {captions.tokens.shape[0]} captions "
            f"({captions.lengths.shape[0]} lengths); pass one caption per embedding row, in the same order."
        )
    if max_tokens is not None and captions.tokens.shape[1] > max_tokens:
        raise InputError(
            f"captions were tokenised to {captions.tokens.shape[1]} tokens but max_tokens={max_tokens}; "
            "tokenise them with the same max_tokens (caption_tokens) or pass the caption strings."
        )
    if not torch.isfinite(embeddings).all():
        raise InputError("training embeddings contain NaN or inf; recompute them before training.")
    if vocab.vocab_size > model.vocab_size:
        raise InputError(
            f"vocabulary has {vocab.vocab_size} tokens but the decoder's softmax has {model.vocab_size}; "
            "build the decoder with vocab_size=vocab.vocab_size."
        )
    if captions.tokens.numel() and int(captions.tokens.max()) >= vocab.vocab_size:
        raise InputError(
            f"token id {int(captions.tokens.max())} is outside the {vocab.vocab_size}-token vocabulary: the captions "
            "were tokenised with another vocabulary; tokenise them with this decoder's."
        )


def _cpu_copy(model: PrefixCaptioner) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train_decoder(model: PrefixCaptioner, vocab: CaptionVocabulary, embeddings: torch.Tensor,
                  captions: Sequence[str] | TokenisedCaptions, config: DecoderTrainConfig,
                  validate: Callable[[PrefixCaptioner], float] | None = None,
                  progress: bool = True, *, workdir: str | Path | None = None, validation_key: Any = None,
                  stop_after_epochs: int | None = None) -> DecoderTrainResult:
    """Train on (embedding, caption) pairs; keep the weights with the best `validate` score (higher wins).

    `embeddings` [N, D] are already unit vectors in the decoder's input space; `captions` are their N captions,
    as text or already tokenised with `vocab` (decoders trained on one caption set share one tokenisation).
    With `noise_std` > 0, Gaussian noise is added and the result re-normalised (CapDec). The model is left
    holding the chosen weights, in eval mode. Runs on whatever device the model is on; seeded, and deterministic on CPU.

    With `workdir`, the run checkpoints into `workdir/<fingerprint>/` after every epoch and a rerun resumes
    from the last complete epoch, ending bit-identical to an uninterrupted run (a finished run is returned
    without training). `validation_key` (JSON-able: the validation data's digest, the metric) joins the
    fingerprint, since `validate` itself cannot be compared. `stop_after_epochs` ends the run after that
    many epochs, as an interruption would (the result then has `complete=False`).
    """
    if not isinstance(captions, TokenisedCaptions):
        captions = caption_tokens(vocab, captions, config.max_tokens)
    _check_inputs(model, vocab, embeddings, captions, config.max_tokens)
    device = next(model.parameters()).device
    tokens, lengths = captions
    if model.prefix_length + tokens.shape[1] > model.max_positions:
        raise InputError(
            f"captions of up to {tokens.shape[1]} tokens plus a {model.prefix_length}-token prefix exceed the "
            f"decoder's {model.max_positions} positions; set max_tokens or build it with larger n_positions."
        )
    if stop_after_epochs is not None and stop_after_epochs < 1:
        raise ConfigError(f"stop_after_epochs={stop_after_epochs} must be >= 1 (or None to train every epoch).")
    data = embeddings.to(device=device, dtype=torch.float32)
    tokens_d = tokens.to(device)
    mask_d = torch.arange(tokens.shape[1], device=device) < lengths.to(device)[:, None]
    folder = fingerprint = None
    if workdir is not None:  # before any step: the fingerprint holds the initial weights
        fingerprint = run_fingerprint(model, asdict(config), device, tensor_digest(data, tokens, lengths), validation_key)
        folder = run_folder(workdir, fingerprint)

    n = data.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    # Weight decay on every parameter, as the reference's `AdamW(model.parameters())` (not matrices only).
    optimizer = make_optimizer("adamw", [{"params": list(model.parameters()), "weight_decay": config.weight_decay}],
                               config.lr, device=device)
    optimizer.zero_grad(set_to_none=True)
    schedule = lr_scheduler(optimizer, "linear", config.warmup_steps, total_steps)  # the reference's schedule
    precision = Precision(config.precision, device)
    scaler = precision.grad_scaler()

    end = config.epochs if stop_after_epochs is None else min(config.epochs, stop_after_epochs)
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)  # dropout inside GPT-2
        generators = {"order": torch.Generator().manual_seed(config.seed),
                      "noise": torch.Generator(device=device).manual_seed(config.seed + 1)}
        state = Progress()
        if folder is not None:
            resumed = load_epoch(folder, fingerprint, model, optimizer, schedule, scaler, generators, device)
            if resumed is not None:
                state = resumed
                log.info("decoder: resuming %s after epoch %d of %d", folder, state.epoch, config.epochs)
        with progress_bar(total=total_steps, initial=state.epoch * steps_per_epoch, desc="decoder",
                          enabled=progress) as bar:
            for epoch in range(state.epoch + 1, end + 1):
                started = time.perf_counter()
                loss = _train_epoch(model, data, tokens_d, mask_d, lengths, config, optimizer, schedule, scaler,
                                    precision, generators, bar)
                record = {"epoch": epoch, "train_loss": loss, "lr": schedule.get_last_lr()[0], "val_score": None}
                last = epoch == config.epochs
                if validate is not None and (config.eval_every_epoch or last):
                    model.eval()
                    record["val_score"] = float(validate(model))
                record["seconds"] = time.perf_counter() - started
                state.history.append(record)
                bar.set_postfix(loss=f"{record['train_loss']:.3f}", val=record["val_score"])
                log.info("decoder epoch %d: %s", epoch, record)

                score = record["val_score"]
                improved = score is not None and (state.best_score is None or score > state.best_score)
                if improved or (validate is None and last):
                    state.best_state, state.best_score, state.best_epoch = _cpu_copy(model), score, epoch
                state.epoch = epoch
                if folder is not None:
                    save_epoch(folder, fingerprint, model, state, optimizer, schedule, scaler, generators, device)

    if state.best_state is None:  # validate kept returning nothing better than nothing: keep the last weights
        state.best_state, state.best_epoch = _cpu_copy(model), state.epoch
    model.load_state_dict(state.best_state)
    model.eval()
    return DecoderTrainResult(state.best_state, state.best_epoch, state.best_score, state.history, total_steps,
                              int(tokens.shape[1]), asdict(config), complete=state.epoch == config.epochs,
                              run_dir=None if folder is None else str(folder))


def _train_epoch(model: PrefixCaptioner, data: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                 lengths: torch.Tensor, config: DecoderTrainConfig, optimizer: torch.optim.Optimizer,
                 schedule: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler | None,
                 precision: Precision, generators: dict[str, torch.Generator], bar) -> float:
    """One pass over the data in a seeded random order; the mean batch loss."""
    model.train()
    loss_sum = torch.zeros((), device=data.device)
    batches = torch.randperm(data.shape[0], generator=generators["order"]).split(config.batch_size)
    for batch in batches:
        length = int(lengths[batch].max())  # CPU tensors: no device sync
        rows = batch.to(data.device, non_blocking=True)
        x = data[rows]
        if config.noise_std > 0:
            noise = torch.randn(x.shape, generator=generators["noise"], device=data.device)
            x = F.normalize(x + config.noise_std * noise, dim=-1)
        with precision.autocast():
            loss = model.loss(x, tokens[rows, :length], mask[rows, :length])
        optimizer_step(loss, optimizer, scaler, model.parameters())
        schedule.step()
        loss_sum += loss.detach()
        bar.update(1)
    return float(loss_sum) / len(batches)
