"""Project hooks: print the summaries of the reports a run produced, once it ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from kedro.framework.hooks import hook_impl

from diffusion_bridge.study.reports import gap_summary

# Catalog entry → function turning its data into a plain-text summary (strings are printed as they are).
SUMMARIES: dict[str, Callable[[Any], str]] = {
    "gap_report": gap_summary,
    "alignment_summary": str,
    "caption_summary": str,
}


class ReportHooks:
    """Collects report outputs as nodes finish and prints them after the pipeline, in run order."""

    def __init__(self) -> None:
        self._outputs: dict[str, Any] = {}

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._outputs = {}

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        for name, value in outputs.items():
            if name in SUMMARIES:
                self._outputs[name] = value

    @hook_impl
    def after_pipeline_run(self) -> None:
        for name, value in self._outputs.items():
            click.echo("\n" + SUMMARIES[name](value) + "\n")
