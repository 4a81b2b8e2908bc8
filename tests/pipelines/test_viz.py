"""`kedro viz run` serves the project's pipelines and datasets through its REST API (headless)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_viz_serves_the_prepare_pipeline(tmp_path):
    port = _free_port()
    env = os.environ | {"KEDRO_DISABLE_TELEMETRY": "1"}
    log = (tmp_path / "viz.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "kedro", "viz", "run", "--host", "127.0.0.1", "--port", str(port), "--no-browser"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        main = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"kedro viz exited early:\n{(tmp_path / 'viz.log').read_text()[-3000:]}")
            try:
                main = _get(f"http://127.0.0.1:{port}/api/main")
                break
            except OSError:
                time.sleep(1)
        assert main is not None, "kedro viz did not answer within 120 s"

        pipelines = {p["id"] for p in main["pipelines"]}
        assert {"__default__", "prepare", "train", "bridge", "evaluate", "caption"} <= pipelines

        prepare = _get(f"http://127.0.0.1:{port}/api/pipelines/prepare")
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
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
