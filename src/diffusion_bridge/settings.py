"""Kedro project settings (see https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

from kedro.config import OmegaConfigLoader

from diffusion_bridge.runs.hooks import ReportHooks, RunHooks
from diffusion_bridge.runs.tracking import TrackingHooks

# RunHooks: lock, run manifest, lineage checks, stage publication (see diffusion_bridge.runs.hooks);
# ReportHooks: prints the run's reports and each node's wall time once the run ends;
# TrackingHooks: logs to MLflow when `tracking.enabled` is true (MLflow is imported only then).
HOOKS = (RunHooks(), ReportHooks(), TrackingHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments override only what differs: nested parameter keys are merged into base, not replaced.
    "merge_strategy": {"parameters": "soft"},
}
