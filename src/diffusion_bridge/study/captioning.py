"""The captioning study: text-only decoders, captions for each representation of the test images, and the
scores behind the paper-shaped tables (Table 2: representation × metric; Table 4: t0 sweep; Table 5: decoder
trained with or without diffusion augmentation)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from diffusion_bridge.decoder.checkpoints import CaptionDecoder
from diffusion_bridge.decoder.generation import generate
from diffusion_bridge.decoder.model import PrefixCaptioner
from diffusion_bridge.decoder.training import (
    DecoderTrainConfig,
    TokenisedCaptions,
    caption_tokens,
    train_decoder,
)
from diffusion_bridge.decoder.vocabulary import CaptionVocabulary, ClipBpeVocabulary, GPT2Vocabulary
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.errors import ConfigError
from diffusion_bridge.metrics.attributes import attribute_accuracy, per_image_counts
from diffusion_bridge.metrics.captioning import (
    caption_metrics,
    caption_metrics_many,
    python_tokenize,
    references_from_labels,
    to_coco_results,
)
from diffusion_bridge.serialization import Tensors
from diffusion_bridge.study.claims import Claim, judge
from diffusion_bridge.study.gap import rows_of
from diffusion_bridge.study.intervals import RESAMPLES, PerImage, resample_indices
from diffusion_bridge.study.representations import Representations
from diffusion_bridge.training.checkpoint import tensor_digest

log = logging.getLogger(__name__)

MAIN_METRICS = ("Bleu_1", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")


def new_vocabulary(backbone: Mapping[str, Any], train_captions: Sequence[str]) -> CaptionVocabulary:
    """GPT-2's own tokenizer (the paper) or open_clip's BPE compacted to the training captions (the offline
    default: a small softmax, no download)."""
    if backbone["source"] == "pretrained":
        return GPT2Vocabulary.from_pretrained(backbone["name_or_path"])
    if backbone["source"] != "scratch":
        raise ConfigError(f"caption.backbone.source={backbone['source']!r}: use scratch or pretrained")
    return ClipBpeVocabulary.fit(list(train_captions))


# Optional backbone settings of the scratch decoder (PrefixCaptioner.from_scratch keeps GPT-2's when absent).
SCRATCH_OPTIONS = ("dropout", "activation")


def new_decoder(backbone: Mapping[str, Any], embed_dim: int, vocab: CaptionVocabulary) -> PrefixCaptioner:
    """A fresh decoder for `vocab`: GPT-2 from `name_or_path` (the paper) or a small GPT-2 from scratch."""
    if backbone["source"] == "pretrained":
        return PrefixCaptioner.from_pretrained_gpt2(backbone["name_or_path"], embed_dim, backbone["prefix_length"])
    return PrefixCaptioner.from_scratch(
        embed_dim, vocab.vocab_size, backbone["n_layer"], backbone["n_head"], backbone["n_embd"],
        backbone["n_positions"], backbone["prefix_length"], eos_id=vocab.eos_id,
        **{key: backbone[key] for key in SCRATCH_OPTIONS if key in backbone},
    )


def tokenise_train_captions(captions: pd.DataFrame, backbone: Mapping[str, Any],
                            max_tokens: int | None) -> tuple[CaptionVocabulary, Tensors]:
    """The decoders' vocabulary and every train caption tokenised with it, once for all decoders:
    {"sentid" [N], "tokens" [N, L], "lengths" [N]} in the captions table's order."""
    train = captions.loc[captions["split"] == "train"]
    text = train["caption"].tolist()
    vocab = new_vocabulary(backbone, text)
    encoded = caption_tokens(vocab, text, max_tokens)
    sentids = torch.as_tensor(train["sentid"].to_numpy(copy=True), dtype=torch.long)
    return vocab, {"sentid": sentids, "tokens": encoded.tokens, "lengths": encoded.lengths}


