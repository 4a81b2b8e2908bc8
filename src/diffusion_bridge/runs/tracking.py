"""Experiment tracking with MLflow, off by default and imported only when switched on.

`kedro run --params tracking.enabled=true` (with `pip install -e ".[tracking]"`) logs one MLflow run per
`kedro run` to a local store under `data/09_tracking/` (SQLite, no server): every parameter, the diffusion
training curves (loss, validation cos(x0_hat, x0) by t), the gap, alignment and caption metrics, and the
reports and plots as artifacts. The Kedro run id is the MLflow run name, so the two records find each other.

Why plain MLflow rather than the kedro-mlflow plugin: an installed Kedro plugin's entry points are imported
by every Kedro session and CLI call, so kedro-mlflow would import MLflow (seconds) in every run, tracking on
or not. This hook imports it only when tracking is on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset

from diffusion_bridge.runs.hooks import version_path

log = logging.getLogger(__name__)

# Saved datasets whose files become run artifacts: reports, figures and the metrics documents.
ARTIFACT_SUFFIXES = (".md", ".png", ".json")


def flatten(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested parameters as MLflow params: dotted keys, lists and scalars as short strings."""
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, name + ".")
        else:
            yield name, json.dumps(value, default=str)[:6000]


def metric_rows(name: str, value: Any) -> Iterator[tuple[str, float, int]]:
    """(metric key, value, step) rows from the project's metrics documents; nothing for other outputs."""
    if name == "diffusion_metrics":
        for kind in ("train", "val"):
            for row in value.get("history", {}).get(kind, []):
                for key, v in row.items():
                    if key not in ("step", "time_s") and isinstance(v, int | float):
                        yield f"diffusion/{kind}/{key}", float(v), int(row["step"])
    elif name == "gap_report":
        for split, stats in value["splits"].items():
            for key, v in stats.items():
                yield f"gap/{split}/{key}", float(v), 0
    elif name == "alignment_metrics":
        for rep, metrics in value["representations"].items():
            for key, v in metrics.items():
                yield f"alignment/{rep}/{key}", float(v), 0
        for t0, metrics in value["sweep"].items():
            for key, v in metrics.items():
                yield f"alignment_sweep/{key}", float(v), int(t0)
    elif name == "caption_metrics":
        for evaluation, metrics in value["metrics"].items():
            for key, v in metrics.items():
                yield f"caption/{evaluation}/{key}", float(v), 0
        for entry in value["sweep"]:
            for key, v in entry["metrics"].items():
                yield f"caption_sweep/{key}", float(v), int(entry["t0"])
        for evaluation, attributes in value.get("attributes", {}).items():
            for key in ("kind_precision", "colour_precision", "hallucination_rate"):
                yield f"attributes/{evaluation}/{key}", float(attributes[key]), 0


class TrackingHooks:
    """Logs each run to MLflow when the `tracking.enabled` parameter is true (see the module docstring)."""

    def __init__(self) -> None:
        self._mlflow = None
        self._project = Path.cwd()

    @hook_impl
    def after_context_created(self, context) -> None:
        self._project = Path(context.project_path)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], catalog) -> None:
        params = catalog.load("parameters")
        settings = params.get("tracking", {})
        self._mlflow = None
        if not settings.get("enabled"):
            return
        import mlflow  # only here: a run with tracking off never imports MLflow

        store = self._project / settings["store"]
        store.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
        if mlflow.get_experiment_by_name(settings["experiment"]) is None:
            mlflow.create_experiment(settings["experiment"], artifact_location=(store / "artifacts").as_uri())
        mlflow.set_experiment(settings["experiment"])
        mlflow.start_run(run_name=run_params["run_id"])
        mlflow.set_tags({"kedro.run_id": run_params["run_id"], "kedro.env": str(run_params.get("env")),
                         "kedro.pipelines": ",".join(run_params.get("pipeline_names") or ["__default__"])})
        mlflow.log_params(dict(flatten({k: v for k, v in params.items() if k != "tracking"})))
        self._mlflow, self._catalog = mlflow, catalog

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        if self._mlflow is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(key, value, now, step) for name, out in outputs.items() for key, value, step in metric_rows(name, out)]
        if rows:
            self._mlflow.tracking.MlflowClient().log_batch(self._mlflow.active_run().info.run_id, metrics=rows)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        if self._mlflow is None:
            return
        dataset = self._catalog.get(dataset_name)
        if isinstance(dataset, AbstractVersionedDataset):
            path = version_path(dataset, dataset.resolve_save_version(), self._project)
            if path.is_file() and path.suffix in ARTIFACT_SUFFIXES and "08_reporting" in path.parts:
                self._mlflow.log_artifact(str(path), artifact_path=dataset_name)

    @hook_impl
    def after_pipeline_run(self) -> None:
        if self._mlflow is not None:
            self._mlflow.end_run("FINISHED")
            self._mlflow = None

    @hook_impl
    def on_pipeline_error(self) -> None:
        if self._mlflow is not None:
            self._mlflow.end_run("FAILED")
            self._mlflow = None
