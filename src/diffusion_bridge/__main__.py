"""Run the project as `python -m diffusion_bridge` (same as `kedro run`); `diffusion-bridge replay <manifest>`
replays a recorded run (same as `kedro replay <manifest>`)."""

import sys
from pathlib import Path
from typing import Any

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project


def main(*args: Any, **kwargs: Any) -> Any:
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    if sys.argv[1:2] == ["replay"]:
        from diffusion_bridge.cli import cli

        return cli(*args, **kwargs)
    kwargs["standalone_mode"] = not hasattr(sys, "ps1")
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
