"""Does `torch.compile` pay for the default caption decoder's training on this device? And what does each
decoder spend before its first step (vocabulary, tokenisation), the work the three decoders repeat?

Eager vs compiled: the same decoder (conf/base: 2 layers, 4 heads, 128 wide), the same batches of synthetic
captions, the same optimizer; prints the compile time, the steady step time of each, and the epochs it would
take for the compiled steps to earn back their compile time.

    python benchmarks/decoder_compile.py                  # CPU, ~2 minutes
    python benchmarks/decoder_compile.py --device cuda
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from _common import device_name, sync, write_results
from diffusion_bridge.corpus.scenes import all_pairs, describe_scene, sample_scene
from diffusion_bridge.decoder import ClipBpeVocabulary, PrefixCaptioner
from diffusion_bridge.decoder.training import caption_tokens


def _captions(n: int) -> list[str]:
    rng = random.Random(0)
    pairs = all_pairs()
    return [c for _ in range(n // 5) for c in describe_scene(sample_scene(rng, pairs), rng, 5)]


def _steps(model: torch.nn.Module, loss_fn, batches, optimizer) -> list[float]:
    seconds = []
    for x, tokens, mask in batches:
        start = time.perf_counter()
        loss = loss_fn(x, tokens, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(x.device)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--captions", type=int, default=7500, help="the default corpus' train captions")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="timed steps of each mode (after 3 warm-up steps)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    captions = _captions(args.captions)
    start = time.perf_counter()
    vocab = ClipBpeVocabulary.fit(captions)
    tokens, lengths = caption_tokens(vocab, captions)
    preparation = time.perf_counter() - start

    generator = torch.Generator().manual_seed(0)
    prefixes = torch.nn.functional.normalize(torch.randn(len(captions), 64, generator=generator), dim=-1)
    length = int(lengths.max())
    mask = (torch.arange(tokens.shape[1]) < lengths[:, None]).float()
    batches = []
    for rows in torch.randperm(len(captions), generator=generator).split(args.batch_size)[: args.steps + 3]:
        if len(rows) == args.batch_size:  # one shape, so the compiled graph is reused
            batches.append((prefixes[rows].to(device), tokens[rows, :length].to(device), mask[rows, :length].to(device)))

    results = {"captions": len(captions), "vocab_and_tokens_s": round(preparation, 3)}
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        model = PrefixCaptioner.from_scratch(64, vocab.vocab_size, 2, 4, 128, 64, prefix_length=10,
                                             eos_id=vocab.eos_id).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loss_fn = model.loss
        if mode == "compiled":
            loss_fn = torch.compile(model.loss)
        first = _steps(model, loss_fn, batches[:1], optimizer)[0]  # includes compilation
        warm = _steps(model, loss_fn, batches[1:3], optimizer)
        steady = _steps(model, loss_fn, batches[3:], optimizer)
        results[mode] = {"first_step_s": round(first, 3), "warm_up_s": round(sum(warm), 3),
                         "steady_step_ms": round(1000 * sorted(steady)[len(steady) // 2], 2)}
    eager, compiled = results["eager"], results["compiled"]
    saved_per_step = (eager["steady_step_ms"] - compiled["steady_step_ms"]) / 1000
    overhead = compiled["first_step_s"] + compiled["warm_up_s"] - eager["first_step_s"] - eager["warm_up_s"]
    steps_per_epoch = args.captions // args.batch_size
    results["speedup"] = round(eager["steady_step_ms"] / compiled["steady_step_ms"], 3)
    results["epochs_to_break_even"] = round(overhead / (saved_per_step * steps_per_epoch), 1) if saved_per_step > 0 else None

    print(f"device: {device_name(device)}")
    print(f"vocabulary + tokenisation of {len(captions)} captions: {preparation:.2f} s per decoder")
    for mode in ("eager", "compiled"):
        r = results[mode]
        print(f"{mode:9s} first step {r['first_step_s']:7.2f} s   steady step {r['steady_step_ms']:7.2f} ms")
    print(f"compiled / eager steady speed: {results['speedup']:.2f}x; compile overhead {overhead:.1f} s; "
          f"break-even after {results['epochs_to_break_even']} epochs of {steps_per_epoch} steps")
    if args.out:
        write_results(args.out, "decoder_compile", device, vars(args) | {"out": str(args.out)}, results)


if __name__ == "__main__":
    main()
