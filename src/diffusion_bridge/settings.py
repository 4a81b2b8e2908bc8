"""Kedro project settings (see https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

from kedro.config import OmegaConfigLoader

from diffusion_bridge.hooks import ReportHooks

# Prints the reports that a run produced (gap, alignment, captioning) once the run ends.
HOOKS = (ReportHooks(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments override only what differs: nested parameter keys are merged into base, not replaced.
    "merge_strategy": {"parameters": "soft"},
}
