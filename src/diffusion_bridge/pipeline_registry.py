"""Project pipelines: every stage folder under `pipelines/`, and all of them in order as `__default__`."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Stage order of the study; `__default__` is their sum (Kedro orders nodes by data dependencies anyway).
STAGES = ("prepare", "train", "bridge", "evaluate", "caption")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((pipelines[s] for s in STAGES if s in pipelines), Pipeline([]))
    return pipelines
