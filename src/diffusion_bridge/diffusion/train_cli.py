"""Command line for the trainer, for `accelerate launch` (or torchrun) on one or many GPUs.

    accelerate launch -m diffusion_bridge.diffusion.train_cli \\
        --train x0_train.safetensors --val x0_val.safetensors --config cfg.json --workdir runs/ddpm

Tensor files hold the diffusion-space vectors under the key `x0`. cfg.json is
{"model": {DiffusionModel config; dim defaults to the data's}, "train": {TrainConfig fields}}.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffusion_bridge.errors import InputError

from .model import DiffusionModel
from .trainer import ConfigError, RunOptions, TrainConfig, TrainResult, train

TENSOR_KEY = "x0"


def load_x0(path: str | Path) -> torch.Tensor:
    """The `x0` tensor of a safetensors file."""
    tensors = load_file(str(path))
    if TENSOR_KEY not in tensors:
        raise InputError(
            f"{path} has no tensor {TENSOR_KEY!r} (found {sorted(tensors)}); save the vectors as "
            f"safetensors.torch.save_file({{'{TENSOR_KEY}': x0}}, path)"
        )
    return tensors[TENSOR_KEY]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="safetensors file with the training vectors under 'x0'")
    parser.add_argument("--val", default=None, help="safetensors file with the validation vectors under 'x0'")
    parser.add_argument("--config", required=True, help="JSON with 'model' and 'train' sections")
    parser.add_argument("--workdir", required=True, help="directory for the checkpoint (resumed if compatible)")
    parser.add_argument("--stop-after", type=int, default=None, help="stop (with a checkpoint) after this many steps")
    parser.add_argument("--cpu", action="store_true", help="train on CPU even if a GPU is present")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> TrainResult:
    """Parse arguments, build the model from the config and train; returns the TrainResult."""
    args = parse_args(argv)
    cfg = json.loads(Path(args.config).read_text())
    unknown = sorted(set(cfg) - {"model", "train"})
    if unknown:
        raise ConfigError(f"{args.config}: unknown top-level keys {unknown}; use 'model' and 'train'")
    config = TrainConfig.from_dict(cfg.get("train", {}))
    x0_train = load_x0(args.train)
    x0_val = load_x0(args.val) if args.val else None
    model_cfg = {"dim": int(x0_train.shape[-1]), **cfg.get("model", {})}
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    model = DiffusionModel.from_config(model_cfg)
    options = RunOptions(device="cpu" if args.cpu else None, progress=not args.no_progress, stop_after=args.stop_after)
    return train(model, x0_train, x0_val, config, args.workdir, options)  # several processes: DDP


if __name__ == "__main__":
    main()
