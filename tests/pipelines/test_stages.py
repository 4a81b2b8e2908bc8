"""The bridge, evaluate and caption stages the way Kedro projects test them: nodes called as plain functions,
and sliced pipelines run by SequentialRunner on an in-memory catalog (no session, no conf, no files but the
training workdirs)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from diffusion_bridge.errors import InputError, LineageError
from diffusion_bridge.pipelines.bridge.pipeline import create_pipeline as bridge_stage
from diffusion_bridge.pipelines.caption import nodes as caption
from diffusion_bridge.pipelines.evaluate.nodes import build_split_representations, write_alignment_report
from diffusion_bridge.pipelines.evaluate.pipeline import create_pipeline as evaluate_stage
from diffusion_bridge.pipelines.train.nodes import train_diffusion_model
from diffusion_bridge.space import centre
from diffusion_bridge.study.representations import NAMES, Representations

DIM, IMAGES, CAPTIONS = 16, 12, 3


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(first_id: int, seed: int) -> dict[str, torch.Tensor]:
    return {"embeddings": torch.randn(IMAGES, DIM, generator=_generator(seed)) + 1.0,
            "imgid": torch.arange(first_id, first_id + IMAGES)}


def captions(image_set: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    owner = image_set["imgid"].repeat_interleave(CAPTIONS)
    return {"embeddings": torch.randn(len(owner), DIM, generator=_generator(seed)) - 1.0, "imgid": owner,
            "sentid": torch.arange(len(owner)) + 1000 * int(owner[0])}


MEANS = {"image_mean": 0.2 * torch.ones(DIM), "text_mean": -0.2 * torch.ones(DIM)}
BRIDGE = {"t0": 600, "t0_sweep": [0, 200, 600], "steps": 5, "sampler": "ddim", "eta": 0.0, "add_noise": False,
          "weights": "raw", "batch_size": 7, "device": "cpu", "seed": 0, "allow_partial_model": False}
EVALUATE = {"noise_variance": 0.016, "recall_at": [1, 5], "seed": 0, "bootstrap": {"resamples": 200}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    train = {"steps": 4, "batch_size": 8, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.0, "warmup_steps": 0,
             "lr_schedule": "constant", "log_every": 2, "eval_every": 0, "checkpoint_every": 4}
    params = {"preset": "tiny", "radius": None, "device": "cpu", "threads": None, "progress": False, "stop_after": None,
              "workdir": str(tmp_path_factory.mktemp("diffusion")),
              "presets": {"tiny": {"model": {"denoiser": "mlp", "denoiser_kwargs": {"width": 16, "depth": 1, "time_dim": 8}},
                                   "train": train}}}
    text = captions(images(0, 1), 2)
    model, _ = train_diffusion_model(text, text, MEANS, params)
    return model


def catalog(**data) -> DataCatalog:
    return DataCatalog(datasets={name.replace("__", ":"): MemoryDataset(value) for name, value in data.items()})


@pytest.fixture(scope="module")
def bridged(checkpoint):
    """The bridge stage run on an in-memory catalog; its outputs, by name."""
    test = images(100, 3)
    data = catalog(diffusion_model=checkpoint, image_embeddings_val=images(200, 4), image_embeddings_test=test,
                   modality_means=MEANS, text_embeddings_train=captions(images(0, 1), 2),
                   params__bridge=BRIDGE, params__augment=BRIDGE | {"t0": 400, "add_noise": True})
    outputs = SequentialRunner().run(bridge_stage(), data)
    return {name: dataset.load() for name, dataset in outputs.items()} | {"test": test}


def test_the_bridge_stage_writes_unit_vectors_with_ids_a_stacked_sweep_and_its_settings(bridged):
    assert set(bridged) >= {"bridged_image_embeddings_val", "bridged_image_embeddings_test", "bridged_sweep_test",
                            "augmented_text_embeddings_train", "bridge_report"}
    test, sweep = bridged["bridged_image_embeddings_test"], bridged["bridged_sweep_test"]
    assert torch.equal(test["imgid"], bridged["test"]["imgid"])
    torch.testing.assert_close(test["embeddings"].norm(dim=1), torch.ones(IMAGES))
    assert sweep["t0"].tolist() == [0, 200, 600] and sweep["embeddings"].shape == (3, IMAGES, DIM)
    torch.testing.assert_close(sweep["embeddings"][0], centre(bridged["test"]["embeddings"], MEANS["image_mean"]))
    assert torch.equal(sweep["embeddings"][2], test["embeddings"])  # t0 = 600 is computed once, for both
    assert bridged["bridge_report"]["images"]["t0_sweep"] == [0, 200, 600]
    assert bridged["bridge_report"]["augment"]["t0"] == 400 and "device" not in bridged["bridge_report"]["images"]


def test_the_evaluate_stage_builds_representations_and_judges_the_bridge(bridged):
    test = bridged["test"]
    data = catalog(image_embeddings_val=images(200, 4), bridged_image_embeddings_val=bridged["bridged_image_embeddings_val"],
                   text_embeddings_val=captions(images(200, 4), 5), image_embeddings_test=test,
                   bridged_image_embeddings_test=bridged["bridged_image_embeddings_test"],
                   bridged_sweep_test=bridged["bridged_sweep_test"], text_embeddings_test=captions(test, 6),
                   text_embeddings_train=captions(images(0, 1), 2), modality_means=MEANS,
                   corpus_report={"corpus": "unit"}, bridge_report=bridged["bridge_report"], params__evaluate=EVALUATE)
    pipeline = evaluate_stage().filter(node_names=["build_validation_representations", "build_test_representations",
                                                   "measure_alignment"])
    outputs = SequentialRunner().run(pipeline, data)  # the free outputs: what no node of the slice reads
    alignment = outputs["alignment_metrics"].load()
    assert isinstance(outputs["validation_representations"].load(), Representations)
    reps = build_split_representations(test, bridged["bridged_image_embeddings_test"], captions(test, 6), MEANS,
                                       EVALUATE, bridged["bridged_sweep_test"])
    assert set(reps.sweep) == {0, 200, 600}
    assert set(alignment["representations"]) == set(NAMES) and set(alignment["sweep"]) == {0, 200, 600}
    assert {c["verdict"] for c in alignment["comparisons"]} <= {"holds", "reversed", "not shown"}
    judged = {(c["better"], c["worse"], c["metric"]) for c in alignment["comparisons"]}
    assert ("bridged", "mean_shift", "paired_cosine") in judged and ("t0=600", "t0=0", "paired_cosine") in judged
    for c in alignment["comparisons"]:
        assert c["low"] <= c["estimate"] <= c["high"] or c["low"] == c["high"]
    report, _ = write_alignment_report(alignment)
    assert "## Comparisons with 95% paired bootstrap intervals" in report and "one-caption ceiling" in report
    round_trip = Representations.from_tensors(reps.to_tensors())
    assert all(torch.equal(a, b) for a, b in zip(round_trip.named().values(), reps.named().values(), strict=True))


def test_representations_refuse_bridged_embeddings_of_other_images(bridged):
    other = dict(bridged["bridged_image_embeddings_test"], imgid=torch.arange(IMAGES) + 5000)
    with pytest.raises(LineageError, match="kedro run --pipelines=bridge"):
        build_split_representations(bridged["test"], other, captions(bridged["test"], 6), MEANS, EVALUATE)


def test_the_ceiling_is_scored_like_every_row_against_the_other_captions(bridged):
    """score_captions as a plain function: the held-out caption is no reference of its own image, and the
    ceiling row gets every metric the others get."""
    test = bridged["test"]
    text = captions(test, 6)
    reps = Representations(imgid=test["imgid"], **{n: torch.zeros(IMAGES, DIM) for n in NAMES},
                           another_caption_sentid=text["sentid"][::CAPTIONS], sweep={})
    words = {int(s): f"caption {int(s)}" for s in text["sentid"]}
    labels = {"images": [{"id": int(i)} for i in test["imgid"]],
              "annotations": [{"image_id": int(i), "caption": words[int(s)], "id": int(s)}
                              for i, s in zip(text["imgid"], text["sentid"], strict=True)]}
    held_out = {int(i): words[int(s)] for i, s in zip(test["imgid"], text["sentid"][::CAPTIONS], strict=True)}
    rows = {"evaluations": {"bridged": [{"image_id": i, "caption": "caption"} for i in held_out],
                            "another_caption": [{"image_id": i, "caption": c} for i, c in held_out.items()]},
            "sweep": []}
    params = {"evaluations": {"bridged": {"representation": "bridged", "decoder": "text"},
                              "another_caption": {"representation": "another_caption", "decoder": "text"}},
              "table5": {}, "claims": [{"statement": "s", "better": "another_caption", "worse": "bridged", "metrics": ["CIDEr"]}],
              "bootstrap": {"resamples": 100, "seed": 0}}
    images_table = pd.DataFrame({"imgid": test["imgid"].tolist(), "split": "test", "scene": ""})
    metrics = caption.score_captions(rows, reps, labels, images_table, {"corpus": "unit"}, {}, params)
    assert set(metrics["metrics"]["another_caption"]) == set(metrics["metrics"]["bridged"])
    # had the held-out caption stayed a reference, the ceiling would reproduce it exactly (BLEU-1 = 1)
    assert metrics["metrics"]["another_caption"]["Bleu_1"] < 1.0
    assert metrics["comparisons"][0]["better"] == "another_caption"


def test_unknown_representations_in_the_parameters_are_named():
    reps = Representations(imgid=torch.arange(2), **{n: torch.zeros(2, DIM) for n in NAMES},
                           another_caption_sentid=torch.arange(2))
    with pytest.raises(InputError, match="unknown representation 'bridged_at_700'"):
        reps.get("bridged_at_700")
