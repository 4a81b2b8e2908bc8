"""Training throughput and time to quality: the reference's training loop vs our trainer.

(a) reference-style loop: Unet1D, batch 64, a DataLoader with workers indexing the in-memory tensor row by
    row, fp16 autocast on CUDA (fp32 on CPU), `loss.item()` every step, Adam 8e-5, clip 1, EMA every 10;
(b) our trainer with the same Unet1D at batch 64;
(c) our trainer with the default MLP at its best batch size (a few are tried).
Then time to quality: training wall time (evaluation excluded) until val cos(x0_hat, x0) at t=600
plateaus, (a) vs (c), on synthetic clustered 512-d vectors.

    python benchmarks/train_throughput.py [--device cuda] [--seconds 8] [--quality-seconds 20]

Prints numbers only; the defaults finish in ~3 minutes on a 2-core CPU. On a GPU, give it more time
(e.g. --seconds 30 --quality-seconds 300) for a meaningful time-to-quality curve.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from _common import device_name  # noqa: I001 (benchmarks/ helper, run as a script)
from diffusion_bridge.diffusion import DiffusionModel, RunOptions, TrainConfig, train
from diffusion_bridge.space import default_radius

DIM = 512
REFERENCE_BATCH = 64


CLUSTERS, SPREAD = 256, 0.04


def cluster_centers() -> torch.Tensor:
    return F.normalize(torch.randn(CLUSTERS, DIM, generator=torch.Generator().manual_seed(1234)), dim=-1)


def clustered_vectors(n: int, seed: int) -> torch.Tensor:
    """Stand-ins for mean-shifted CLIP text vectors: tight clusters on the radius-5 sphere in 512-d."""
    g = torch.Generator().manual_seed(seed)
    x = cluster_centers()[torch.randint(0, CLUSTERS, (n,), generator=g)] + SPREAD * torch.randn(
        n, DIM, generator=g
    )
    return F.normalize(x, dim=-1) * default_radius(DIM)


def bayes_cos600(x_val: torch.Tensor, noise: torch.Tensor) -> float:
    """cos(E[x0 | x_600], x0) of the Bayes posterior mean, treating each cluster as a Gaussian: the ceiling."""
    abar = DiffusionModel(DIM, denoiser_kwargs={"width": 8, "depth": 1}).schedule.alphas_cumprod[600].double()
    scale = default_radius(DIM) / math.sqrt(1 + SPREAD**2 * DIM)  # E||c + spread·ε|| ≈ sqrt(1 + spread²·D)
    means, var = cluster_centers().double() * scale, (SPREAD * scale) ** 2
    x0 = x_val.double()
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise.double()
    marginal_var = abar * var + 1 - abar
    posterior_k = (-torch.cdist(x_t, abar.sqrt() * means).pow(2) / (2 * marginal_var)).softmax(dim=-1)
    gain = abar.sqrt() * var / marginal_var
    x0_hat = (1 - gain * abar.sqrt()) * posterior_k @ means + gain * x_t
    return F.cosine_similarity(x0_hat, x0, dim=-1).mean().item()


def reference_model() -> DiffusionModel:
    torch.manual_seed(0)
    return DiffusionModel(DIM, denoiser="unet1d")  # Unet1D(512, 32, (1, 2, 4, 8)), cosine, pred_x0, SNR, r=5


def mlp_model() -> DiffusionModel:
    torch.manual_seed(0)
    return DiffusionModel(DIM)  # the default residual MLP


class Cos600:
    """mean cos(x0_hat, x0) at t = 600 (the bridge's insertion step) with fixed noise."""

    def __init__(self, x_val: torch.Tensor):
        self.x_val = x_val
        self.noise = torch.randn(x_val.shape, generator=torch.Generator().manual_seed(7))

    @torch.no_grad()
    def __call__(self, model: DiffusionModel, _x_val: torch.Tensor | None = None) -> dict[str, float]:
        device = next(model.parameters()).device
        x0, noise = self.x_val.to(device), self.noise.to(device)
        t = torch.full((x0.shape[0],), 600, device=device)
        was_training = model.training
        model.eval()
        cos = [
            F.cosine_similarity(model.predict(model.schedule.q_sample(a, b, c), b).x0, a, dim=-1)
            for a, b, c in zip(x0.split(512), t.split(512), noise.split(512), strict=True)
        ]
        model.train(was_training)
        return {"cos600": torch.cat(cos).mean().item()}

    def identity(self) -> float:
        """The score of x0_hat = x_t (what a network that only learned the identity gets)."""
        abar = DiffusionModel(DIM, denoiser_kwargs={"width": 8, "depth": 1}).schedule.alphas_cumprod[600]
        x_t = abar.sqrt() * self.x_val + (1 - abar).sqrt() * self.noise
        return F.cosine_similarity(x_t, self.x_val, dim=-1).mean().item()


# ------------------------------------------------------------------ (a) the reference's loop


class RowDataset(Dataset):
    """The reference's Dataset1D: one cloned row per __getitem__."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor.clone()

    def __len__(self) -> int:
        return len(self.tensor)

    def __getitem__(self, idx: int) -> torch.Tensor:
        return self.tensor[idx].clone()


def reference_loop(
    x_train: torch.Tensor,
    device: torch.device,
    seconds: float,
    evaluate: Cos600 | None = None,
    evals: int = 12,
    warmup_steps: int = 1,
) -> tuple[float, list[tuple[float, float]]]:
    """Train as the reference's Trainer1D for `seconds` of training time; (samples/s, [(time_s, cos600)])."""
    model = reference_model().to(device)
    ema_model = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=8e-5, betas=(0.9, 0.99))
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    loader = DataLoader(
        RowDataset(x_train),
        batch_size=REFERENCE_BATCH,
        shuffle=True,
        pin_memory=cuda,
        num_workers=os.cpu_count() or 1,
    )
    batches = (batch for _ in itertools.count() for batch in loader)  # the reference's cycle(dl)
    curve: list[tuple[float, float]] = []
    step, train_time, timed_samples, timed_time = 0, 0.0, 0, 0.0
    eval_every_s = seconds / evals if evaluate else float("inf")
    next_eval = 0.0
    while train_time < seconds:
        if evaluate and train_time >= next_eval:
            curve.append((train_time, evaluate(model)["cos600"]))
            next_eval += eval_every_s
        start = time.perf_counter()
        data = next(batches).to(device)
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            loss = model(data)
            loss.item()  # the reference's per-step sync for the progress bar
        if scaler:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad()
        if step % 10 == 0:  # ema_pytorch: per-parameter Python loop every 10 steps
            with torch.no_grad():
                for ema_p, p in zip(ema_model.parameters(), model.parameters(), strict=True):
                    ema_p.sub_((ema_p - p) * (1 - 0.995))
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        train_time += elapsed
        step += 1
        if step > warmup_steps:  # worker start-up and first-call overheads are not throughput
            timed_samples, timed_time = timed_samples + REFERENCE_BATCH, timed_time + elapsed
    if evaluate:
        curve.append((train_time, evaluate(model)["cos600"]))
    return timed_samples / max(timed_time, 1e-9), curve


