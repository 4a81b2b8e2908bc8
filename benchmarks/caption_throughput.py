"""Captions per second: batched generation (transformers' `generate`, KV cache, many rows per call) vs one per call.

The reference (`eval/predict.py: generate2`) decodes one image at a time with no cache; this measures
what batching buys on the same decoder and device. The decoder is randomly initialised (no download),
so every caption runs to `--max-length` tokens in both modes: a like-for-like comparison.

    python benchmarks/caption_throughput.py                      # small decoder, CPU, ~15 s
    python benchmarks/caption_throughput.py --device cuda --preset gpt2 --n 5000
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from open_clip.tokenizer import SimpleTokenizer

from diffusion_bridge.decoder import ClipBpeVocabulary, PrefixCaptioner, generate
from diffusion_bridge.decoder.vocabulary import EOS, PAD, UNK

PRESETS = {
    # A small decoder of the size the synthetic corpus uses.
    "small": dict(n_layer=4, n_head=4, n_embd=256, vocab=2000, embed_dim=64),
    # GPT-2 small's shape with the paper's 512-d CLIP ViT-B/32 input (softmax: all 49,408 CLIP BPE tokens
    # rather than GPT-2's 50,257, so the benchmark needs no download).
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, vocab=49408, embed_dim=512),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--n", type=int, default=256, help="captions generated in batched mode")
    parser.add_argument("--n-single", type=int, default=24, help="captions generated one per call")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--method", choices=["greedy", "beam"], default="greedy")
    parser.add_argument("--beam-size", type=int, default=3)
    # One thread by default: a small decoder's steps are short, and on a shared 2-core runner idle OpenMP
    # threads spin against other processes (measured ~8x slower with 2 threads under load).
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    spec = PRESETS[args.preset]
    torch.manual_seed(0)
    # The first tokens of open_clip's BPE: a real vocabulary of the preset's softmax size.
    bpe = SimpleTokenizer()
    vocab = ClipBpeVocabulary([PAD, EOS, UNK, *(bpe.decoder[i] for i in range(spec["vocab"] - 3))])
    model = PrefixCaptioner.from_scratch(spec["embed_dim"], vocab.vocab_size, n_layer=spec["n_layer"],
                                         n_head=spec["n_head"], n_embd=spec["n_embd"], n_positions=64)
    model = model.to(device).eval()
    x = F.normalize(torch.randn(args.n, spec["embed_dim"]), dim=-1)
    kwargs = dict(method=args.method, beam_size=args.beam_size, max_length=args.max_length)

    generate(model, vocab, x[:2], **kwargs)  # warm-up (kernels, allocator)
    _sync(device)
    start = time.perf_counter()
    batched = generate(model, vocab, x, batch_size=args.batch_size, **kwargs)
    _sync(device)
    batched_rate = args.n / (time.perf_counter() - start)

    n_single = min(args.n_single, args.n)
    start = time.perf_counter()
    single = [generate(model, vocab, x[i : i + 1], **kwargs)[0] for i in range(n_single)]
    _sync(device)
    single_rate = n_single / (time.perf_counter() - start)

    same = sum(a == b for a, b in zip(single, batched, strict=False))
    print(f"device={device} preset={args.preset} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params) "
          f"method={args.method} max_length={args.max_length} threads={torch.get_num_threads()}")
    print(f"batched  ({args.n} captions, batch {args.batch_size}): {batched_rate:10.1f} captions/s")
    print(f"single   ({n_single} captions, one per call): {single_rate:10.1f} captions/s")
    print(f"speed-up: {batched_rate / single_rate:.1f}x; identical captions: {same}/{n_single}")


if __name__ == "__main__":
    main()
