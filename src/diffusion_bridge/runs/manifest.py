"""The run manifest: what one `kedro run` read and wrote, with which settings, on which code and machine.

A manifest is a small JSON document, written again after every node so that a killed run still leaves
an accurate record. Every artifact a run saves carries the run's id as its version folder, so the
manifest of the run that made `name@version` is the manifest whose run id is `version`: lineage is a
walk from manifest to manifest, with no other index.

  run_id, status (running, completed, failed), started, ended, env, command, pipelines, parameters,
  git {commit, dirty}, packages, device,
  loaded {name: {version, path, sha256}}, saved {name: {version, path, sha256, node, stage, inputs}},
  nodes {name: seconds}, stages {stage: published | incomplete}, withdrawn [paths]
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from diffusion_bridge.atomic import PARTIAL, RETIRED, atomic_path
from diffusion_bridge.errors import LineageError

FILE = "run_manifest.json"
PACKAGES = ("diffusion_bridge", "torch", "kedro", "kedro-datasets", "open_clip_torch", "transformers", "accelerate",
            "numpy", "safetensors")


def content_hash(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and bytes, in sorted order, temporaries skipped)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and not p.name.endswith((PARTIAL, RETIRED))
    )
    for file in files:
        if file != path:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def git_state(folder: Path) -> dict[str, Any]:
    """The commit checked out in `folder` and whether the work tree differs from it (None outside git)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=60, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    return {"commit": commit, "dirty": bool(git("status", "--porcelain")) if commit else None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_summary() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "cuda": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
    }


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RunManifest:
    """The manifest of the current run, kept in memory and rewritten atomically at `path` on every `write()`."""

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path, self.document = path, document

    @classmethod
    def start(cls, path: Path, run_id: str, **fields: Any) -> RunManifest:
        document = {"run_id": run_id, "status": "running", "started": now(), "ended": None, **fields,
                    "loaded": {}, "saved": {}, "nodes": {}, "stages": {}, "withdrawn": []}
        manifest = cls(path, document)
        manifest.write()
        return manifest

    @classmethod
    def read(cls, path: Path) -> RunManifest:
        return cls(path, json.loads(path.read_text(encoding="utf-8")))

    def write(self) -> None:
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(self.document, indent=2, default=str), encoding="utf-8")

    def record(self, kind: str, name: str, **entry: Any) -> None:
        self.document[kind][name] = entry

    def finish(self, status: str, error: str | None = None) -> None:
        self.document |= {"status": status, "ended": now()} | ({"error": error} if error else {})
        self.write()


def manifest_path(root: Path, run_id: str) -> Path:
    """Where the manifest of run `run_id` lives under the catalog entry's folder `root`."""
    return root / run_id / FILE


def ancestry(root: Path, name: str, version: str, cache: dict[tuple[str, str], dict[str, str]] | None = None) -> dict[str, str]:
    """{dataset: version} for `name@version` and everything it was computed from, following the manifests.

    Artifacts without a manifest entry (made before manifests existed, or by hand) end the walk there.
    """
    cache = {} if cache is None else cache
    key = (name, version)
    if key in cache:
        return cache[key]
    found = {name: version}
    path = manifest_path(root, version)
    if path.is_file():
        entry = json.loads(path.read_text(encoding="utf-8")).get("saved", {}).get(name)
        for parent, parent_version in (entry or {}).get("inputs", {}).items():
            found |= ancestry(root, parent, parent_version, cache)
    cache[key] = found
    return found


def _reads(name: str, version: str, ancestor: str, ancestor_version: str) -> str:
    if name == ancestor:
        return f"reads {name}@{version}"
    return f"reads {name}@{version}, made from {ancestor}@{ancestor_version}"


def check_lineage(root: Path, inputs: Mapping[str, str], node: str) -> None:
    """Refuse a node whose inputs descend from different versions of one artifact (e.g. two CLIP models)."""
    cache: dict[tuple[str, str], dict[str, str]] = {}
    seen: dict[str, tuple[str, str]] = {}  # ancestor -> (its version, the input it came through)
    for name, version in sorted(inputs.items()):
        for ancestor, ancestor_version in ancestry(root, name, version, cache).items():
            if ancestor in seen and seen[ancestor][0] != ancestor_version:
                other_version, other_input = seen[ancestor]
                raise LineageError(
                    f"node {node!r} would combine artifacts that were not made together: it "
                    f"{_reads(name, version, ancestor, ancestor_version)}, and "
                    f"{_reads(other_input, inputs[other_input], ancestor, other_version)}. "
                    f"Fix: rerun the stages after the one that made {ancestor} (e.g. `kedro run --from-inputs={ancestor}`), "
                    f"or pin matching versions with `--load-versions` (the run manifests under {root} list them)"
                )
            seen.setdefault(ancestor, (ancestor_version, name))


def version_folders(data_root: Path, run_id: str) -> list[Path]:
    """Every version folder a run wrote under `data/<layer>/<dataset>/<run_id>`."""
    return sorted(p for p in data_root.glob(f"*/*/{run_id}") if p.is_dir())


def withdraw(data_root: Path, run_id: str, keep: Iterable[Path], aside: Path) -> list[str]:
    """Move the version folders of `run_id` not in `keep` to `aside/<run_id>/...`: an incomplete stage's
    outputs leave the catalog together, so `latest` is again the last complete set. Returns what moved."""
    keep = {Path(p).resolve() for p in keep}
    moved = []
    for folder in version_folders(data_root, run_id):
        if folder.resolve() in keep:
            continue
        target = aside / run_id / folder.relative_to(data_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
        moved.append(folder.relative_to(data_root).as_posix())
    return moved
