"""The default `kedro run` on the built-in synthetic corpus, every stage, then the notebook on its artifacts.

Prepare runs with its real defaults (the fitted CLIP's gap and caption diversity are requirements of the
default corpus); later stages get fewer steps through runtime parameters, as `kedro run --params` would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from safetensors.torch import load_file

from diffusion_bridge.corpus.synthetic import novel_combination_fraction
from diffusion_bridge.metrics.captioning import validate_coco_results

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

FAST = {
    "diffusion": {"presets": {"fast": {"train": {"steps": 600, "eval_every": 300, "checkpoint_every": 300}}}},
    "caption": {"training": {"epochs": 2}, "progress": False},
    "clip": {"progress": False},
    "embedding": {"progress": False},
}


@pytest.fixture(scope="module")
def default_run(kedro_project_factory):
    project = kedro_project_factory("default_run")
    project.run(params=FAST)
    return project


def _latest(project, relative: str) -> Path:
    """The artifact written by the module's default run (later tests add versions of their own)."""
    folder = project.path / relative
    return folder / project.run_versions[0] / folder.name


def _json(project, relative: str):
    return json.loads(_latest(project, relative).read_text())


def test_prepare_defaults_keep_a_modality_gap_and_diverse_captions(default_run):
    gap = _json(default_run, "data/08_reporting/gap_report.json")
    assert gap["clip"]["source"] == "fit" and gap["clip"]["embed_dim"] == 64
    for split in ("train", "test"):
        stats = gap["splits"][split]
        assert stats["centroid_distance"] > 0.3
        assert stats["same_image_caption_cosine"] < 0.8  # COCO: ~0.65; near-duplicates would be ~1
        assert stats["matched_cosine"] > stats["random_pair_cosine"]  # the fitted CLIP pairs images with captions
    corpus = json.loads((default_run.path / "data/01_raw/synthetic/dataset_synthetic.json").read_text())
    assert novel_combination_fraction(corpus, "test") >= 0.7


def test_bridge_outputs_unit_norm_with_ids(default_run):
    bridged = load_file(_latest(default_run, "data/07_model_output/bridged_image_embeddings_test.safetensors"))
    raw = load_file(_latest(default_run, "data/04_feature/image_embeddings_test.safetensors"))
    assert torch.equal(bridged["imgid"], raw["imgid"])
    assert torch.isfinite(bridged["embeddings"]).all()
    torch.testing.assert_close(bridged["embeddings"].norm(dim=1), torch.ones(len(raw["imgid"])))
    augmented = load_file(_latest(default_run, "data/07_model_output/augmented_text_embeddings_train.safetensors"))
    assert augmented["embeddings"].shape[0] == 1500 * 5 and torch.isfinite(augmented["embeddings"]).all()


def test_training_metrics_and_checkpoint(default_run):
    metrics = _json(default_run, "data/08_reporting/diffusion_metrics.json")
    assert metrics["preset"] == "fast" and metrics["steps"] == 600
    val = metrics["history"]["val"]
    assert len(val) == 2 and val[-1]["cos_x0/t100"] > val[-1]["cos_x0/t800"]
    checkpoint = _latest(default_run, "data/06_models/diffusion")
    assert {"config.json", "model.safetensors", "ema.safetensors", "training_state.pt"} <= {p.name for p in checkpoint.iterdir()}


def test_alignment_report(default_run):
    alignment = _json(default_run, "data/08_reporting/alignment_metrics.json")
    assert set(alignment["representations"]) == {"raw", "mean_shift", "noise", "bridged", "another_caption"}
    assert sorted(alignment["sweep"], key=int) == ["0", "100", "200", "400", "600", "800"]
    # t0 = 0 is the mean shift alone
    assert alignment["sweep"]["0"] == pytest.approx(alignment["representations"]["mean_shift"])
    report = _latest(default_run, "data/08_reporting/alignment_report.md").read_text()
    assert "| bridged |" in report and "## Reading" in report
    for plot in ("paired_cosine_histogram.png", "embedding_projection.png", "t0_sweep.png"):
        assert _latest(default_run, f"data/08_reporting/{plot}").stat().st_size > 10_000


def test_caption_report(default_run):
    metrics = _json(default_run, "data/08_reporting/caption_metrics.json")
    labels = _json(default_run, "data/03_primary/labels_test.json")
    results = _json(default_run, "data/07_model_output/caption_results.json")
    expected = {"raw", "mean_shift", "noise", "capdec_c3", "bridged", "diffusion_bridge", "another_caption"}
    assert set(results["evaluations"]) == expected
    assert [entry["t0"] for entry in results["sweep"]] == [0, 100, 200, 400, 600, 800]
    for rows in [*results["evaluations"].values(), *(entry["results"] for entry in results["sweep"])]:
        validate_coco_results(rows, labels)
    for name in expected:  # the ceiling is scored like every other row
        scores = metrics["metrics"][name]
        assert {"Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr"} <= set(scores)
        assert 0 < scores["Bleu_1"] <= 1
        assert set(metrics["attributes"][name]) >= {"kind_precision", "colour_precision", "hallucination_rate"}
    judged = {(c["better"], c["worse"], c["metric"]) for c in metrics["comparisons"]}
    assert ("bridged", "mean_shift", "CIDEr") in judged and ("t0=600", "t0=0", "CIDEr") in judged
    assert all(c["verdict"] in {"holds", "reversed", "not shown", "not measurable"} for c in metrics["comparisons"])
    report = _latest(default_run, "data/08_reporting/caption_report.md").read_text()
    assert "Table 2" in report and "Table 4" in report and "Table 5" in report
    assert "another_caption (ceiling)" in report and "Which of the paper's claims hold on this corpus" in report


def test_notebook_redraws_from_the_catalog(default_run, tmp_path):
    notebook = nbformat.read(ROOT / "notebooks" / "alignment_study.ipynb", as_version=4)
    os.environ["DIFFUSION_BRIDGE_PROJECT"] = str(default_run.path)
    try:
        NotebookClient(notebook, timeout=1800, startup_timeout=600, kernel_name="python3",  # hang guards only
                        resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.pop("DIFFUSION_BRIDGE_PROJECT")
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert len(images) == 3


def test_a_stopped_training_run_resumes_to_the_same_weights(default_run):
    """`train` stopped part-way and rerun ends with exactly the weights of an uninterrupted run."""
    steps = {"diffusion": {"progress": False, "presets": {"fast": {"train": {"steps": 200, "eval_every": 0, "checkpoint_every": 100}}}}}
    stopped = {"diffusion": {**steps["diffusion"], "stop_after": 100}}
    default_run.run(["train"], params=stopped)
    default_run.run(["train"], params=steps)  # resumes from step 100 in the same workdir
    other = {"diffusion": {**steps["diffusion"], "workdir": "data/06_models/uninterrupted"}}
    default_run.run(["train"], params=other)
    versions = sorted((default_run.path / "data/06_models/diffusion").iterdir())
    resumed, uninterrupted = (load_file(v / "diffusion" / "model.safetensors") for v in versions[-2:])
    assert json.loads((versions[-2] / "diffusion" / "config.json").read_text())["train"]["steps"] == 200
    for key, value in uninterrupted.items():
        assert torch.equal(resumed[key], value), key
