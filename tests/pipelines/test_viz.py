"""kedro-viz serves the project's pipelines and datasets through its REST API (headless).

The server runs in a subprocess on a socket it bound to port 0 before loading the project
(`vizserver.py`), so no port is ever guessed: nothing can take it first and kedro-viz's port limits
never apply. Requests made before the app is ready wait in the socket's backlog, so there is no polling
and no wall-clock deadline; the only timeout is a guard against a hung server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SERVER = Path(__file__).with_name("vizserver.py")
HANG_GUARD_S = 900  # far beyond any real load time; only stops a server that never answers


class VizServer:
    """A kedro-viz server for one project folder; `get(path)` returns the decoded JSON of an API path."""

    def __init__(self, project: Path, log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), str(project)], cwd=project, stdout=subprocess.PIPE,
            stderr=self._log, text=True,
        )
        first_line = self.process.stdout.readline().strip()
        if not first_line.isdigit():
            self.close()
            pytest.fail(f"the viz server did not start:\n{log.read_text()[-3000:]}")
        self.url = f"http://127.0.0.1:{int(first_line)}"

    def get(self, path: str) -> dict:
        try:
            with urllib.request.urlopen(self.url + path, timeout=HANG_GUARD_S) as response:
                return json.loads(response.read())
        except OSError as error:
            raise AssertionError(f"{path}: {error}; server log:\n{Path(self._log.name).read_text()[-3000:]}") from error

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=HANG_GUARD_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self._log.close()


@pytest.fixture(scope="module")
def viz(kedro_project_factory):
    project = kedro_project_factory("viz")
    server = VizServer(project.path, project.path.parent / "viz.log")
    yield server
    server.close()


def test_viz_serves_every_pipeline_with_layers_and_lineage(viz):
    main = viz.get("/api/main")
    pipelines = {p["id"] for p in main["pipelines"]}
    assert {"__default__", "prepare", "train", "bridge", "evaluate", "caption"} <= pipelines

    prepare = viz.get("/api/pipelines/prepare")
    nodes = {n["name"]: n for n in prepare["nodes"]}
    for dataset in ("raw_corpus", "images_table", "clip_model", "image_embeddings_train", "text_embeddings_test",
                    "modality_means", "gap_report"):
        assert nodes[dataset]["type"] == "data", dataset
    assert nodes["image_embeddings_train"]["layer"] == "feature"
    assert nodes["clip_model"]["layer"] == "models"
    assert nodes["obtain_clip"]["type"] == "task"
    # lineage: the CLIP model feeds the embedding nodes
    ids = {n["id"]: n["name"] for n in prepare["nodes"]}
    edges = {(ids[e["source"]], ids[e["target"]]) for e in prepare["edges"]}
    assert ("clip_model", "embed_images") in edges and ("embed_images", "image_embeddings_train") in edges
