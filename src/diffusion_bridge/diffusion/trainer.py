"""The diffusion training loop, on one device or many (accelerate/DDP), resumable bit for bit.

The whole training set sits on the device; every step draws the GLOBAL batch (indices, t, noise) from
one seeded generator that all ranks share, and each rank takes its slice — so the result does not
depend on the number of processes, and a checkpoint (which stores the generator state) resumes the
exact same stream. The host syncs only every `log_every` steps.

Read `train` first: the loop on one screen. Its helpers follow in the order it calls them: the runtime
(device and ranks), the live state, the batch function, the step function, evaluation, checkpoints.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from diffusion_bridge.checks import require_finite
from diffusion_bridge.errors import CheckpointError, ConfigError, InputError, WorkdirError
from diffusion_bridge.progress import progress_bar
from diffusion_bridge.serialization import jsonable
from diffusion_bridge.training import (
    LR_SCHEDULES,
    PRECISIONS,
    Precision,
    accelerator_for,
    capture_rng,
    lr_scheduler,
    make_optimizer,
    param_groups,
    read_training_state,
    restore_rng,
    tensor_digest,
)
from diffusion_bridge.training.optim import OPTIMIZERS
from diffusion_bridge.training.precision import optimizer_step

from .checkpoints import (
    check_state_dict,
    load_weights,
    read_checkpoint_config,
    resolve_checkpoint,
    save_checkpoint,
)
from .model import DiffusionModel
from .validation import check_val_timesteps, validate

CHECKPOINT_NAME = "checkpoint"
STATE_FORMAT = 3  # training_state.pt layout; 2 had no lr_scheduler, 1 kept RNG states under other keys
# Fields that may change between a run and its resumption: they do not touch the numbers.
BOOKKEEPING_FIELDS = frozenset({"log_every", "eval_every", "checkpoint_every", "compile", "val_timesteps"})
Evaluate = Callable[[DiffusionModel, Tensor], dict[str, float]]


@dataclass
class TrainConfig:
    """Optimisation settings; defaults are the reference trainer's (ddpm/train_norm.py + Trainer1D)."""

    steps: int = 100_000
    batch_size: int = 64  # reference: train_batch_size=64
    lr: float = 8e-5  # reference: train_lr=8e-5
    betas: tuple[float, float] = (0.9, 0.99)  # reference: adam_betas
    weight_decay: float = 0.0  # reference: plain Adam, no decay
    warmup_steps: int = 0  # reference: none
    # transformers' schedules after a linear warm-up from 0: constant (reference), cosine (to min_lr_ratio·lr), linear (to 0)
    lr_schedule: str = "constant"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # reference: max_grad_norm=1
    ema_decay: float = 0.995  # reference: ema_decay=0.995
    ema_every: int = 10  # reference: ema_pytorch update_every=10
    ema_start: int = 100  # ema-pytorch update_after_step=100: copy the weights until then
    ema_power: float = 2 / 3  # ema-pytorch warm-up: decay = min(ema_decay, 1 - (1 + n)^-power)
    precision: str = "bf16"  # autocast dtype on CUDA (reference: fp16); CPU always runs fp32
    compile: bool = False
    log_every: int = 100
    eval_every: int = 5_000  # 0 disables validation
    # validation measures cos(x0_hat, x0) after noising to exactly these t: the paper's t0 ablation (Table 4)
    val_timesteps: tuple[int, ...] = (100, 200, 400, 600, 800)
    checkpoint_every: int = 10_000  # reference: save_and_sample_every=10000
    seed: int = 0
    optimizer: str = "adam"  # reference: Adam; or "adamw" (decay on matrices only)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        self.val_timesteps = tuple(int(t) for t in self.val_timesteps)
        problems = []
        for name in ("steps", "batch_size", "log_every", "ema_every"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0 (got {getattr(self, name)})")
        for name in ("warmup_steps", "eval_every", "checkpoint_every", "ema_start"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0 (got {getattr(self, name)})")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f"lr_schedule must be one of {list(LR_SCHEDULES)} (got {self.lr_schedule!r})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {sorted(PRECISIONS)} (got {self.precision!r})")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {sorted(OPTIMIZERS)} (got {self.optimizer!r})")
        if any(t < 0 for t in self.val_timesteps):
            problems.append(f"val_timesteps must be >= 0 (got {list(self.val_timesteps)})")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay must be in [0, 1) (got {self.ema_decay})")
        if problems:
            raise ConfigError("invalid TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "betas": list(self.betas), "val_timesteps": list(self.val_timesteps)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a plain dict (e.g. Kedro parameters), rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown TrainConfig keys {unknown}; valid keys are {sorted(known)}")
        return cls(**values)


@dataclass(frozen=True)
class RunOptions:
    """How this invocation runs. None of it changes the numbers, so none of it is checked on resume."""

    device: str | torch.device | None = None  # None: CUDA when available (under a DDP launch: the rank's device)
    progress: bool = True
    stop_after: int | None = None  # end (with a checkpoint) after this many steps, as an interruption would
    evaluate: Evaluate | None = None  # replaces `validate` (seeded with config.seed) every eval_every steps


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

    def summary(self) -> dict[str, Any]:
        """The run's record (JSON-ready): settings, size, speed, steps, history and the last validation."""
        return {
            "model": self.model.config,
            "train": self.config.to_dict(),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "samples_per_s": self.samples_per_s,
            "steps": self.step,
            "history": self.history,
            "final_validation": self.history["val"][-1] if self.history.get("val") else {},
        }

    def ema_model(self) -> DiffusionModel:
        """A copy of the model carrying the EMA weights."""
        model = DiffusionModel.from_config(self.model.config).to(next(self.model.parameters()).device)
        model.load_state_dict(self.ema_state_dict)
        return model


class EMA:
    """EMA of the weights as ema-pytorch (>= 0.6.4) keeps it for the reference's Trainer1D.

    Updated after optimizer step k (0-based): a plain copy at the first update and whenever k <= start
    (k % every == 0), then, every `every` steps, a lerp toward the weights with decay
    min(ema_decay, 1 - (1 + k - start)^-power) (ema-pytorch's warm-up, inv_gamma 1).
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
        if self.initted and step % self.config.ema_every:
            return
        live = model.state_dict()
        shadow = [self.shadow[k] for k in live]
        current = [v.float() for v in live.values()]
        if not self.initted or step <= self.config.ema_start:
            torch._foreach_copy_(shadow, current)
            self.initted = True
        else:
            torch._foreach_lerp_(shadow, current, 1.0 - self.decay(step))


def train(
    model: DiffusionModel,
    x0_train: Tensor,
    x0_val: Tensor | None,
    config: TrainConfig | dict[str, Any],
    workdir: str | Path,
    options: RunOptions | None = None,
) -> TrainResult:
    """Train `model` on x0 vectors (already in diffusion space, [N, dim]) and checkpoint into `workdir`.

    Resumes exactly from `workdir/checkpoint` when it was written by the same model config, TrainConfig
    and data; raises WorkdirError when it was not. Under `accelerate launch` or torchrun it runs DDP, one
    rank per process. History rows carry `time_s`, the cumulative training wall time (validation and
    checkpoints excluded).
    """
    config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    options = options or RunOptions()
    _check_inputs(model, x0_train, x0_val, config)
    rt = _Runtime(config, options.device)
    state = _State.fresh(model, config, rt.device)
    data = _describe(x0_train, x0_val)
    checkpoint_dir = Path(workdir) / CHECKPOINT_NAME
    if (found := resolve_checkpoint(checkpoint_dir)) is not None:
        _resume(state, found, config, data)
    get_batch = _batch_fn(x0_train, model.num_timesteps, config, state.generator, rt)
    train_step = _step_fn(state, config, rt)

    start = state.step
    end = config.steps if options.stop_after is None else min(config.steps, options.stop_after)
    clock = _Clock(rt.device, before=state.train_time_s)
    meter = _Meter(rt, config.batch_size, start, clock.seconds())
    bar = progress_bar(total=config.steps, initial=start, desc="diffusion", enabled=options.progress and rt.is_main)
    for step in range(start, end):
        lr = state.scheduler.get_last_lr()[0]
        meter.add(train_step(step, *get_batch()))
        done = step + 1
        bar.update(1)
        if done % config.log_every == 0 or done == end:
            row = meter.row(done, clock.seconds(), lr)
            state.history["train"].append(row)
            bar.set_postfix(loss=f"{row['loss']:.4g}", samples_s=f"{row['samples_per_s']:,.0f}")
        evaluating = x0_val is not None and config.eval_every > 0 and (done % config.eval_every == 0 or done == config.steps)
        saving = (config.checkpoint_every > 0 and done % config.checkpoint_every == 0) or done == end
        if not (evaluating or saving):
            continue
        with clock.paused():
            if evaluating and rt.is_main:
                metrics = _evaluate(state.model, x0_val, config, options.evaluate)
                state.history["val"].append({"step": done, "time_s": clock.seconds(), **metrics})
                if options.progress:
                    bar.write(f"step {done}: val {_summary(metrics)}")
            if saving:
                state.step, state.train_time_s = done, clock.seconds()
                state.samples_per_s = _rate(done - start, config.batch_size, clock.session) or state.samples_per_s
                _save(state, checkpoint_dir, config, data, rt)
    bar.close()
    if end > start:
        state.samples_per_s = _rate(end - start, config.batch_size, clock.session)
    return TrainResult(state.model, state.ema.shadow, state.history, state.samples_per_s, max(start, end),
                       checkpoint_dir, config)


class _Runtime:
    """This process: one device, or one rank of an accelerate/torchrun (DDP) launch.

    Under a launcher the Accelerator is built from the run's own precision (`accelerator_for`): a launch
    with another `--mixed_precision` (or a saved accelerate config) is refused instead of silently winning.
    """

    def __init__(self, config: TrainConfig, device: str | torch.device | None):
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        launched = int(os.environ.get("WORLD_SIZE", "1")) > 1 or "ACCELERATE_MIXED_PRECISION" in os.environ
        self.accelerator = accelerator_for(config.precision, cpu=device.type == "cpu") if launched else None
        if self.accelerator is None:
            self.device = device
            self.world, self.rank, self.is_main = 1, 0, True
        else:
            self.device = self.accelerator.device
            self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
            self.is_main = self.accelerator.is_main_process
        if config.batch_size % self.world:
            raise ConfigError(
                f"batch_size {config.batch_size} is the global batch and must divide evenly over {self.world} processes"
            )

    def wrap(self, model: nn.Module) -> nn.Module:
        return self.accelerator.prepare_model(model) if self.world > 1 else model

    def barrier(self) -> None:
        if self.world > 1:
            self.accelerator.wait_for_everyone()

    def mean(self, value: Tensor) -> Tensor:
        return self.accelerator.reduce(value, "mean") if self.world > 1 else value


@dataclass
class _State:
    """The live training state: everything a checkpoint holds, besides the settings and the data's description."""

    model: DiffusionModel
    ema: EMA
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler  # stepped once per optimizer step
    scaler: torch.amp.GradScaler | None  # loss scaling, whenever fp16 runs
    generator: torch.Generator  # draws every batch (rows, t, noise), shared by all ranks
    step: int = 0
    history: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {"train": [], "val": []})
    train_time_s: float = 0.0  # over all sessions; validation and checkpoints excluded
    samples_per_s: float = 0.0

    @classmethod
    def fresh(cls, model: DiffusionModel, config: TrainConfig, device: torch.device) -> _State:
        model.to(device).train()
        torch.manual_seed(config.seed)  # dropout, if a denoiser uses it
        ema = EMA(model, config)
        # fused kernels wherever torch has them (CPU too), as this trainer always has: resumes stay exact
        optimizer = make_optimizer(config.optimizer, param_groups(model, config.weight_decay), config.lr,
                                   config.betas, device, fused=True)
        scheduler = lr_scheduler(optimizer, config.lr_schedule, config.warmup_steps, config.steps, config.min_lr_ratio)
        scaler = Precision(config.precision, device).grad_scaler()
        return cls(model, ema, optimizer, scheduler, scaler, torch.Generator(device=device).manual_seed(config.seed))