def rows_for(tokenised: Tensors, sentids: Tensor) -> TokenisedCaptions:
    """The tokenised captions of `sentids`, in that order (one per decoder input row)."""
    rows = rows_of(tokenised["sentid"], sentids.long())
    return TokenisedCaptions(tokenised["tokens"][rows], tokenised["lengths"][rows])


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
    captions: Sequence[str] | TokenisedCaptions,
    val_inputs: Tensor,
    val_ids: Sequence[int],
    val_references: Mapping[int, Sequence[str]],
    backbone: Mapping[str, Any],
    training: Mapping[str, Any],
    generation: Mapping[str, Any],
    selection_metric: str,
    device: torch.device,
    progress: bool = True,
    workdir: str | Path | None = None,
    vocab: CaptionVocabulary | None = None,
) -> CaptionDecoder:
    """Train on (text-side input, caption) pairs only; keep the epoch whose captions of the validation
    representation score best. With `workdir` (the caption stage: `data/06_models/decoder_runs/<name>`) the
    run checkpoints every epoch and a rerun resumes where an interrupted one stopped. `captions` already
    tokenised come with their `vocab`; caption strings get a vocabulary fitted to them."""
    if vocab is None:
        if isinstance(captions, TokenisedCaptions):
            raise ConfigError("tokenised captions need the vocabulary they were tokenised with: pass vocab")
        vocab = new_vocabulary(backbone, captions)
    with torch.random.fork_rng():  # initial weights from the run's seed, not from global state
        torch.manual_seed(int(training.get("seed", 0)))
        model = new_decoder(backbone, int(inputs.shape[1]), vocab)
    model = model.to(device)
    ids = [int(i) for i in val_ids]

    def validate(m: PrefixCaptioner) -> float:
        texts = generate(m, vocab, val_inputs.to(device), max_length=generation["max_length"], batch_size=generation["batch_size"])
        return selection_score(selection_metric, val_references, dict(zip(ids, texts, strict=True)))

    config = DecoderTrainConfig(**training)
    validation = None
    if workdir is not None:  # what `validate` measures joins the run's fingerprint: a change starts a fresh run
        references = json.dumps({str(i): list(val_references[i]) for i in ids}, sort_keys=True).encode()
        validation = {"metric": selection_metric, "max_length": generation["max_length"],
                      "inputs": tensor_digest(val_inputs, torch.tensor(ids)),
                      "references": hashlib.sha256(references).hexdigest()}
    pairs = captions if isinstance(captions, TokenisedCaptions) else list(captions)
    result = train_decoder(model, vocab, inputs.to(device), pairs, config, validate, progress,
                           workdir=workdir, validation_key=validation)
    extra = {
        "training": result.config,
        "best_epoch": result.best_epoch,
        "selection": {"metric": selection_metric, "score": result.best_score},
        "history": result.history,
        "train_pairs": int(inputs.shape[0]),
        "backbone": dict(backbone),
    }
    log.info("Decoder: best epoch %d, validation %s = %.3f", result.best_epoch, selection_metric, result.best_score or math.nan)
    return CaptionDecoder(model.cpu(), vocab, extra)


def fit_named_decoder(name: str, inputs: Tensor, sentids: Tensor, vocab: CaptionVocabulary, tokenised: Tensors,
                      val: Representations, labels_val: Mapping[str, Any], params: Mapping[str, Any]) -> CaptionDecoder:
    """The decoder `params["decoders"][name]` describes, trained on `inputs` (one row per caption of `sentids`,
    taken from the shared `tokenised` train captions), its checkpoint chosen on the validation images'
    `val_representation`."""
    spec = params["decoders"][name]
    decoder = fit_decoder(
        inputs, rows_for(tokenised, sentids), val.get(spec["val_representation"]), val.imgid.tolist(),
        references_from_labels(labels_val, "labels_val"), params["backbone"],
        dict(params["training"]) | {"noise_std": spec["noise_std"]}, params["generation"],
        params["selection_metric"], resolve_device(params["device"]), params["progress"],
        workdir=Path(params["workdir"]) / name, vocab=vocab,
    )
    decoder.extra |= {"decoder": name, "inputs": spec["description"], "val_representation": spec["val_representation"]}
    return decoder


def caption_images(decoder: CaptionDecoder, inputs: Tensor, generation: Mapping[str, Any], device: torch.device) -> list[str]:
    """Batched generation for every row of `inputs`."""
    model = decoder.model.to(device).eval()
    return generate(
        model, decoder.vocab, inputs.to(device), method=generation["method"], beam_size=generation["beam_size"],
        max_length=generation["max_length"], batch_size=generation["batch_size"],
    )


