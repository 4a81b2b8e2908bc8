"""Run pipelines of a Kedro project in this process and SIGKILL it at the N-th call of one function.

usage: python killed_run.py PROJECT ENV PIPELINES MODULE:FUNCTION N [PARAMS_JSON]

The function is replaced, in the module that looks it up, by a wrapper that kills the process on its N-th
call, before it runs (signal 9, as `kill -9` sends: no cleanup, no hook runs). Targets the tests use:
`diffusion_bridge.atomic:_swap_into_place` (inside a save: the data is written, not yet renamed into place)
and the training loops' step functions (at a step boundary).
"""

import importlib
import json
import os
import signal
import sys
from pathlib import Path


def main() -> None:
    project, env, pipelines, target, count = sys.argv[1:6]
    params = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    module_name, function_name = target.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, function_name)
    calls = {"n": 0}

    def killing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == int(count):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(module, function_name, killing)

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    os.chdir(project)
    bootstrap_project(Path(project))
    with KedroSession.create(project_path=Path(project), env=env, runtime_params=params) as session:
        session.run(pipeline_names=pipelines.split(","))
    print("finished without being killed", flush=True)


if __name__ == "__main__":
    main()
