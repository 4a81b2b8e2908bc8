"""The captioning study: text-only decoders, captions for each representation of the test images, and
tables shaped like the paper's (Table 2: representation × metric; Table 4: t0 sweep; Table 5: decoder
trained with or without diffusion augmentation)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from diffusion_bridge.decoder.checkpoints import CaptionDecoder
from diffusion_bridge.decoder.generation import generate
from diffusion_bridge.decoder.model import PrefixCaptioner
from diffusion_bridge.decoder.training import DecoderTrainConfig, train_decoder
from diffusion_bridge.decoder.vocabulary import ClipBpeVocabulary, GPT2Vocabulary
from diffusion_bridge.metrics.captioning import caption_metrics, caption_metrics_many, python_tokenize

log = logging.getLogger(__name__)

MAIN_METRICS = ("Bleu_1", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")


def new_decoder(backbone: Mapping[str, Any], embed_dim: int, train_captions: Sequence[str]):
    """A fresh decoder: GPT-2 from `name_or_path` (the paper) or a small GPT-2 from scratch whose
    vocabulary is open_clip's BPE compacted to the training captions (the offline default)."""
    if backbone["source"] == "pretrained":
        vocab = GPT2Vocabulary.from_pretrained(backbone["name_or_path"])
        model = PrefixCaptioner.from_pretrained_gpt2(backbone["name_or_path"], embed_dim, backbone["prefix_length"])
        return model, vocab
    if backbone["source"] != "scratch":
        raise ValueError(f"caption.backbone.source={backbone['source']!r}: use scratch or pretrained")
    vocab = ClipBpeVocabulary.fit(list(train_captions))
    model = PrefixCaptioner.from_scratch(
        embed_dim, vocab.vocab_size, backbone["n_layer"], backbone["n_head"], backbone["n_embd"],
        backbone["n_positions"], backbone["prefix_length"], eos_id=vocab.eos_id,
    )
    return model, vocab


def selection_score(metric: str, references: Mapping[int, Sequence[str]], candidates: Mapping[int, str]) -> float:
    """The validation number that picks the checkpoint. CIDEr uses the Java-free tokenisation so it is
    cheap every epoch; any other name runs the full COCO metrics (the reference selects by METEOR)."""
    if metric == "CIDEr_fast":
        from pycocoevalcap.cider.cider import Cider

        ids = list(references)
        flat = python_tokenize([c for i in ids for c in references[i]] + [candidates[i] for i in ids])
        it = iter(flat)
        gts = {i: [next(it) for _ in references[i]] for i in ids}
        res = {i: [next(it)] for i in ids}
        return float(Cider().compute_score(gts, res)[0])
    return caption_metrics(references, candidates)[metric]


def fit_decoder(
    inputs: Tensor,
    captions: Sequence[str],
    val_inputs: Tensor,
    val_ids: Sequence[int],
    val_references: Mapping[int, Sequence[str]],
    backbone: Mapping[str, Any],
    training: Mapping[str, Any],
    generation: Mapping[str, Any],
    selection_metric: str,
    device: torch.device,
    progress: bool = True,
) -> CaptionDecoder:
    """Train on (text-side input, caption) pairs only; keep the epoch whose captions of the validation
    representation score best."""
    with torch.random.fork_rng():  # initial weights from the run's seed, not from global state
        torch.manual_seed(int(training.get("seed", 0)))
        model, vocab = new_decoder(backbone, int(inputs.shape[1]), captions)
    model = model.to(device)
    ids = [int(i) for i in val_ids]

    def validate(m: PrefixCaptioner) -> float:
        texts = generate(m, vocab, val_inputs.to(device), max_length=generation["max_length"], batch_size=generation["batch_size"])
        return selection_score(selection_metric, val_references, dict(zip(ids, texts, strict=True)))

    config = DecoderTrainConfig(**training)
    result = train_decoder(model, vocab, inputs.to(device), list(captions), config, validate, progress)
    extra = {
        "training": result.config,
        "best_epoch": result.best_epoch,
        "selection": {"metric": selection_metric, "score": result.best_score},
        "history": result.history,
        "train_pairs": len(captions),
        "backbone": dict(backbone),
    }
    log.info("Decoder: best epoch %d, validation %s = %.3f", result.best_epoch, selection_metric, result.best_score or math.nan)
    return CaptionDecoder(model.cpu(), vocab, extra)