def caption_representations(
    reps: Representations,
    decoders: Mapping[str, CaptionDecoder],
    evaluations: Mapping[str, Mapping[str, str]],
    sweep_decoder: str,
    generation: Mapping[str, Any],
    device: torch.device,
) -> dict[str, Any]:
    """COCO-format results (`[{"image_id", "caption"}]`) for every evaluation (a representation fed to a
    decoder) and for every t0 of the sweep (captioned by `sweep_decoder`)."""
    ids = reps.imgid.tolist()

    def results(inputs: Tensor, decoder: str) -> list[dict[str, Any]]:
        return to_coco_results(ids, caption_images(decoders[decoder], inputs, generation, device))

    return {
        "evaluations": {name: results(reps.get(spec["representation"]), spec["decoder"]) for name, spec in evaluations.items()},
        "sweep": [{"t0": t0, "results": results(reps.sweep[t0], sweep_decoder)} for t0 in sorted(reps.sweep)],
    }


def _by_image(rows: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    return {int(r["image_id"]): r["caption"] for r in rows}


def sweep_name(t0: int) -> str:
    """How a t0 of the sweep is named among the compared systems (claims, intervals)."""
    return f"t0={t0}"


# Attribute rates compared with intervals: precision of what captions mention, and the CHAIR-s rate.
ATTRIBUTE_RATES = {"kind_precision": "kind", "colour_precision": "colour", "hallucination_rate": "hallucination"}


def _per_image_statistics(ids: Sequence[int], scores: Mapping[str, Any], captions: Mapping[int, str],
                          scenes: Mapping[int, Mapping[str, Any]]) -> dict[str, PerImage]:
    """Every metric of one caption set that can be resampled over images: CIDEr, ROUGE-L, attribute rates."""
    statistics = {metric: PerImage.mean_of(values) for metric, values in scores["per_image"].items()}
    if scenes:
        counts = per_image_counts(captions, scenes)
        for rate, key in ATTRIBUTE_RATES.items():
            statistics[rate] = PerImage.ratio_of([counts[i][key][0] for i in ids], [counts[i][key][1] for i in ids])
    return statistics


def score_results(
    results: Mapping[str, Any],
    references: Mapping[int, Sequence[str]],
    scenes: Mapping[int, Mapping[str, Any]],
    claims: Sequence[Claim] = (),
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """COCO metrics of every results list against the same references (sharing the JVMs), attribute accuracy
    against the ground-truth scenes where the corpus has them (the synthetic one), and the claims judged with
    paired bootstrap intervals over the test images (every t0 of the sweep is also compared with t0 = 0)."""
    sets = {n: _by_image(rows) for n, rows in results["evaluations"].items()}
    sets |= {sweep_name(entry["t0"]): _by_image(entry["results"]) for entry in results["sweep"]}
    scores = caption_metrics_many(references, sets, per_image=True)
    ids = list(references)
    systems = {name: _per_image_statistics(ids, scores[name], sets[name], scenes) for name in sets}
    steps = [entry["t0"] for entry in results["sweep"]]
    if 0 in steps:
        claims = [*claims, *(Claim(f"bridging at t0 = {t} beats t0 = 0, the mean shift alone (Table 4)", sweep_name(t),
                                   sweep_name(0), "CIDEr") for t in steps if t > 0)]
    return {
        "metrics": {name: _aggregate(scores[name]) for name in results["evaluations"]},
        "sweep": [{"t0": t, "metrics": _aggregate(scores[sweep_name(t)])} for t in steps],
        "attributes": {name: attribute_accuracy(sets[name], scenes) for name in sets} if scenes else {},
        "comparisons": judge(claims, systems, resample_indices(len(ids), resamples, seed)),
        "bootstrap": {"resamples": resamples, "seed": seed, "images": len(ids)},
    }


def _aggregate(scores: Mapping[str, Any]) -> dict[str, float]:
    return {k: v for k, v in scores.items() if k != "per_image"}


def scenes_by_image(images_scene_json: Mapping[int, str]) -> dict[int, dict[str, Any]]:
    """Ground-truth scenes (synthetic corpus only; empty strings elsewhere)."""
    return {int(i): json.loads(s) for i, s in images_scene_json.items() if s}
