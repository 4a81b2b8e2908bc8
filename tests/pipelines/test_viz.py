"""kedro-viz shows the study: every pipeline, layer bands in study order, lineage edges, and previews of the
project's own datasets, through its REST API and in a real (headless) Chromium.

The server runs in a subprocess on a socket it bound to port 0 before loading the project
(`vizserver.py`), so no port is ever guessed: nothing can take it first and kedro-viz's port limits
never apply. Requests made before the app is ready wait in the socket's backlog, so there is no polling
and no wall-clock deadline; the only timeouts are guards against a hung server or browser.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow

SERVER = Path(__file__).with_name("vizserver.py")
HANG_GUARD_S = 900  # far beyond any real load time; only stops a server or browser that never answers
# The study's layers, in the order its data flows (conf/README.md explains why they are not Kedro's usual eight).
LAYERS = ["raw", "intermediate", "encoder", "primary", "feature", "diffusion", "bridged", "representations", "decoders",
          "captions", "reporting"]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


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
    """A project copy holding one saved version of a table, a JSON document, a report and tensors."""
    project = kedro_project_factory("viz")
    catalog = project.catalog()
    catalog.save("images_table", pd.DataFrame({"imgid": [7, 8], "split": ["train", "test"], "image_path": ["a.png", "b.png"]}))
    catalog.save("corpus_report", {"corpus": "synthetic", "skipped_images": list(range(10))})
    catalog.save("alignment_report", "# Alignment\n\n| representation | paired cosine |\n|---|---|\n| bridged | 0.4 |\n")
    catalog.save("modality_means", {"image_mean": torch.ones(64), "text_mean": torch.zeros(64)})
    server = VizServer(project.path, project.path.parent / "viz.log")
    yield server
    server.close()


def _ids(payload: dict) -> dict[str, str]:
    return {n["name"]: n["id"] for n in payload["nodes"]}


def test_viz_serves_every_pipeline_with_layers_and_lineage(viz):
    main = viz.get("/api/main")
    pipelines = {p["id"] for p in main["pipelines"]}
    assert {"__default__", "prepare", "train", "bridge", "evaluate", "caption"} <= pipelines
    assert main["layers"] == LAYERS  # no cycle among the layers: kedro-viz would return none

    prepare = viz.get("/api/pipelines/prepare")
    nodes = {n["name"]: n for n in prepare["nodes"]}
    for dataset in ("raw_corpus", "images_table", "clip_model", "image_embeddings_train", "text_embeddings_test",
                    "modality_means", "gap_report"):
        assert nodes[dataset]["type"] == "data", dataset
    assert nodes["image_embeddings_train"]["layer"] == "feature"
    assert nodes["clip_model"]["layer"] == "encoder"
    assert nodes["obtain_clip"]["type"] == "task"
    # lineage: the CLIP model feeds the embedding nodes
    ids = {n["id"]: n["name"] for n in prepare["nodes"]}
    edges = {(ids[e["source"]], ids[e["target"]]) for e in prepare["edges"]}
    assert ("clip_model", "embed_images") in edges and ("embed_images", "image_embeddings_train") in edges
    # the decoders share one tokenisation of the train captions
    caption = viz.get("/api/pipelines/caption")
    names = {n["id"]: n["name"] for n in caption["nodes"]}
    layers = {n["name"]: n.get("layer") for n in caption["nodes"]}
    edges = {(names[e["source"]], names[e["target"]]) for e in caption["edges"]}
    assert layers["decoder_train_tokens"] == layers["decoder_vocabulary"] == "primary"
    for decoder in ("train_text_decoder", "train_noise_decoder", "train_augmented_decoder"):
        assert ("decoder_train_tokens", decoder) in edges and ("decoder_vocabulary", decoder) in edges


def test_viz_previews_the_projects_own_datasets(viz):
    ids = _ids(viz.get("/api/main"))
    table = viz.get(f"/api/nodes/{ids['images_table']}")
    assert table["preview_type"] == "TablePreview" and table["preview"]["columns"] == ["imgid", "split", "image_path"]
    document = viz.get(f"/api/nodes/{ids['corpus_report']}")
    assert document["preview_type"] == "JSONPreview"
    assert json.loads(document["preview"])["skipped_images"][:3] == [0, 1, 2]  # long lists are cut down
    report = viz.get(f"/api/nodes/{ids['alignment_report']}")
    assert report["preview_type"] == "HTMLPreview" and "| bridged | 0.4 |" in report["preview"]
    tensors = viz.get(f"/api/nodes/{ids['modality_means']}")
    rows = {row[0]: row for row in tensors["preview"]["data"]}
    assert rows["image_mean"][1:3] == ["(64,)", "float32"] and rows["image_mean"][3].startswith("[1.0, 1.0, 1.0]")
    corpus = viz.get(f"/api/nodes/{ids['raw_corpus']}")
    assert json.loads(corpus["preview"])["spec"]["n_train"] == 1500


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_the_app_renders_the_flowchart_layers_and_a_preview_in_chromium(viz, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1000",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(f"{viz.url}/?pid=__default__")
        wait = WebDriverWait(browser, HANG_GUARD_S)
        wait.until(shown.presence_of_element_located((By.CSS_SELECTOR, ".pipeline-node--task")))
        data_nodes = browser.find_elements(By.CSS_SELECTOR, ".pipeline-node--data")
        served = [n["type"] for n in viz.get("/api/pipelines/__default__")["nodes"]]  # every node the API serves is drawn
        assert len(browser.find_elements(By.CSS_SELECTOR, ".pipeline-node--task")) == served.count("task")
        assert len(data_nodes) == served.count("data")
        bands = [e.get_attribute("textContent").strip() for e in browser.find_elements(By.CSS_SELECTOR, ".pipeline-layer-name")]
        assert bands == LAYERS
        (node,) = [n for n in data_nodes if n.get_attribute("textContent").strip() == "images_table"]
        browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", node)
        preview = wait.until(shown.visibility_of_element_located((By.CSS_SELECTOR, ".pipeline-metadata__preview .preview-table")))
        assert "imgid" in preview.text and "b.png" in preview.text
        screenshot = tmp_path / "kedro-viz.png"
        browser.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 20_000
    finally:
        browser.quit()
