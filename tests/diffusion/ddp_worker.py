"""Run train_cli in this process (one rank under torchrun, or alone) and save this rank's final weights.

usage: python ddp_worker.py OUT_DIR <train_cli arguments...>
"""

import os
import sys

import torch
from safetensors.torch import save_file

from diffusion_bridge.diffusion.train_cli import main

if __name__ == "__main__":
    torch.set_num_threads(1)
    result = main(sys.argv[2:])
    rank = os.environ.get("RANK", "0")
    weights = {k: v.contiguous() for k, v in result.model.state_dict().items()}
    save_file(weights, os.path.join(sys.argv[1], f"rank{rank}.safetensors"))
