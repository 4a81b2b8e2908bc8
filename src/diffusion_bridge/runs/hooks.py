"""Kedro hooks that make every `kedro run` safe to interrupt and easy to trace.

RunHooks, around each run:
  - checks the parameters every node of the run reads before the first node runs (`parameters.check_parameters`);
  - holds `data/.lock`, so a second run in the same project refuses with a message instead of mixing work;
  - tidies what killed runs left: temporaries of interrupted writes, and the outputs of stages that never
    completed (moved to `data/.incomplete/<run_id>/`), so `latest` is always a set made together;
  - writes the run manifest (`runs.manifest`) after every node: parameters, versions and content hashes
    of everything loaded and saved, node times, git commit, packages, device;
  - refuses a node whose inputs descend from different versions of one artifact (`LineageError`);
  - publishes a stage's outputs when its last node is done; a failing run withdraws what it had not published.
ReportHooks prints the run's reports and where its minutes went.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset

from diffusion_bridge.atomic import clean_temporaries
from diffusion_bridge.locks import exclusive_lock
from diffusion_bridge.parameters import check_parameters
from diffusion_bridge.runs.manifest import (
    RunManifest,
    check_lineage,
    content_hash,
    device_summary,
    git_state,
    manifest_path,
    package_versions,
    withdraw,
)

log = logging.getLogger(__name__)

MANIFEST_DATASET = "run_manifest"
INCOMPLETE = ".incomplete"
RAW = "01_raw"


def version_path(dataset: AbstractVersionedDataset, version: str, project: Path) -> Path:
    """Where `dataset` keeps `version`, absolute (a relative filepath is relative to the project)."""
    path = Path(str(dataset._get_versioned_path(version)))
    return path if path.is_absolute() else project / path


def _stage_of_nodes() -> dict[str, str]:
    """Node name -> the registered stage pipeline it belongs to."""
    from kedro.framework.project import pipelines

    from diffusion_bridge.pipeline_registry import STAGES

    return {node.name: stage for stage in STAGES if stage in pipelines for node in pipelines[stage].nodes}


class RunHooks:
    """Lock, manifest, lineage checks and stage publication for one `kedro run` (see the module docstring)."""

    def __init__(self) -> None:
        self._project = Path.cwd()
        self._stack: ExitStack | None = None
        self._manifest: RunManifest | None = None

    # ------------------------------------------------------------------ helpers
    def _path(self, dataset: AbstractVersionedDataset, version: str) -> Path:
        return version_path(dataset, version, self._project)

    def _relative(self, path: Path) -> str:
        """Paths inside the project are recorded relative to it, so a manifest still applies to a moved copy."""
        return path.relative_to(self._project).as_posix() if path.is_relative_to(self._project) else str(path)

    def _versioned(self, name: str) -> AbstractVersionedDataset | None:
        dataset = self._catalog.get(name)
        return dataset if isinstance(dataset, AbstractVersionedDataset) else None

    def _loaded_version(self, name: str) -> str | None:
        dataset = self._versioned(name)
        return dataset.resolve_load_version() if dataset is not None else None

    # ------------------------------------------------------------------ hooks
    @hook_impl
    def after_context_created(self, context) -> None:
        self._project = Path(context.project_path)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        sections = {name.removeprefix("params:").split(".")[0] for node in pipeline.nodes for name in node.inputs
                    if name.startswith("params:")}
        check_parameters(catalog.load("parameters"), sections)
        self._catalog, self._run_id = catalog, run_params["run_id"]
        self._data = self._project / "data"
        self._root = Path(str(catalog.get(MANIFEST_DATASET)._filepath))
        self._root = self._root if self._root.is_absolute() else self._project / self._root
        self._stack = ExitStack()
        self._stack.enter_context(exclusive_lock(self._data, owner=f"kedro run {self._run_id}"))
        self._recover_killed_runs()
        stage_of = _stage_of_nodes()
        self._stage_of = {node.name: stage_of.get(node.name, "other") for node in pipeline.nodes}
        self._pending: dict[str, set[str]] = {}
        for node, stage in self._stage_of.items():
            self._pending.setdefault(stage, set()).add(node)
        self._started: dict[str, float] = {}
        self._manifest = RunManifest.start(
            manifest_path(self._root, self._run_id), self._run_id,
            env=run_params.get("env"), command=sys.argv, pipelines=run_params.get("pipeline_names"),
            filters={k: run_params.get(k) for k in ("tags", "from_nodes", "to_nodes", "node_names", "from_inputs",
                                                    "to_outputs", "namespaces") if run_params.get(k)},
            load_versions=run_params.get("load_versions") or {}, runtime_params=run_params.get("runtime_params") or {},
            parameters=catalog.load("parameters"), git=git_state(self._project), packages=package_versions(),
            device=device_summary(),
        )
        self._manifest.document["stages"] = {stage: "incomplete" for stage in self._pending}

    @hook_impl
    def before_node_run(self, node, catalog, inputs: dict[str, Any]) -> None:
        versions = {name: v for name in node.inputs if (v := self._loaded_version(name)) is not None}
        check_lineage(self._root, versions, node.name)
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, node) -> None:
        if self._manifest is None or dataset_name in self._manifest.document["loaded"]:
            return
        dataset = self._versioned(dataset_name)
        if dataset is not None:
            version = dataset.resolve_load_version()
            path = self._path(dataset, version)
            self._manifest.record("loaded", dataset_name, version=version, path=self._relative(path), sha256=content_hash(path))
        elif hasattr(source := self._catalog.get(dataset_name), "fingerprint"):
            self._manifest.record("loaded", dataset_name, version=None, path=None, sha256=source.fingerprint())

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node) -> None:
        dataset = self._versioned(dataset_name)
        if self._manifest is None or dataset is None or dataset_name == MANIFEST_DATASET:
            return
        path = self._path(dataset, self._run_id)
        inputs = {name: v for name in node.inputs if (v := self._loaded_version(name)) is not None}
        self._manifest.record("saved", dataset_name, version=self._run_id, path=self._relative(path), sha256=content_hash(path),
                              node=node.name, stage=self._stage_of.get(node.name, "other"), inputs=inputs)

    @hook_impl
    def after_node_run(self, node) -> None:
        if self._manifest is None:
            return
        self._manifest.document["nodes"][node.name] = round(time.perf_counter() - self._started.pop(node.name), 3)
        stage = self._stage_of.get(node.name, "other")
        self._pending[stage].discard(node.name)
        if not self._pending[stage]:
            self._manifest.document["stages"][stage] = "published"
        self._manifest.write()

    @hook_impl
    def after_pipeline_run(self) -> None:
        if self._manifest is not None:
            self._manifest.finish("completed")
        self._release()

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        if self._manifest is not None:
            self._withdraw_unpublished(self._manifest)
            self._manifest.finish("failed", error=f"{type(error).__name__}: {error}")
        self._release()

    # ------------------------------------------------------------------ recovery
    def _withdraw_unpublished(self, manifest: RunManifest) -> None:
        document = manifest.document
        keep = [self._project / Path(e["path"]).parent for e in document["saved"].values()
                if document["stages"].get(e["stage"]) == "published"]
        keep.append(manifest.path.parent)
        moved = withdraw(self._data, document["run_id"], keep, self._data / INCOMPLETE)
        if moved:
            document["withdrawn"] = sorted(set(document.get("withdrawn", [])) | set(moved))
            log.warning("Run %s did not complete every stage: moved %d unpublished artifact(s) to %s", document["run_id"],
                        len(moved), self._data / INCOMPLETE / document["run_id"])

    def _recover_killed_runs(self) -> None:
        """Runs still marked `running` while nobody holds the lock were killed: tidy after them."""
        # every folder runs write into; raw corpora (COCO: 123k images) are read-only inputs, not scanned
        removed = [p for folder in sorted(self._data.glob("*")) if folder.is_dir() and folder.name != RAW
                   for p in clean_temporaries(folder)]
        if removed:
            log.warning("Removed %d temporary file(s) left by interrupted writes", len(removed))
        for path in sorted(self._root.glob("*/*.json")) if self._root.is_dir() else []:
            manifest = RunManifest.read(path)
            if manifest.document.get("status") == "running":
                self._withdraw_unpublished(manifest)
                manifest.finish("killed")

    def _release(self) -> None:
        self._manifest = None
        if self._stack is not None:
            self._stack.close()
            self._stack = None


class ReportHooks:
    """Collects report outputs as nodes finish and prints them after the pipeline, with each node's wall time."""

    SUMMARIES = ("gap_report", "alignment_summary", "caption_summary")

    def __init__(self) -> None:
        self._outputs: dict[str, Any] = {}
        self._seconds: dict[str, float] = {}
        self._started: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._outputs, self._seconds, self._started = {}, {}, {}
        self._run_started = time.perf_counter()

    @hook_impl
    def before_node_run(self, node) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node, outputs: dict[str, Any]) -> None:
        self._seconds[node.name] = time.perf_counter() - self._started.pop(node.name, time.perf_counter())
        for name, value in outputs.items():
            if name in self.SUMMARIES:
                self._outputs[name] = value

    @hook_impl
    def after_pipeline_run(self) -> None:
        from diffusion_bridge.study.reports import gap_summary, node_times_summary

        for name in self.SUMMARIES:
            if name in self._outputs:
                value = self._outputs[name]
                click.echo("\n" + (gap_summary(value) if name == "gap_report" else str(value)) + "\n")
        if self._seconds:
            click.echo(node_times_summary(self._seconds, time.perf_counter() - self._run_started) + "\n")
