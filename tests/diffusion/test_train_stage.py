"""The `train` stage the Kedro way: its node as a plain function, and the pipeline sliced and run by
SequentialRunner on an in-memory catalog (no session, no files but the run's own workdir)."""

import copy

import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from diffusion_bridge.diffusion.checkpoints import DiffusionCheckpoint
from diffusion_bridge.pipelines.train.nodes import train_diffusion_model
from diffusion_bridge.pipelines.train.pipeline import create_pipeline

DIM = 16
METRIC_KEYS = {"preset", "model", "train", "parameters", "samples_per_s", "steps", "history", "final_validation"}


def embeddings(n, seed):
    return {"embeddings": torch.randn(n, DIM, generator=torch.Generator().manual_seed(seed))}


MEANS = {"text_mean": 0.1 * torch.randn(DIM, generator=torch.Generator().manual_seed(2)),
         "image_mean": 0.1 * torch.randn(DIM, generator=torch.Generator().manual_seed(3))}


def diffusion_params(workdir, **overrides):
    """`params:diffusion` as conf/base/parameters_train.yml shapes it, with one tiny preset."""
    train = {"steps": 6, "batch_size": 8, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.01, "warmup_steps": 2,
             "lr_schedule": "cosine", "log_every": 2, "eval_every": 3, "checkpoint_every": 3, "val_timesteps": [300, 600]}
    return {"preset": "tiny", "radius": None, "device": "cpu", "threads": None, "progress": False,
            "workdir": str(workdir), "stop_after": None, **overrides,
            "presets": {"tiny": {"model": {"denoiser": "mlp", "denoiser_kwargs": {"width": 16, "depth": 1, "time_dim": 8}},
                                 "train": train}}}


@pytest.fixture(scope="module")
def texts():
    return embeddings(64, 0), embeddings(16, 1)


def test_the_node_trains_the_chosen_preset_and_a_rerun_resumes_it(tmp_path, texts):
    text_train, text_val = texts
    stopped, first = train_diffusion_model(text_train, text_val, MEANS, diffusion_params(tmp_path, stop_after=3))
    assert set(first) == METRIC_KEYS and first["preset"] == "tiny" and first["steps"] == 3
    checkpoint, metrics = train_diffusion_model(text_train, text_val, MEANS, diffusion_params(tmp_path))
    assert checkpoint.directory == stopped.directory  # the same run folder: resumed, not restarted
    assert metrics["steps"] == 6 and [row["step"] for row in metrics["history"]["val"]] == [3, 6]
    assert {"loss", "cos_x0/t300", "cos_x0/t600"} <= set(metrics["final_validation"])
    assert metrics["model"] == checkpoint.model(dim=DIM).config and metrics["train"]["val_timesteps"] == [300, 600]

    _, straight = train_diffusion_model(text_train, text_val, MEANS, diffusion_params(tmp_path / "straight"))
    assert straight["final_validation"] | {"time_s": 0} == metrics["final_validation"] | {"time_s": 0}
    assert straight["parameters"] == metrics["parameters"] > 0


def test_settings_that_change_the_numbers_get_their_own_run_folder(tmp_path, texts):
    text_train, text_val = texts
    base, _ = train_diffusion_model(text_train, text_val, MEANS, diffusion_params(tmp_path, stop_after=1))
    relogged = diffusion_params(tmp_path, stop_after=1)
    relogged["presets"]["tiny"]["train"].update(log_every=1, val_timesteps=[100])  # bookkeeping only
    assert train_diffusion_model(text_train, text_val, MEANS, relogged)[0].directory == base.directory
    faster = copy.deepcopy(diffusion_params(tmp_path, stop_after=1))
    faster["presets"]["tiny"]["train"]["lr"] = 1e-3
    assert train_diffusion_model(text_train, text_val, MEANS, faster)[0].directory != base.directory


def test_the_train_pipeline_runs_sliced_on_an_in_memory_catalog(tmp_path, texts):
    text_train, text_val = texts
    pipeline = create_pipeline().only_nodes("train_diffusion_model")
    catalog = DataCatalog({
        "text_embeddings_train": MemoryDataset(text_train),
        "text_embeddings_val": MemoryDataset(text_val),
        "modality_means": MemoryDataset(MEANS),
        "params:diffusion": MemoryDataset(diffusion_params(tmp_path)),
    })
    outputs = SequentialRunner().run(pipeline, catalog)
    assert set(outputs) == {"diffusion_model", "diffusion_metrics"}  # the stage's free outputs
    checkpoint, metrics = outputs["diffusion_model"].load(), outputs["diffusion_metrics"].load()
    assert isinstance(checkpoint, DiffusionCheckpoint) and metrics["steps"] == 6
    same, _ = train_diffusion_model(text_train, text_val, MEANS, diffusion_params(tmp_path))  # finished: no training
    for key, value in checkpoint.model().state_dict().items():
        assert torch.equal(same.model().state_dict()[key], value), key