def _batch_fn(x0_train: Tensor, num_timesteps: int, config: TrainConfig, generator: torch.Generator,
              rt: _Runtime) -> Callable[[], tuple[Tensor, Tensor, Tensor]]:
    """A function drawing the global batch (rows, t, noise) and returning this rank's slice of it."""
    x0 = x0_train.to(rt.device, torch.float32)
    n, dim, size = x0.shape[0], x0.shape[1], config.batch_size
    local = slice(rt.rank * size // rt.world, (rt.rank + 1) * size // rt.world)

    def get_batch() -> tuple[Tensor, Tensor, Tensor]:
        rows = torch.randint(0, n, (size,), generator=generator, device=rt.device)
        t = torch.randint(0, num_timesteps, (size,), generator=generator, device=rt.device)
        noise = torch.randn((size, dim), generator=generator, device=rt.device)
        return x0[rows[local]], t[local], noise[local]

    return get_batch


def _step_fn(state: _State, config: TrainConfig, rt: _Runtime) -> Callable[[int, Tensor, Tensor, Tensor], Tensor]:
    """A function taking optimizer step `step` on one batch (then updating the EMA); it returns the loss."""
    precision = Precision(config.precision, rt.device)
    net = rt.wrap(state.model)
    forward = torch.compile(net) if config.compile else net

    def train_step(step: int, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        with precision.autocast():
            loss = forward(x0, t, noise)
        optimizer_step(loss, state.optimizer, state.scaler, state.model.parameters(), config.grad_clip)
        state.scheduler.step()
        state.ema.update(state.model, step)
        return loss

    return train_step


def _evaluate(model: DiffusionModel, x0_val: Tensor, config: TrainConfig, evaluate: Evaluate | None) -> dict[str, float]:
    if evaluate is not None:
        return evaluate(model, x0_val)
    return validate(model, x0_val, config.val_timesteps, generator=torch.Generator().manual_seed(config.seed))


def _summary(metrics: dict[str, float]) -> str:
    """A validation's headline for the progress bar: every metric but the per-band losses."""
    return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if not k.startswith("loss/"))


def _describe(x0_train: Tensor, x0_val: Tensor | None) -> dict[str, Any]:
    """What a checkpoint records of its data, and what resuming compares."""
    return {
        "fingerprint": tensor_digest(x0_train, *([] if x0_val is None else [x0_val])),
        "train_shape": list(x0_train.shape),
        "val_shape": None if x0_val is None else list(x0_val.shape),
    }


def _save(state: _State, directory: Path, config: TrainConfig, data: dict[str, Any], rt: _Runtime) -> None:
    """All ranks meet; the main one writes everything needed to resume exactly."""
    rt.barrier()
    if rt.is_main:
        save_checkpoint(
            directory, state.model, ema_state=state.ema.shadow, train_config=config.to_dict(), data=data,
            training_state={
                "format_version": STATE_FORMAT,
                "step": state.step,
                "optimizer": state.optimizer.state_dict(),
                "lr_scheduler": state.scheduler.state_dict(),
                "scaler": state.scaler.state_dict() if state.scaler is not None else {},
                "rng": capture_rng({"batches": state.generator}, rt.device),
                "ema_initted": state.ema.initted,
                "history": state.history,
                "samples_per_s": state.samples_per_s,
                "train_time_s": state.train_time_s,
                "world_size": rt.world,
                "device_type": rt.device.type,
            },
        )
    rt.barrier()


def _resume(state: _State, found: Path, config: TrainConfig, data: dict[str, Any]) -> None:
    """Load everything the checkpoint at `found` holds into the live state."""
    diffs = _config_differences(read_checkpoint_config(found), state.model, config, data)
    if diffs:
        raise WorkdirError(
            f"{found} holds a checkpoint of a different run: " + "; ".join(diffs)
            + f". Choose another workdir, or delete {found} to start over."
        )
    saved = read_training_state(found)
    if saved.get("format_version") != STATE_FORMAT:
        raise CheckpointError(
            f"{found}: training_state.pt has format {saved.get('format_version')!r}, this trainer resumes format "
            f"{STATE_FORMAT}. Its weights still load (load_model); to train on, delete {found} or use another workdir"
        )
    device = next(state.model.parameters()).device
    weights = load_weights(found, "raw", device)
    check_state_dict(state.model.state_dict(), weights, str(found), "Delete the checkpoint or use another workdir.")
    state.model.load_state_dict(weights)
    state.ema.shadow = {k: v.float() for k, v in load_weights(found, "ema", device).items()}
    state.ema.initted = saved["ema_initted"]
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["lr_scheduler"])
    if state.scaler is not None and saved["scaler"]:
        state.scaler.load_state_dict(saved["scaler"])
    state.step, state.history = saved["step"], saved["history"]
    state.train_time_s, state.samples_per_s = saved["train_time_s"], saved["samples_per_s"]
    if saved["device_type"] == device.type:
        restore_rng(saved["rng"], {"batches": state.generator}, device)
        return
    # CPU and CUDA generators have different states: continue on a fresh, still seeded stream
    torch.set_rng_state(saved["rng"]["torch"])
    if state.step < config.steps:
        state.generator.manual_seed(config.seed + state.step)
        warnings.warn(
            f"{found} was written on {saved['device_type']} and is resumed on {device.type}: training continues "
            "from the saved weights and optimizer, but not bit-identically to an uninterrupted run",
            stacklevel=3,
        )