# ------------------------------------------------------------------ (b), (c) our trainer


def seconds_per_step(
    model: DiffusionModel, x: torch.Tensor, batch: int, device: torch.device, steps: int = 2
) -> float:
    """A quick estimate of one training step (to size runs to a time budget)."""
    model = copy.deepcopy(model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = x.to(device)

    def one() -> None:
        model.loss(x[torch.randint(0, len(x), (batch,), device=device)]).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def our_run(
    make_model: Callable[[], DiffusionModel],
    x_train: torch.Tensor,
    x_val: torch.Tensor | None,
    device: torch.device,
    seconds: float,
    batch: int,
    lr: float,
    evaluate: Cos600 | None = None,
    evals: int = 12,
    compile_model: bool = False,
) -> tuple[float, list[tuple[float, float]]]:
    """Our trainer sized to `seconds`; (steady samples/s, [(time_s, cos600)])."""
    model = make_model()
    steps = max(8, int(seconds / seconds_per_step(model, x_train, batch, device)))
    config = TrainConfig(
        steps=steps,
        batch_size=batch,
        lr=lr,
        warmup_steps=min(50, steps // 10),
        log_every=max(1, steps // 8),
        eval_every=max(1, steps // evals) if evaluate else 0,
        checkpoint_every=0,
        compile=compile_model,
    )
    with tempfile.TemporaryDirectory() as workdir:
        result = train(
            model, x_train, x_val, config, workdir, RunOptions(device=device, progress=False, evaluate=evaluate)
        )
    rates = [row["samples_per_s"] for row in result.history["train"][1:]]  # the first interval holds warm-up
    rate = statistics.median(rates) if rates else result.samples_per_s
    curve = [(0.0, evaluate(make_model().to(device))["cos600"])] if evaluate else []
    curve += [(row["time_s"], row["cos600"]) for row in result.history["val"]]
    return rate, curve


def time_to(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, value in curve if value >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=8.0, help="training-time budget per throughput run")
    parser.add_argument("--quality-seconds", type=float, default=20.0, help="budget per time-to-quality run")
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument(
        "--n-val", type=int, default=None, help="vectors for cos@600 (default 64 CPU, 2048 GPU)"
    )
    parser.add_argument(
        "--evals", type=int, default=None, help="evaluations per quality run (default 8 CPU, 20 GPU)"
    )
    parser.add_argument("--mlp-batches", default=None, help="comma-separated batch sizes to try for the MLP")
    parser.add_argument("--mlp-lr", type=float, default=5e-4)
    parser.add_argument("--compile", action="store_true", help="torch.compile our models")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: 1 on CPU, where a shared machine makes 2+ erratic)",
    )
    args = parser.parse_args()
    if args.threads or args.device == "cpu":
        torch.set_num_threads(args.threads or 1)

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    n_val = args.n_val or (2048 if gpu else 64)
    evals = args.evals or (20 if gpu else 8)
    batches = [
        int(b) for b in (args.mlp_batches or ("1024,4096,16384" if gpu else "128,512,2048")).split(",")
    ]
    x_train, x_val = clustered_vectors(args.n_train, seed=1), clustered_vectors(n_val, seed=2)
    print(
        f"device: {device_name(device)}; torch {torch.__version__}; train {tuple(x_train.shape)}; "
        f"precision: (a) {'fp16 autocast' if gpu else 'fp32'}, ours {'bf16 autocast' if gpu else 'fp32'}"
    )

    ref_rate, _ = reference_loop(x_train, device, args.seconds)
    print(f"(a) reference loop, Unet1D, batch 64:          {ref_rate:10,.0f} samples/s")
    unet_rate, _ = our_run(
        reference_model,
        x_train,
        None,
        device,
        args.seconds,
        REFERENCE_BATCH,
        8e-5,
        compile_model=args.compile,
    )
    print(f"(b) our trainer,    Unet1D, batch 64:          {unet_rate:10,.0f} samples/s")
    mlp_rates = {}
    for batch in batches:
        mlp_rates[batch], _ = our_run(
            mlp_model, x_train, None, device, args.seconds, batch, args.mlp_lr, compile_model=args.compile
        )
        print(f"    our trainer,    MLP,    batch {batch:<6}:      {mlp_rates[batch]:10,.0f} samples/s")
    best = max(mlp_rates, key=mlp_rates.get)
    print(f"(c) our trainer,    MLP,    best batch {best}:  {mlp_rates[best]:10,.0f} samples/s")
    if ref_rate > 0:
        print(f"ratios: (b)/(a) = {unet_rate / ref_rate:.2f}x   (c)/(a) = {mlp_rates[best] / ref_rate:.2f}x")
    else:
        print("ratios: n/a — the reference loop finished no step within --seconds; raise it")

    evaluate = Cos600(x_val)
    _, ref_curve = reference_loop(x_train, device, args.quality_seconds, evaluate=evaluate, evals=evals)
    _, mlp_curve = our_run(
        mlp_model,
        x_train,
        x_val,
        device,
        args.quality_seconds,
        best,
        args.mlp_lr,
        evaluate=evaluate,
        evals=evals,
        compile_model=args.compile,
    )
    identity, bayes = evaluate.identity(), bayes_cos600(x_val, evaluate.noise)
    target = identity + 0.5 * (bayes - identity)  # halfway from "learned the identity" to the Bayes ceiling
    print(
        f"time to quality: val cos(x0_hat, x0) at t=600 on {n_val} vectors vs training seconds (eval excluded);"
        f" identity map {identity:.3f}, Bayes-optimal ≈ {bayes:.3f}, target {target:.3f} (halfway)"
    )
    for name, curve in (("(a) reference loop", ref_curve), ("(c) our MLP       ", mlp_curve)):
        best_t, best_v = max(curve, key=lambda point: point[1])
        reached = time_to(curve, target)
        when = f"{reached:.1f}s" if reached is not None else f"not within {curve[-1][0]:.0f}s"
        plateau = time_to(curve, best_v - 0.05 * (best_v - curve[0][1]))
        print(
            f"  {name} reaches the target at {when}; best {best_v:.3f} at {best_t:.0f}s "
            f"(95% of its own gain by {plateau:.0f}s)"
        )
        print("    curve " + " ".join(f"{t:.0f}s:{v:.3f}" for t, v in curve))


if __name__ == "__main__":
    main()
