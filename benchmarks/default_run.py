"""Wall time of the whole default `kedro run`, node by node, against the settings it replaced, in one run.

Each configuration runs in its own temporary copy of the project (conf/ and the package of this checkout,
an empty data/), as a fresh clone would: the synthetic corpus is rendered, CLIP fitted, and so on.
Node times come from the run manifest (data/09_tracking/run_manifest.json), which records every node's
wall time. The baseline is the default study as of 03f2cab, rebuilt with --params on today's code:
SynthCLIP-Tiny at lr 1e-3 and logit scale 30, 6 decoder epochs with GPT-2's dropout and GELU.

    python benchmarks/default_run.py                         # current defaults, then the baseline (~10 min)
    python benchmarks/default_run.py --skip-baseline         # current defaults only (~5 min)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from _common import write_results

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ("clip.model_name=SynthCLIP-Tiny,clip.fit.lr=0.001,clip.fit.logit_scale=30.0,caption.training.epochs=6,"
            "caption.backbone.dropout=0.1,caption.backbone.activation=gelu_new")


def run_default(params: str | None) -> dict:
    """`kedro run` in a fresh copy of the project; wall seconds and each node's seconds."""
    with tempfile.TemporaryDirectory(prefix="default-run-") as folder:
        project = Path(folder) / "project"
        project.mkdir()
        for item in ("conf", "src", "pyproject.toml", ".telemetry"):
            source = ROOT / item
            if source.is_dir():
                shutil.copytree(source, project / item, ignore=shutil.ignore_patterns("local", "__pycache__"))
            elif source.exists():
                shutil.copy(source, project / item)
        (project / "conf" / "local").mkdir(exist_ok=True)
        command = [sys.executable, "-m", "kedro", "run"] + (["--params", params] if params else [])
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(project / "src")}
        start = time.perf_counter()
        subprocess.run(command, cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        manifest = next((project / "data" / "09_tracking" / "run_manifest.json").glob("*/run_manifest.json"))
        nodes = json.loads(manifest.read_text())["nodes"]
    return {"params": params, "wall_s": round(wall, 1), "nodes_s": dict(sorted(nodes.items(), key=lambda kv: -kv[1]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-baseline", action="store_true", help="time the current defaults only")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    runs = {"default": run_default(None)}
    if not args.skip_baseline:
        runs["baseline"] = run_default(BASELINE)
    for name, run in runs.items():
        print(f"{name}: {run['wall_s']:.1f} s wall" + (f"  (--params {run['params']})" if run["params"] else ""))
        for node, seconds in list(run["nodes_s"].items())[:8]:
            print(f"  {node:34s} {seconds:7.1f} s")
    if "baseline" in runs:
        print(f"default / baseline wall time: {runs['default']['wall_s'] / runs['baseline']['wall_s']:.2f}x")
    if args.out:
        write_results(args.out, "default_run", torch.device("cpu"), {"baseline_params": BASELINE}, runs)


if __name__ == "__main__":
    main()
