"""Replaying a recorded run: the same pipelines, parameters and input versions, checked before anything runs.

The inputs of a run are the versioned datasets it loaded but did not make itself; they are pinned with
`load_versions`, and each must still exist with the content hash the manifest recorded. Raw corpora are
compared by fingerprint. Everything the run made is made again, as new versions.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffusion_bridge.errors import ReplayError
from diffusion_bridge.runs.manifest import content_hash


@dataclass(frozen=True)
class ReplayPlan:
    """What `KedroSession.run` needs to repeat a recorded run."""

    run_id: str
    env: str | None
    pipelines: list[str] | None
    load_versions: dict[str, str]
    parameters: dict[str, Any]
    filters: dict[str, Any] = field(default_factory=dict)

    def command(self) -> str:
        """The equivalent `kedro run` line (parameters come from the manifest, so replay them with `kedro replay`)."""
        parts = ["kedro", "run"]
        if self.env:
            parts.append(f"--env={self.env}")
        if self.pipelines:
            parts.append(f"--pipelines={','.join(self.pipelines)}")
        if self.load_versions:
            parts.append("--load-versions=" + ",".join(f"{k}:{v}" for k, v in sorted(self.load_versions.items())))
        return shlex.join(parts)


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "run_manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ReplayError(
            f"{path} does not exist. Fix: pass a run manifest, e.g. data/09_tracking/run_manifest.json/<run id>/"
            "run_manifest.json (`ls data/09_tracking/run_manifest.json` lists the recorded runs)"
        ) from error
    except (OSError, ValueError) as error:
        raise ReplayError(f"{path} is not a readable run manifest ({error}). Fix: pass the JSON a run wrote") from error


def plan_replay(manifest: dict[str, Any], project: Path, catalog_fingerprints: dict[str, str] | None = None) -> ReplayPlan:
    """Check every input the run read against the manifest and return how to run it again.

    Raises `ReplayError` naming the dataset and version when an input is gone or its content has changed.
    """
    saved = set(manifest.get("saved", {}))
    pinned: dict[str, str] = {}
    for name, entry in sorted(manifest.get("loaded", {}).items()):
        if name in saved:
            continue  # made by the run itself: made again
        if entry.get("version") is None:
            now = (catalog_fingerprints or {}).get(name)
            if now is not None and entry.get("sha256") and now != entry["sha256"]:
                raise ReplayError(
                    f"input {name} has changed since run {manifest['run_id']}: its fingerprint was {entry['sha256'][:12]}…, "
                    f"now {now[:12]}…. Fix: restore the original {name}, or rerun instead of replaying"
                )
            continue
        path = Path(entry["path"])
        path = path if path.is_absolute() else project / path
        if not path.exists():
            folder = path.parent.parent
            raise ReplayError(
                f"input {name} version {entry['version']} no longer exists (expected {path}). Fix: list the versions "
                f"that do exist with `ls {folder}` and replay a run that used one of them"
            )
        digest = content_hash(path)
        if digest != entry.get("sha256"):
            raise ReplayError(
                f"input {name} version {entry['version']} has changed since run {manifest['run_id']}: sha256 was "
                f"{str(entry.get('sha256'))[:12]}…, now {digest[:12]}… ({path}). Fix: restore that version, or rerun "
                "the stage that makes it instead of replaying"
            )
        pinned[name] = entry["version"]
    return ReplayPlan(
        run_id=manifest["run_id"], env=manifest.get("env"), pipelines=manifest.get("pipelines"),
        load_versions=pinned, parameters=manifest.get("parameters", {}), filters=manifest.get("filters", {}),
    )


def replay(manifest_file: str | Path, project: str | Path = ".") -> tuple[ReplayPlan, dict[str, Any]]:
    """Run the recorded run again in the Kedro project at `project`; returns the plan and Kedro's run result."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = Path(project).resolve()
    manifest = read_manifest(manifest_file)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=manifest.get("env"), runtime_params=manifest.get("parameters")) as session:
        catalog = session.load_context().catalog
        fingerprints = {name: ds.fingerprint() for name in manifest.get("loaded", {})
                        if hasattr(ds := catalog.get(name), "fingerprint")}
        plan = plan_replay(manifest, project, fingerprints)
        result = session.run(pipeline_names=plan.pipelines, load_versions=plan.load_versions, **plan.filters)
    return plan, result
