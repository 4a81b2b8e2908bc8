"""Serve a Kedro project with kedro-viz on a socket that is bound before anything else happens.

usage: python vizserver.py PROJECT_PATH

The socket is bound to port 0 (the OS hands out a port nobody holds) and starts listening at once; its
port number is the first line printed. kedro-viz then loads the project and serves on that socket, exactly
as `kedro viz run` does (`load_and_populate_data`, `create_api_app_from_project`, uvicorn), but without the
CLI's port search, which refuses ports above 49151 and can lose a race for the port it probed. A client may
connect as soon as the port is printed: its request waits in the listen backlog until the app is ready.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path


def main(project: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)

    import uvicorn
    from kedro_viz.api import apps
    from kedro_viz.server import load_and_populate_data

    load_and_populate_data(project)
    app = apps.create_api_app_from_project(project)
    uvicorn.Server(uvicorn.Config(app, log_config=None)).run(sockets=[sock])


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
