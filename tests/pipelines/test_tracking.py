"""Experiment tracking: a run with `tracking.enabled` is read back through MLflow's own client; a run without
it never imports MLflow."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

STAGES = ["prepare", "train"]


def test_a_tracked_run_logs_parameters_curves_metrics_and_reports(kedro_project):
    mlflow = pytest.importorskip("mlflow")
    kedro_project.run(STAGES, env="smoke", params={"tracking": {"enabled": True}})
    run_id = kedro_project.run_versions[-1]

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project.path / 'data/09_tracking/mlflow/mlflow.db'}")
    client = mlflow.tracking.MlflowClient()
    experiment = client.get_experiment_by_name("diffusion-bridge")
    (run,) = client.search_runs([experiment.experiment_id], filter_string=f"attributes.run_name = '{run_id}'")
    assert run.info.status == "FINISHED" and run.data.tags["kedro.pipelines"] == "prepare,train"
    assert run.data.params["diffusion.preset"] == '"fast"' and run.data.params["clip.fit.steps"] == "8"
    losses = client.get_metric_history(run.info.run_id, "diffusion/train/loss")
    assert [m.step for m in losses] == [10, 20, 30, 40]  # log_every 10 over 40 steps (smoke preset)
    validation = client.get_metric_history(run.info.run_id, "diffusion/val/cos_x0/t600")
    assert [m.step for m in validation] == [20, 40] and all(-1 <= m.value <= 1 for m in validation)
    assert 0 < run.data.metrics["gap/test/centroid_distance"] < 2
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"gap_report", "diffusion_metrics"} <= artifacts
    (logged,) = client.list_artifacts(run.info.run_id, "gap_report")
    assert logged.path == "gap_report/gap_report.json"


def test_a_run_without_tracking_never_imports_mlflow(kedro_project):
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project
        project = Path({str(kedro_project.path)!r})
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env="smoke") as session:
            session.run(pipeline_names=["prepare"])
        print(sorted(m for m in sys.modules if m.split(".")[0] == "mlflow"))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=kedro_project.path, capture_output=True, text=True,
                          timeout=1800, check=True)  # timeout: hang guard only
    assert done.stdout.strip().splitlines()[-1] == "[]"
