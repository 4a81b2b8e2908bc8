"""Every stage's parameters checked before anything runs, so a bad setting costs seconds, not minutes.

`check_parameters(params, sections)` builds the same settings objects the stages build (TrainConfig,
DecoderTrainConfig, ...) and applies the same checks, and raises the first problem as a `ConfigError`
that names the parameter and the fix. The stages check again where they use a value; this only moves
the failure to the start of the run. Plain dicts in, nothing Kedro-specific.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from diffusion_bridge.errors import ConfigError

Params = Mapping[str, Any]


def _positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r}: give a positive integer")


def _one_of(value: Any, choices: Iterable[Any], name: str) -> None:
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: use one of {choices}")


def _device(value: Any, name: str) -> None:
    import torch

    if value == "auto":
        return
    try:
        torch.device(value)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"{name}={value!r} is not a device: use auto, cpu, cuda or cuda:<index>") from error


def check_corpus(p: Params) -> None:
    from diffusion_bridge.corpus.images import BAD_IMAGE_POLICIES, CHECK_MODES

    _one_of(p["image_check"], CHECK_MODES, "corpus.image_check")
    _one_of(p["on_bad_images"], BAD_IMAGE_POLICIES, "corpus.on_bad_images")
    _positive_int(p["check_workers"], "corpus.check_workers")


def check_clip(p: Params) -> None:
    import open_clip

    from diffusion_bridge.clip.fitting import ClipFitConfig
    from diffusion_bridge.clip.sources import CLIP_SOURCES

    _one_of(p["source"], CLIP_SOURCES, "clip.source")
    _device(p.get("device", "auto"), "clip.device")
    if open_clip.get_model_config(p["model_name"]) is None:
        raise ConfigError(f"clip.model_name={p['model_name']!r} is not an open_clip architecture; see open_clip.list_models()")
    if p["source"] == "fit":
        config = ClipFitConfig(model_name=p["model_name"], **p["fit"])
        for name in ("steps", "batch_size"):
            _positive_int(getattr(config, name), f"clip.fit.{name}")
    elif p["source"] == "pretrained" and not p.get("pretrained"):
        raise ConfigError("clip.source=pretrained needs clip.pretrained (an open_clip tag, e.g. openai)")
    elif p["source"] == "checkpoint" and not p.get("checkpoint"):
        raise ConfigError("clip.source=checkpoint needs clip.checkpoint (a weights file or a saved CLIP folder)")


def check_embedding(p: Params) -> None:
    from diffusion_bridge.training.precision import check_precision

    _device(p["device"], "embedding.device")
    check_precision(p["precision"], "embedding.precision")
    _positive_int(p["image_batch_size"], "embedding.image_batch_size")
    _positive_int(p["text_batch_size"], "embedding.text_batch_size")
    if not isinstance(p["num_workers"], int) or p["num_workers"] < 0:
        raise ConfigError(f"embedding.num_workers={p['num_workers']!r}: give 0 (load in the main process) or more")


def _preset(diffusion: Params) -> Params:
    presets = diffusion["presets"]
    _one_of(diffusion["preset"], sorted(presets), "diffusion.preset")
    return presets[diffusion["preset"]]


def check_diffusion(p: Params) -> None:
    from diffusion_bridge.diffusion import DiffusionModel, TrainConfig

    preset = _preset(p)
    TrainConfig.from_dict(preset["train"])
    # a throw-away instance checks every model setting by name (64 divides any U-Net's downsampling)
    DiffusionModel(dim=64, **preset["model"])
    _device(p["device"], "diffusion.device")
    if p.get("stop_after") is not None:
        _positive_int(p["stop_after"], "diffusion.stop_after")


def _check_bridging(p: Params, section: str, timesteps: int) -> None:
    from diffusion_bridge.bridge import check_bridge_settings

    try:
        check_bridge_settings(p["t0"], p["steps"], timesteps, p["sampler"], p["eta"], p["batch_size"])
        for t0 in p.get("t0_sweep", []):
            check_bridge_settings(t0, min(p["steps"], max(t0, 1)), timesteps, p["sampler"], p["eta"], p["batch_size"])
    except ConfigError as error:
        raise ConfigError(f"{section}: {error}") from None
    _one_of(p["weights"], ("raw", "ema"), f"{section}.weights")
    _device(p["device"], f"{section}.device")


def check_evaluate(p: Params) -> None:
    if not isinstance(p["noise_variance"], int | float) or p["noise_variance"] < 0:
        raise ConfigError(f"evaluate.noise_variance={p['noise_variance']!r}: give a variance >= 0 (CapDec: 0.016)")
    for k in p["recall_at"]:
        _positive_int(k, "evaluate.recall_at[]")


def check_caption(p: Params) -> None:
    from diffusion_bridge.decoder import DecoderTrainConfig
    from diffusion_bridge.study.representations import NAMES

    _one_of(p["backbone"]["source"], ("scratch", "pretrained"), "caption.backbone.source")
    _check_scratch_backbone(p["backbone"])
    DecoderTrainConfig(**p["training"])
    _one_of(p["generation"]["method"], ("greedy", "beam"), "caption.generation.method")
    for name in ("max_length", "batch_size", "beam_size"):
        _positive_int(p["generation"][name], f"caption.generation.{name}")
    _device(p["device"], "caption.device")
    decoders = set(p["decoders"])
    for name, spec in p["evaluations"].items():
        _one_of(spec["representation"], NAMES, f"caption.evaluations.{name}.representation")
        _one_of(spec["decoder"], sorted(decoders), f"caption.evaluations.{name}.decoder")
    for name, spec in p["decoders"].items():
        _one_of(spec["val_representation"], NAMES, f"caption.decoders.{name}.val_representation")
    _one_of(p["sweep_decoder"], sorted(decoders), "caption.sweep_decoder")
    for decoder, evaluation in p["table5"].items():
        _one_of(evaluation, sorted(p["evaluations"]), f"caption.table5.{decoder}")
    _check_claims(p.get("claims", []), sorted(p["evaluations"]))


def _check_scratch_backbone(backbone: Params) -> None:
    """The scratch decoder's dropout and activation, checked here rather than when its node builds it, after
    CLIP, the diffusion model and the bridge have run."""
    from transformers.activations import ACT2FN

    if "activation" in backbone:
        _one_of(backbone["activation"], sorted(ACT2FN), "caption.backbone.activation")
    dropout = backbone.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"caption.backbone.dropout={dropout!r}: give a probability in [0, 1)")


def _check_claims(claims: Any, evaluations: list[str]) -> None:
    """Each claim compares two of the evaluations on metrics the study resamples; a misspelt name would
    otherwise leave the claim out of the report without a word."""
    from diffusion_bridge.metrics.captioning import PER_IMAGE_METRICS
    from diffusion_bridge.study.captioning import ATTRIBUTE_RATES

    metrics = sorted({*PER_IMAGE_METRICS, *ATTRIBUTE_RATES})
    if not isinstance(claims, list):
        raise ConfigError(f"caption.claims is {claims!r}; it must be a list of {{statement, better, worse, metrics}}")
    for k, claim in enumerate(claims):
        where = f"caption.claims[{k}]"
        if not isinstance(claim, Mapping) or not {"statement", "better", "worse", "metrics"} <= set(claim):
            raise ConfigError(f"{where} is {claim!r}; it needs statement, better, worse and metrics")
        _one_of(claim["better"], evaluations, f"{where}.better")
        _one_of(claim["worse"], evaluations, f"{where}.worse")
        if not claim["metrics"] or isinstance(claim["metrics"], str):
            raise ConfigError(f"{where}.metrics is {claim['metrics']!r}; list one or more of {metrics}")
        for metric in claim["metrics"]:
            _one_of(metric, metrics, f"{where}.metrics")


def _checks(params: Params) -> dict[str, Callable[[Params], None]]:
    timesteps = int(_preset(params["diffusion"])["model"].get("timesteps", 1000)) if "diffusion" in params else 1000
    return {
        "corpus": check_corpus,
        "clip": check_clip,
        "embedding": check_embedding,
        "diffusion": check_diffusion,
        "bridge": lambda p: _check_bridging(p, "bridge", timesteps),
        "augment": lambda p: _check_bridging(p, "augment", timesteps),
        "evaluate": check_evaluate,
        "caption": check_caption,
    }


def check_parameters(params: Params, sections: Iterable[str]) -> None:
    """Check the named top-level parameter groups (those the nodes about to run read); raise `ConfigError`."""
    checks = _checks(params)
    for section in sorted(set(sections)):
        if section not in checks or section not in params:
            continue
        try:
            checks[section](params[section])
        except KeyError as error:
            raise ConfigError(f"parameter {section}.{error.args[0]} is missing; add it to conf/<env>/parameters_*.yml") from None
        except TypeError as error:
            raise ConfigError(f"parameters `{section}`: {error}; compare with conf/base/parameters_*.yml") from None