def _check_inputs(model: DiffusionModel, x0_train: Tensor, x0_val: Tensor | None, config: TrainConfig) -> None:
    _check_data(model, x0_train, "x0_train")
    _check_data(model, x0_val, "x0_val")
    if x0_val is not None and config.eval_every > 0:
        check_val_timesteps(config.val_timesteps, model.num_timesteps)


def _check_data(model: DiffusionModel, x: Tensor | None, name: str) -> None:
    if x is None:
        return
    if x.ndim != 2 or x.shape[1] != model.dim or x.shape[0] == 0:
        raise InputError(
            f"{name} has shape {tuple(x.shape)} but the model expects [N, {model.dim}] with N > 0; "
            f"build the model with dim={x.shape[-1]} or pass the embeddings of the matching CLIP model"
        )
    require_finite(x, name, fix="recompute the embeddings (rerun `prepare`); a NaN would poison every step")


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
    """Training wall time: paused around validation and checkpoints. Reading it syncs the device, so queued
    kernels are counted where they ran; `seconds()` adds the time of earlier sessions."""

    def __init__(self, device: torch.device, before: float = 0.0):
        self.device, self.before, self.session, self.running = device, before, 0.0, True
        self.mark = time.perf_counter()

    def seconds(self) -> float:
        if self.running:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            now = time.perf_counter()
            self.session, self.mark = self.session + now - self.mark, now
        return self.before + self.session

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.seconds()
        self.running = False
        try:
            yield
        finally:
            self.running, self.mark = True, time.perf_counter()


class _Meter:
    """The mean loss and samples/s since the last log row; the loss is summed on the device, so a row is the
    loop's only host sync."""

    def __init__(self, rt: _Runtime, batch_size: int, step: int, seconds: float):
        self.rt, self.batch_size, self.step, self.seconds = rt, batch_size, step, seconds
        self.loss_sum = torch.zeros((), device=rt.device)

    def add(self, loss: Tensor) -> None:
        self.loss_sum += loss.detach()

    def row(self, step: int, seconds: float, lr: float) -> dict[str, float]:
        loss = self.rt.mean(self.loss_sum).item() / (step - self.step)
        rate = _rate(step - self.step, self.batch_size, seconds - self.seconds)
        self.loss_sum.zero_()
        self.step, self.seconds = step, seconds
        return {"step": step, "loss": loss, "lr": lr, "samples_per_s": rate, "time_s": seconds}


def _rate(steps: int, batch_size: int, seconds: float) -> float:
    return steps * batch_size / seconds if seconds > 0 else 0.0
