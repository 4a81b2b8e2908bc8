"""Nodes of the `evaluate` stage: how close each representation of the test images gets to the captions."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from diffusion_bridge.serialization import Tensors
from diffusion_bridge.study.alignment import alignment_study
from diffusion_bridge.study.plots import alignment_figures
from diffusion_bridge.study.reports import alignment_markdown, alignment_summary
from diffusion_bridge.study.representations import Representations, build_representations


def build_split_representations(images: Tensors, bridged: Tensors, captions: Tensors, means: Tensors,
                                params: dict[str, Any], sweep: Tensors | None = None) -> Representations:
    """Every representation of one split's images in the decoder's space, and a held-out caption as the ceiling."""
    return build_representations(images, bridged, captions, means, params["noise_variance"], params["seed"], sweep)


def measure_alignment(reps: Representations, text_test: Tensors, text_train: Tensors, means: Tensors,
                      corpus_report: dict[str, Any], bridge_report: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """All alignment metrics, for the main representations and for the t0 sweep."""
    study = alignment_study(reps, text_test, text_train, means, tuple(params["recall_at"]), params["seed"],
                            params["bootstrap"]["resamples"])
    return {"corpus": corpus_report["corpus"], "bridge": bridge_report["images"],
            "noise_variance": params["noise_variance"]} | study


def write_alignment_report(alignment: dict[str, Any]) -> tuple[str, str]:
    """The Markdown report and the one-screen summary printed at the end of the run."""
    return alignment_markdown(alignment), alignment_summary(alignment)


def plot_alignment(reps: Representations, text_test: Tensors, means: Tensors, alignment: dict[str, Any]) -> tuple[Figure, Figure, Figure]:
    """Histogram of paired cosines, a 2-D projection of text / image / bridged, and metrics against t0."""
    return alignment_figures(reps, text_test, means, alignment)
