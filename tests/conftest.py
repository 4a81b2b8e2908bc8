"""Shared fixtures: a throw-away copy of the Kedro project to run pipelines in."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")


class KedroProject:
    """A copy of conf/ and pyproject.toml in a temp folder, so runs write their data/ there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        shutil.copytree(ROOT / "conf", path / "conf", ignore=shutil.ignore_patterns("local"))
        (path / "conf" / "local").mkdir()
        shutil.copy(ROOT / "pyproject.toml", path / "pyproject.toml")
        shutil.copy(ROOT / ".telemetry", path / ".telemetry")
        (path / "data").mkdir()
        (path / "src").mkdir()  # Kedro checks that the source folder exists; the package itself is installed
        self.run_versions: list[str] = []  # the save version (session id) of every run, oldest first

    def run(self, pipelines: list[str] | None = None, env: str | None = None, params: dict[str, Any] | None = None,
            load_versions: dict[str, str] | None = None) -> dict[str, Any]:
        """Run pipelines in-process with Kedro's own session machinery, from the project folder."""
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        cwd = Path.cwd()
        os.chdir(self.path)
        try:
            bootstrap_project(self.path)
            with KedroSession.create(project_path=self.path, env=env, runtime_params=params or {}) as session:
                self.run_versions.append(session.session_id)
                return session.run(pipeline_names=pipelines, load_versions=load_versions or {})
        finally:
            os.chdir(cwd)

    def catalog(self, env: str | None = None, params: dict[str, Any] | None = None):
        """The project's data catalog, as a notebook would get it."""
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        cwd = Path.cwd()
        os.chdir(self.path)
        try:
            bootstrap_project(self.path)
            with KedroSession.create(project_path=self.path, env=env, runtime_params=params or {}) as session:
                return session.load_context().catalog
        finally:
            os.chdir(cwd)

    def versions(self, relative: str) -> list[str]:
        """Saved versions (timestamps) of a versioned artifact, oldest first."""
        return sorted(p.name for p in (self.path / relative).iterdir())


@pytest.fixture(autouse=True)
def _seeded_global_rngs():
    """Every test starts from the same global RNG state, whatever ran before it and in whichever order.

    Library code draws from seeded generators of its own; this covers the tests' own `torch.randn(...)`
    inputs, so no assertion can depend on which tests happened to run first.
    """
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def kedro_project(tmp_path: Path) -> KedroProject:
    return KedroProject(tmp_path / "project")


@pytest.fixture(scope="session")
def kedro_project_factory(tmp_path_factory) -> Callable[[str], KedroProject]:
    return lambda name: KedroProject(tmp_path_factory.mktemp(name) / "project")
