"""CLIP embedding throughput: the batched extractor vs the reference's one-item-per-call loop.

(a) reference-style loop (`image_captioning/src/parse_data/parse_coco.py`): per image, decode the JPEG to an
    array, back to PIL, preprocess, `unsqueeze(0)`, one `encode_image` call under no_grad; per caption,
    tokenise it alone and make one `encode_text` call;
(b) `diffusion_bridge.clip.encoding.embed_images` / `embed_texts`: decoding, preprocessing and tokenising in
    DataLoader workers, one model call per batch.
Same randomly initialised open_clip model (no download), same device, same autocast precision, same run.
The script first writes `--images` JPEGs (rendered synthetic scenes, upscaled and grained to `--image-size`,
COCO is ~640x480 and ~160 KB) into a temporary folder, and takes `--captions` captions from the synthetic
corpus. The loop runs on the first `--loop-items` of each and is reported as items/s.

    python benchmarks/embed_throughput.py                                    # CPU, SynthCLIP-Tiny, < 1 min
    python benchmarks/embed_throughput.py --model ViT-B-32 --images 96 --captions 96 --loop-items 24
    python benchmarks/embed_throughput.py --device cuda --model ViT-B-32 --images 5000 --captions 25000 \\
        --loop-items 500 --batch-size 256 --workers 16 --out benchmarks/results/embed_h100_vitb32.json

Prints numbers only (never asserts). GPU goal: >= 2,000 images/s with ViT-B-32 on >= 5,000 JPEGs, >= 20x the loop.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from _common import device_name, timed, write_results  # noqa: I001 (benchmarks/ helper, run as a script)
from diffusion_bridge.clip import ClipModel
from diffusion_bridge.clip.encoding import embed_images, embed_texts
from diffusion_bridge.corpus.scenes import Scene, render_scene
from diffusion_bridge.corpus.synthetic import SyntheticSpec, build_dataset
from diffusion_bridge.devices import autocast, resolve_device

RENDER_SIDE = 128  # scenes are drawn small and upscaled: drawing at 640 px would dominate the set-up time
GRAIN = 20.0  # std of the added pixel noise: COCO-like JPEG entropy (~150 KB at 640x480, quality 90)


# ------------------------------------------------------------------ inputs


def write_jpeg(job: tuple[dict, tuple[int, int], int, str]) -> int:
    """Render one scene, upscale it to (width, height), add grain, save as JPEG; returns the file size."""
    scene, size, seed, path = job
    image = render_scene(Scene.from_dict(scene), RENDER_SIDE).resize(size, Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + np.random.default_rng(seed).normal(0.0, GRAIN, pixels.shape)
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, format="JPEG", quality=90)
    return os.path.getsize(path)


def make_inputs(
    folder: Path, n_images: int, n_captions: int, size: tuple[int, int]
) -> tuple[list[str], list[str], int]:
    """(JPEG paths, captions, mean file bytes): synthetic scenes written to `folder`, their captions."""
    per_image = SyntheticSpec().captions_per_image
    spec = SyntheticSpec(seed=0, n_train=max(n_images, math.ceil(n_captions / per_image)), n_val=0, n_test=0)
    records = build_dataset(spec)["images"]
    captions = [s["raw"] for r in records for s in r["sentences"]][:n_captions]
    paths = [str(folder / f"{i:06d}.jpg") for i in range(n_images)]
    jobs = [(records[i]["scene"], size, i, paths[i]) for i in range(n_images)]
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers) as pool:
        sizes = list(pool.map(write_jpeg, jobs, chunksize=max(1, n_images // (4 * workers))))
    return paths, captions, int(sum(sizes) / max(len(sizes), 1))


# ------------------------------------------------------------------ (a) the reference's loop


def loop_images(clip: ClipModel, paths: list[str], device: torch.device, precision: str) -> torch.Tensor:
    """One image per call, as parse_coco.py (skimage's io.imread is a Pillow decode to an array)."""
    model, preprocess = clip.model.to(device).eval(), clip.image_transform()
    out = []
    with autocast(device, precision):
        for path in paths:
            pixels = np.asarray(Image.open(path))
            image = preprocess(Image.fromarray(pixels)).unsqueeze(0).to(device)
            with torch.no_grad():
                out.append(model.encode_image(image).float().cpu())
    return torch.cat(out)


def loop_texts(clip: ClipModel, captions: list[str], device: torch.device, precision: str) -> torch.Tensor:
    """One caption per call: tokenise it alone, encode it alone (parse_coco.py's inner loop)."""
    model, tokenizer = clip.model.to(device).eval(), clip.tokenizer()
    out = []
    with autocast(device, precision):
        for caption in captions:
            with torch.no_grad():
                tokens = tokenizer([caption]).to(device)
                out.append(model.encode_text(tokens).float().cpu())
    return torch.cat(out)


# ------------------------------------------------------------------ measuring


def agreement(looped: torch.Tensor, batched: torch.Tensor) -> dict[str, float]:
    """How far the batched embeddings are from the looped ones on the same items (fp noise only)."""
    batched = batched[: len(looped)]
    return {
        "max_abs_diff": (looped - batched).abs().max().item(),
        "min_cosine": F.cosine_similarity(looped, batched, dim=-1).min().item(),
    }


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--model", default=None, help="open_clip name (default SynthCLIP-Tiny on CPU, ViT-B-32 on GPU)"
    )
    parser.add_argument(
        "--images", type=int, default=None, help="JPEGs to write and embed (default 512 CPU, 5000 GPU)"
    )
    parser.add_argument(
        "--captions", type=int, default=None, help="captions to embed (default 2048 CPU, 25000 GPU)"
    )
    parser.add_argument(
        "--image-size", type=parse_size, default=None, help="WxH (default 320x240 CPU, 640x480 GPU)"
    )
    parser.add_argument(
        "--loop-items",
        type=int,
        default=None,
        help="items the one-per-call loop embeds (default 64 CPU, 500 GPU)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch (captions: 4x this)")
    parser.add_argument(
        "--workers", type=int, default=None, help="DataLoader workers (default: min(16, CPU count))"
    )
    parser.add_argument(
        "--precision",
        default="fp16",
        choices=["fp32", "fp16", "bf16"],
        help="autocast on CUDA for both paths (CPU always runs fp32)",
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
    name = args.model or ("ViT-B-32" if gpu else "SynthCLIP-Tiny")
    n_images = args.images or (5000 if gpu else 512)
    n_captions = args.captions or (25_000 if gpu else 2048)
    size = args.image_size or ((640, 480) if gpu else (320, 240))
    loop_items = args.loop_items or (500 if gpu else 64)
    workers = args.workers if args.workers is not None else min(16, os.cpu_count() or 1)
    text_batch = 4 * args.batch_size

    torch.manual_seed(0)
    clip = ClipModel(
        model=open_clip.create_model(name),
        model_cfg=open_clip.get_model_config(name),
        info={"model_name": name},
    )  # moved to the device after the JPEG writers have forked
    params = sum(p.numel() for p in clip.model.parameters()) / 1e6
    print(
        f"device: {device_name(device)}; torch {torch.__version__}; model {name} ({params:.1f}M params, random init); "
        f"precision {args.precision if gpu else 'fp32'}; workers {workers}; batch {args.batch_size} images / "
        f"{text_batch} captions"
    )

    with tempfile.TemporaryDirectory(prefix="embed-bench-") as folder:
        start = time.perf_counter()
        paths, captions, mean_bytes = make_inputs(Path(folder), n_images, n_captions, size)
        print(
            f"wrote {len(paths)} JPEGs {size[0]}x{size[1]} (mean {mean_bytes / 1024:.0f} KB) and took "
            f"{len(captions)} captions in {time.perf_counter() - start:.1f} s"
        )

        # Warm-up: first-call kernel selection and allocator growth are not throughput.
        loop_images(clip, paths[:2], device, args.precision)
        loop_texts(clip, captions[:2], device, args.precision)
        warm = min(len(paths), args.batch_size if gpu else 8)  # a full batch is cheap on a GPU only
        embed_images(
            clip, paths[:warm], range(warm), device, args.batch_size, 0, args.precision, progress=False
        )

        n_loop_img, n_loop_txt = min(loop_items, len(paths)), min(loop_items, len(captions))
        loop_img, t_loop_img = timed(
            lambda: loop_images(clip, paths[:n_loop_img], device, args.precision), device
        )
        loop_txt, t_loop_txt = timed(
            lambda: loop_texts(clip, captions[:n_loop_txt], device, args.precision), device
        )
        batch_img, t_batch_img = timed(
            lambda: embed_images(
                clip,
                paths,
                range(len(paths)),
                device,
                args.batch_size,
                workers,
                args.precision,
                progress=False,
            ),
            device,
        )
        batch_txt, t_batch_txt = timed(
            lambda: embed_texts(clip, captions, device, text_batch, workers, args.precision, progress=False),
            device,
        )

    rates = {
        "loop_images_per_s": n_loop_img / t_loop_img,
        "loop_captions_per_s": n_loop_txt / t_loop_txt,
        "batched_images_per_s": len(paths) / t_batch_img,
        "batched_captions_per_s": len(captions) / t_batch_txt,
    }
    image_ratio = rates["batched_images_per_s"] / rates["loop_images_per_s"]
    text_ratio = rates["batched_captions_per_s"] / rates["loop_captions_per_s"]
    image_check, text_check = agreement(loop_img, batch_img), agreement(loop_txt, batch_txt)
    print(f"(a) loop, one per call ({n_loop_img} images):   {rates['loop_images_per_s']:10,.1f} images/s")
    print(
        f"(b) embed_images ({len(paths)} images):          {rates['batched_images_per_s']:10,.1f} images/s   "
        f"{image_ratio:6.1f}x the loop"
    )
    print(f"(a) loop, one per call ({n_loop_txt} captions): {rates['loop_captions_per_s']:10,.1f} captions/s")
    print(
        f"(b) embed_texts ({len(captions)} captions):       {rates['batched_captions_per_s']:10,.1f} captions/s "
        f"{text_ratio:6.1f}x the loop"
    )
    print(
        f"agreement on the loop's items: images max|diff| {image_check['max_abs_diff']:.2e} "
        f"(min cos {image_check['min_cosine']:.6f}); captions max|diff| {text_check['max_abs_diff']:.2e} "
        f"(min cos {text_check['min_cosine']:.6f})"
    )

    if args.out:
        write_results(
            args.out,
            "embed_throughput",
            device,
            {
                "model": name,
                "params_m": round(params, 2),
                "images": len(paths),
                "captions": len(captions),
                "image_size": list(size),
                "mean_jpeg_bytes": mean_bytes,
                "loop_images": n_loop_img,
                "loop_captions": n_loop_txt,
                "batch_size": args.batch_size,
                "text_batch_size": text_batch,
                "workers": workers,
                "precision": args.precision if gpu else "fp32",
            },
            {
                **rates,
                "image_ratio": image_ratio,
                "caption_ratio": text_ratio,
                "images_agreement": image_check,
                "captions_agreement": text_check,
            },
        )


if __name__ == "__main__":
    main()
