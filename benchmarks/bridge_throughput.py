"""Bridging throughput: the reference's one-embedding-per-call loop vs the batched `bridge_embeddings`.

(a) reference-style loop (`ddpm/make_dataset_with_diffusion_vision.py`): per image embedding, move it to the
    device, normalise, subtract image_mean, scale to norm 5, DDIM (eta 0) with S=5 steps from t0=600, one row
    per network call, normalise, back to the CPU;
(b) `diffusion_bridge.bridge.bridge_embeddings(model, embeddings, mean, t0=600, steps=5, batch_size=...)`.
Both on the same randomly initialised model (no download), for the reference Unet1D(512, init_dim 32,
dim_mults (1, 2, 4, 8)) and for the default residual MLP. The loop runs on the first `--loop-items`
embeddings and is reported as images/s; the batched result on those rows is compared with the looped one.

    python benchmarks/bridge_throughput.py --threads 1                      # CPU, ~1 min
    python benchmarks/bridge_throughput.py --device cuda --n 5000 --loop-items 200 \\
        --out benchmarks/results/bridge_h100.json

Prints numbers only (never asserts). Reference on one H100: 10.6 images/s looped (REFERENCE.md §6);
the goal on a GPU is >= 1,000x that, i.e. >= 10,000 images/s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from _common import device_name, timed, write_results  # noqa: I001 (benchmarks/ helper, run as a script)
from diffusion_bridge.bridge import bridge_embeddings
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.diffusion import DiffusionModel
from diffusion_bridge.diffusion.samplers import ddim_sample, reference_timesteps
from diffusion_bridge.space import to_diffusion_space

DIM = 512
T0, STEPS = 600, 5  # the reference's vision bridge: insertion step 600, 5 DDIM steps
REFERENCE_LOOP_H100 = 10.6  # images/s, the reference script on one H100 (REFERENCE.md §6)

MODELS = {
    # The reference network, Unet1D(dim=512, init_dim=32, dim_mults=(1, 2, 4, 8), channels=1), 4.04 M params
    # (our Unet1D is always 1-channel, so it takes no `channels` argument).
    "unet1d": dict(denoiser="unet1d", denoiser_kwargs={"init_dim": 32, "dim_mults": (1, 2, 4, 8)}),
    # The project's default denoiser.
    "mlp": dict(denoiser="mlp"),
}


def make_model(name: str, device: torch.device) -> DiffusionModel:
    """A random-init model; layers that start at exactly zero (the MLP's identity init) get small random
    weights, so every layer shapes the output and the batched-vs-looped comparison means something."""
    torch.manual_seed(0)
    model = DiffusionModel(dim=DIM, **MODELS[name])
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.02)
    return model.to(device).eval()


def image_embeddings(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n raw CLIP-like image embeddings on the CPU, their image_mean): a shared offset (the modality
    cone) plus per-image variation, the mean taken over the normalised rows as in the reference."""
    g = torch.Generator().manual_seed(1)
    emb = 0.8 * torch.randn(DIM, generator=g) + torch.randn(n, DIM, generator=g)
    return emb, F.normalize(emb, dim=-1).mean(dim=0)


def reference_loop(
    model: DiffusionModel, emb: torch.Tensor, mean: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """One embedding per network call, as make_dataset_with_diffusion_vision.py."""
    times = reference_timesteps(T0, STEPS)
    mean = mean.to(device)
    out = []
    with torch.no_grad():
        for row in emb:
            x = to_diffusion_space(
                row.unsqueeze(0).to(device), mean, model.radius
            )  # 5·normalize(normalize(e) − mean)
            x = ddim_sample(model.predict, model.schedule, x, times)
            out.append(F.normalize(x, dim=-1).cpu())
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--models", default="unet1d,mlp", help=f"comma-separated, from {sorted(MODELS)}")
    parser.add_argument(
        "--n", type=int, default=None, help="embeddings bridged batched (default 5000 GPU, 256 CPU)"
    )
    parser.add_argument(
        "--loop-items",
        type=int,
        default=None,
        help="embeddings bridged one per call, the first rows (default 200 GPU, 20 CPU)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16384, help="rows per network call (conf default 16384)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs of the batched path, the median is reported (default 3 GPU, 1 CPU)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's default)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    n = args.n or (5000 if gpu else 256)
    loop_items = min(args.loop_items or (200 if gpu else 20), n)
    repeats = args.repeats or (3 if gpu else 1)
    emb, mean = image_embeddings(n)
    print(
        f"device: {device_name(device)}; torch {torch.__version__}; {n} embeddings ({DIM}-d), fp32; "
        f"DDIM t0={T0}, S={STEPS} (times {reference_timesteps(T0, STEPS)}); batch {args.batch_size}"
    )

    results = {}
    for name in args.models.split(","):
        model = make_model(name, device)
        params = sum(p.numel() for p in model.parameters()) / 1e6

        def batched(rows: torch.Tensor, model=model) -> torch.Tensor:
            return bridge_embeddings(
                model, rows, mean, t0=T0, steps=STEPS, batch_size=args.batch_size, device=device
            )

        # Warm-up: first-call kernel selection and allocator growth are not throughput (on a GPU at the
        # full size, which is cheap there; on a CPU a few rows, as a full pass would double the run time).
        reference_loop(model, emb[:2], mean, device)
        batched(emb if gpu else emb[:16])
        looped, t_loop = timed(
            lambda model=model: reference_loop(model, emb[:loop_items], mean, device), device
        )
        bridged, t_batch = timed(lambda batched=batched: batched(emb), device, repeats)
        loop_rate, batch_rate = loop_items / t_loop, n / t_batch
        diff = (bridged[:loop_items] - looped).abs().max().item()
        results[name] = {
            "params_m": round(params, 3),
            "loop_images_per_s": loop_rate,
            "batched_images_per_s": batch_rate,
            "ratio": batch_rate / loop_rate,
            "vs_reference_h100_loop": batch_rate / REFERENCE_LOOP_H100,
            "max_abs_diff_batched_vs_loop": diff,
        }
        print(
            f"{name:>6} ({params:.2f}M params): loop ({loop_items}) {loop_rate:10,.1f} images/s | "
            f"batched ({n}) {batch_rate:10,.1f} images/s | {batch_rate / loop_rate:8.1f}x the loop | "
            f"{batch_rate / REFERENCE_LOOP_H100:7.1f}x the reference's {REFERENCE_LOOP_H100} images/s (H100) | "
            f"max|batched - looped| {diff:.2e}"
        )

    if args.out:
        write_results(
            args.out,
            "bridge_throughput",
            device,
            {
                "n": n,
                "loop_items": loop_items,
                "batch_size": args.batch_size,
                "repeats": repeats,
                "t0": T0,
                "steps": STEPS,
                "dtype": "fp32",
            },
            results,
        )


if __name__ == "__main__":
    main()