def caption_images(decoder: CaptionDecoder, inputs: Tensor, generation: Mapping[str, Any], device: torch.device) -> list[str]:
    """Batched generation for every row of `inputs`."""
    model = decoder.model.to(device).eval()
    return generate(
        model, decoder.vocab, inputs.to(device), method=generation["method"], beam_size=generation["beam_size"],
        max_length=generation["max_length"], batch_size=generation["batch_size"],
    )


def score_caption_sets(
    references: Mapping[int, Sequence[str]], results: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, dict[str, float]]:
    """COCO metrics of every results list (COCO format) against the same references, sharing the JVMs."""
    candidates = {name: {int(r["image_id"]): r["caption"] for r in rows} for name, rows in results.items()}
    return caption_metrics_many(references, candidates)


def _row(name: str, values: Mapping[str, float], columns: Sequence[str]) -> str:
    cells = [f"{100 * values[c]:.1f}" if c in values else "–" for c in columns]
    return f"| {name} | " + " | ".join(cells) + " |"


def caption_markdown(report: Mapping[str, Any]) -> str:
    """Tables 2, 4 and 5 of the paper, on this run's corpus, scores ×100 as the paper prints them."""
    columns = [c for c in MAIN_METRICS if any(c in v for v in report["metrics"].values())]
    attr_cols = ("kind_precision", "colour_precision", "count_precision", "position_precision", "hallucination_rate")
    header = "| " + " | ".join(["captions from", *columns]) + " |\n|" + "---|" * (len(columns) + 1)
    lines = [
        "# Zero-shot captioning of the test images",
        "",
        f"Corpus `{report['corpus']}`, {report['images']} test images; decoders trained on text embeddings only.",
        "Each row names the representation fed to the decoder and the decoder's training inputs.",
        "",
        "## Table 2 — representations",
        "",
        header,
        *[_row(f"{name} ({spec['representation']} → {spec['decoder']} decoder)", report["metrics"][name], columns)
          for name, spec in report["evaluations"].items()],
        "",
        "## Table 4 — insertion step t0 (bridging only, text decoder)",
        "",
        header.replace("captions from", "t0"),
        *[_row(f"t0 = {t0}", report["metrics"][f"sweep_t{t0}"], columns) for t0 in report["sweep"]],
        "",
        "## Table 5 — decoder training inputs (bridged test images)",
        "",
        header.replace("captions from", "decoder trained on"),
        *[_row(decoder, report["metrics"][name], columns) for decoder, name in report["table5"].items()],
    ]
    if report.get("attributes"):
        lines += [
            "",
            "## Attribute accuracy against the renderer's ground truth (synthetic corpus)",
            "",
            "| captions from | " + " | ".join(attr_cols) + " |",
            "|" + "---|" * (len(attr_cols) + 1),
            *[f"| {n} | " + " | ".join(f"{v[c]:.3f}" for c in attr_cols) + " |" for n, v in report["attributes"].items()],
        ]
    if report.get("skipped_metrics"):
        lines += ["", f"Not computed: {report['skipped_metrics']}."]
    return "\n".join(lines) + "\n"


def caption_summary(report: Mapping[str, Any]) -> str:
    """The Table 2 rows on one screen, printed at the end of `kedro run`."""
    columns = [c for c in MAIN_METRICS if any(c in v for v in report["metrics"].values())]
    lines = [f"Captioning, {report['images']} test images (scores ×100)", f"{'captions from':<28}" + "".join(f"{c:>9}" for c in columns)]
    for name in report["evaluations"]:
        values = report["metrics"][name]
        lines.append(f"{name:<28}" + "".join(f"{100 * values[c]:>9.1f}" if c in values else f"{'–':>9}" for c in columns))
    return "\n".join(lines)


def scenes_by_image(images_scene_json: Mapping[int, str]) -> dict[int, dict[str, Any]]:
    """Ground-truth scenes (synthetic corpus only; empty strings elsewhere)."""
    return {int(i): json.loads(s) for i, s in images_scene_json.items() if s}
