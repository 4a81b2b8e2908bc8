"""The training loop: nanoGPT-shaped, on one device or many (accelerate/DDP), resumable bit for bit.

The whole training set sits on the device; every step draws the GLOBAL batch (indices, t, noise) from
one seeded generator that all ranks share, and each rank takes its slice — so the result does not
depend on the number of processes, and a checkpoint (which stores the generator state) resumes the
exact same stream. The host syncs only every `log_every` steps.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from diffusion_bridge.checks import require_finite
from diffusion_bridge.errors import ConfigError, InputError, WorkdirError
from diffusion_bridge.progress import progress_bar
from diffusion_bridge.serialization import jsonable

from .checkpoints import (
    check_state_dict,
    data_fingerprint,
    load_training_state,
    load_weights,
    read_checkpoint_config,
    resolve_checkpoint,
    save_checkpoint,
)
from .model import DiffusionModel
from .validation import validate

CHECKPOINT_NAME = "checkpoint"
# Fields that may change between a run and its resumption: they do not touch the numbers.
BOOKKEEPING_FIELDS = frozenset({"log_every", "eval_every", "checkpoint_every", "compile"})








@dataclass
class TrainConfig:
    """Optimisation settings; defaults are the reference trainer's (ddpm/train_norm.py + Trainer1D)."""

    steps: int = 100_000
    batch_size: int = 64  # reference: train_batch_size=64
    lr: float = 8e-5  # reference: train_lr=8e-5
    betas: tuple[float, float] = (0.9, 0.99)  # reference: adam_betas
    weight_decay: float = 0.0  # reference: plain Adam, no decay
    warmup_steps: int = 0  # reference: none
    lr_schedule: str = "constant"  # reference: constant; or "cosine" (to min_lr_ratio·lr after warm-up)
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # reference: max_grad_norm=1
    ema_decay: float = 0.995  # reference: ema_decay=0.995
    ema_every: int = 10  # reference: ema_pytorch update_every=10
    ema_start: int = 100  # ema_pytorch update_after_step=100: copy the weights until then
    ema_power: float = 2 / 3  # ema_pytorch warm-up: decay = min(ema_decay, 1 - (1 + n)^-power)
    precision: str = "bf16"  # autocast dtype on CUDA (reference: fp16); CPU always runs fp32
    compile: bool = False
    log_every: int = 100
    eval_every: int = 5_000  # 0 disables validation
    checkpoint_every: int = 10_000  # reference: save_and_sample_every=10000
    seed: int = 0
    optimizer: str = "adam"  # reference: Adam; or "adamw" (decay on matrices only)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        problems = []
        for name in ("steps", "batch_size", "log_every", "ema_every"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0 (got {getattr(self, name)})")
        for name in ("warmup_steps", "eval_every", "checkpoint_every", "ema_start"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0 (got {getattr(self, name)})")
        if self.lr_schedule not in ("constant", "cosine"):
            problems.append(f"lr_schedule must be 'constant' or 'cosine' (got {self.lr_schedule!r})")
        if self.precision not in ("fp32", "bf16", "fp16"):
            problems.append(f"precision must be 'fp32', 'bf16' or 'fp16' (got {self.precision!r})")
        if self.optimizer not in ("adam", "adamw"):
            problems.append(f"optimizer must be 'adam' or 'adamw' (got {self.optimizer!r})")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay must be in [0, 1) (got {self.ema_decay})")
        if problems:
            raise ConfigError("invalid TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "betas": list(self.betas)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a plain dict (e.g. Kedro parameters), rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown TrainConfig keys {unknown}; valid keys are {sorted(known)}")
        return cls(**values)


@dataclass
class TrainResult:
    """What a training run leaves: the final raw model, its EMA weights, the logged history."""

    model: DiffusionModel
    ema_state_dict: dict[str, Tensor]
    history: dict[str, list[dict[str, float]]]
    samples_per_s: float
    step: int
    checkpoint_dir: Path
    config: TrainConfig = field(default_factory=TrainConfig)

    def ema_model(self) -> DiffusionModel:
        """A copy of the model carrying the EMA weights."""
        model = DiffusionModel.from_config(self.model.config).to(next(self.model.parameters()).device)
        model.load_state_dict(self.ema_state_dict)
        return model


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for the 0-based `step`: linear warm-up, then constant or cosine decay."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return config.lr
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class EMA:
    """EMA of the weights with ema_pytorch's schedule (as the reference's Trainer1D uses it).

    Updated after optimizer step k (0-based) when k % every == 0: a plain copy while k <= start,
    then lerp toward the weights with decay min(ema_decay, 1 - (1 + k - start)^-power).
    """

    def __init__(self, model: nn.Module, config: TrainConfig):
        self.config = config
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
        self.initted = False

    def decay(self, step: int) -> float:
        epoch = step - self.config.ema_start
        if epoch <= 0:
            return 0.0
        return min(self.config.ema_decay, max(0.0, 1 - (1 + epoch) ** -self.config.ema_power))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        if step % self.config.ema_every:
            return
        live = model.state_dict()
        shadow = [self.shadow[k] for k in live]
        current = [v.float() for v in live.values()]
        if step <= self.config.ema_start or not self.initted:
            torch._foreach_copy_(shadow, current)
            self.initted = step > self.config.ema_start
            if not self.initted:
                return
        torch._foreach_lerp_(shadow, current, 1.0 - self.decay(step))


def _check_data(model: DiffusionModel, x: Tensor | None, name: str) -> None:
    if x is None:
        return
    if x.ndim != 2 or x.shape[1] != model.dim or x.shape[0] == 0:
        raise InputError(
            f"{name} has shape {tuple(x.shape)} but the model expects [N, {model.dim}] with N > 0; "
            f"build the model with dim={x.shape[-1]} or pass the embeddings of the matching CLIP model"
        )
    require_finite(x, name, fix="recompute the embeddings (rerun `prepare`); a NaN would poison every step")


def _make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.weight_decay > 0:  # decay matrices only, as nanoGPT
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": params}]
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    try:
        return cls(groups, lr=config.lr, betas=config.betas, fused=True)
    except (RuntimeError, TypeError):  # fused kernels missing for this device/dtype
        return cls(groups, lr=config.lr, betas=config.betas)



def _config_differences(saved: dict, model: DiffusionModel, config: TrainConfig, data: dict) -> list[str]:
    diffs = []
    for key, now in jsonable(model.config).items():
        if saved.get("model", {}).get(key) != now:
            diffs.append(f"model.{key}: checkpoint {saved.get('model', {}).get(key)!r}, now {now!r}")
    saved_train = saved.get("train") or {}
    for key, now in jsonable(config.to_dict()).items():
        if key not in BOOKKEEPING_FIELDS and saved_train.get(key) != now:
            diffs.append(f"train.{key}: checkpoint {saved_train.get(key)!r}, now {now!r}")
    saved_data = saved.get("data") or {}
    if saved_data.get("fingerprint") != data["fingerprint"]:
        diffs.append(
            f"data: checkpoint trained on train/val shapes {saved_data.get('train_shape')}/"
            f"{saved_data.get('val_shape')}, now {data['train_shape']}/{data['val_shape']} (or other values)"
        )
    return diffs


class _Clock:
    """Wall time of training only: `lap` syncs the device, so queued kernels are counted where they ran."""

    def __init__(self, device: torch.device):
        self.device = device
        self.mark()

    def mark(self) -> None:
        self.t = time.perf_counter()

    def lap(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        elapsed, self.t = now - self.t, now
        return elapsed


class _Runtime:
    """One process on one device, or this rank of an accelerate (DDP) launch."""

    def __init__(self, accelerator: Accelerator | None, device: str | torch.device | None):
        if accelerator is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            accelerator = Accelerator(cpu=device is not None and torch.device(device).type == "cpu")
        self.accelerator = accelerator
        if accelerator is None:
            self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            self.world, self.rank, self.is_main = 1, 0, True
        else:
            self.device = accelerator.device
            self.world, self.rank = accelerator.num_processes, accelerator.process_index
            self.is_main = accelerator.is_main_process

    def wrap(self, model: nn.Module) -> nn.Module:
        return self.accelerator.prepare_model(model) if self.world > 1 else model

    def barrier(self) -> None:
        if self.world > 1:
            self.accelerator.wait_for_everyone()

    def mean(self, value: Tensor) -> Tensor:
        return self.accelerator.reduce(value, "mean") if self.world > 1 else value


def _precision(config: TrainConfig, device: torch.device) -> tuple[Any, torch.amp.GradScaler | None]:
    """(autocast context, grad scaler): mixed precision on CUDA only; fp16 needs a scaler, bf16 does not."""
    if device.type != "cuda" or config.precision == "fp32":
        return nullcontext(), None
    dtype = torch.bfloat16 if config.precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


def _resume(
    found: Path,
    model: DiffusionModel,
    config: TrainConfig,
    data: dict,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    generator: torch.Generator,
) -> tuple[dict, int, float, float]:
    """Load everything a checkpoint holds into the live objects; (history, step, samples/s, train time)."""
    diffs = _config_differences(read_checkpoint_config(found), model, config, data)
    if diffs:
        raise WorkdirError(
            f"{found} holds a checkpoint of a different run: " + "; ".join(diffs)
            + f". Choose another workdir, or delete {found} to start over."
        )
    device = next(model.parameters()).device
    weights = load_weights(found, "raw", device)
    check_state_dict(model.state_dict(), weights, str(found), "Delete the checkpoint or use another workdir.")
    model.load_state_dict(weights)
    ema.shadow = {k: v.float() for k, v in load_weights(found, "ema", device).items()}
    state = load_training_state(found)
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state["device_type"] == device.type:
        generator.set_state(state["generator"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], device)
    elif state["step"] < config.steps:
        # CPU and CUDA generators have different states: continue on a fresh, still seeded stream
        generator.manual_seed(config.seed + state["step"])
        warnings.warn(
            f"{found} was written on {state['device_type']} and is resumed on {device.type}: training continues "
            "from the saved weights and optimizer, but not bit-identically to an uninterrupted run",
            stacklevel=3,
        )
    ema.initted = state["ema_initted"]
    return state["history"], state["step"], state["samples_per_s"], state["train_time_s"]


def _summary(metrics: dict[str, float]) -> str:
    keys = [k for k in ("loss", "cos_x0/t600") if k in metrics] or list(metrics)[:3]
    return ", ".join(f"{k} {metrics[k]:.4g}" for k in keys)


def train(
    model: DiffusionModel,
    x0_train: Tensor,
    x0_val: Tensor | None,
    config: TrainConfig | dict[str, Any],
    workdir: str | Path,
    progress: bool = True,
    stop_after: int | None = None,
    device: str | torch.device | None = None,
    accelerator: Accelerator | None = None,
    evaluate: Callable[[DiffusionModel, Tensor], dict[str, float]] | None = None,
) -> TrainResult:
    """Train `model` on x0 vectors (already in diffusion space, [N, dim]) and checkpoint into `workdir`.

    Resumes exactly from `workdir/checkpoint` when it was written by the same model config, TrainConfig
    and data; raises WorkdirError when it was not. `stop_after` ends the run (with a checkpoint)
    once that many steps are done, as an interruption would. `device` defaults to CUDA when available.
    Under `accelerate launch` (or with an `accelerator`) it runs DDP, one rank per process.
    `evaluate(model, x0_val) -> metrics` replaces `validate` (seeded with config.seed) every `eval_every` steps.
    History rows carry `time_s`, the cumulative training wall time (validation and checkpoints excluded).
    """
    config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    _check_data(model, x0_train, "x0_train")
    _check_data(model, x0_val, "x0_val")
    runtime = _Runtime(accelerator, device)
    device, world, rank = runtime.device, runtime.world, runtime.rank
    if config.batch_size % world:
        raise ConfigError(
            f"batch_size {config.batch_size} is the global batch and must divide evenly over {world} processes"
        )
    local = slice(rank * config.batch_size // world, (rank + 1) * config.batch_size // world)
    workdir = Path(workdir)
    checkpoint_dir = workdir / CHECKPOINT_NAME
    data = {
        "fingerprint": data_fingerprint(x0_train, *([] if x0_val is None else [x0_val])),
        "train_shape": list(x0_train.shape),
        "val_shape": None if x0_val is None else list(x0_val.shape),
    }

    model.to(device).train()
    torch.manual_seed(config.seed)  # dropout, if a denoiser uses it
    ema = EMA(model, config)
    optimizer = _make_optimizer(model, config, device)
    autocast, scaler = _precision(config, device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    history: dict[str, list[dict[str, float]]] = {"train": [], "val": []}
    start, last_rate, time_before = 0, 0.0, 0.0

    found = resolve_checkpoint(checkpoint_dir)
    if found is not None:
        history, start, last_rate, time_before = _resume(found, model, config, data, ema, optimizer, scaler, generator)

    net = runtime.wrap(model)
    forward = torch.compile(net) if config.compile else net
    x0 = x0_train.to(device, torch.float32)
    n, dim, T = x0.shape[0], x0.shape[1], model.num_timesteps
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    clock = _Clock(device)
    train_time = interval_time = 0.0
    loss_sum = torch.zeros((), device=device)
    logged_from = start

    def checkpoint(done: int, rate: float) -> None:
        runtime.barrier()
        if runtime.is_main:
            save_checkpoint(
                checkpoint_dir, model, ema_state=ema.shadow, train_config=config.to_dict(), data=data,
                training_state={
                    "format_version": 1,
                    "step": done,
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else {},
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.empty(0, dtype=torch.uint8),
                    "ema_initted": ema.initted,
                    "history": history,
                    "samples_per_s": rate,
                    "train_time_s": time_before + train_time,
                    "world_size": world,
                    "device_type": device.type,
                },
            )
        runtime.barrier()

    bar = progress_bar(total=config.steps, initial=start, desc="diffusion", enabled=progress and runtime.is_main)
    for step in range(start, end):
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, n, (config.batch_size,), generator=generator, device=device)
        t = torch.randint(0, T, (config.batch_size,), generator=generator, device=device)
        noise = torch.randn((config.batch_size, dim), generator=generator, device=device)
        with autocast:
            loss = forward(x0[idx[local]], t[local], noise[local])
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(model, step)
        loss_sum += loss.detach()
        done = step + 1
        bar.update(1)

        if done % config.log_every == 0 or done == end:
            mean_loss = runtime.mean(loss_sum).item() / (done - logged_from)
            lap = clock.lap()
            train_time, interval_time = train_time + lap, interval_time + lap
            rate = (done - logged_from) * config.batch_size / max(interval_time, 1e-9)
            history["train"].append(
                {"step": done, "loss": mean_loss, "lr": lr, "samples_per_s": rate, "time_s": time_before + train_time}
            )
            bar.set_postfix(loss=f"{mean_loss:.4g}", samples_s=f"{rate:,.0f}")
            loss_sum.zero_()
            logged_from, interval_time = done, 0.0
        is_eval = x0_val is not None and config.eval_every and (done % config.eval_every == 0 or done == config.steps)
        is_ckpt = (config.checkpoint_every and done % config.checkpoint_every == 0) or done == end
        if is_eval or is_ckpt:
            lap = clock.lap()
            train_time, interval_time = train_time + lap, interval_time + lap
            if is_eval and runtime.is_main:
                if evaluate is None:
                    metrics = validate(model, x0_val, generator=torch.Generator().manual_seed(config.seed))
                else:
                    metrics = evaluate(model, x0_val)
                history["val"].append({"step": done, "time_s": time_before + train_time, **metrics})
                if progress:
                    bar.write(f"step {done}: val {_summary(metrics)}")
            if is_ckpt:
                trained = done - start
                last_rate = trained * config.batch_size / train_time if train_time > 0 else last_rate
                checkpoint(done, last_rate)
            clock.mark()
    bar.close()

    if end > start:
        last_rate = (end - start) * config.batch_size / max(train_time, 1e-9)
    return TrainResult(
        model=model,
        ema_state_dict=ema.shadow,
        history=history,
        samples_per_s=last_rate,
        step=max(start, end),
        checkpoint_dir=checkpoint_dir,
        config=config,
    )
