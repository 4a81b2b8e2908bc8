"""Exclusive locks on folders a run writes into (the project's `data/`, a training workdir).

`fcntl.flock` locks belong to the open file: the operating system releases them when the holder exits,
however it exits (kill -9 included), so a lock can never be left stale. The lock file records who holds
it, so a refused run can say which process to wait for.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from diffusion_bridge.errors import WorkdirError

LOCK_FILE = ".lock"


def _holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def exclusive_lock(folder: str | Path, owner: str, wait_s: float = 0.0) -> Iterator[Path]:
    """Hold `folder/.lock` for the block; wait up to `wait_s` seconds for another holder, then refuse.

    Raises `WorkdirError` naming the holder (pid, what it is, since when) and the fix.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    handle = path.open("a+", encoding="utf-8")
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(path)
                    raise WorkdirError(
                        f"{folder} is in use by {holder.get('owner', 'another process')} (pid {holder.get('pid', '?')}, "
                        f"since {holder.get('since', '?')}). Fix: wait for it to finish, or give this run its own "
                        "folder; two runs writing one folder would mix or repeat their work"
                    ) from None
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"owner": owner, "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}))
        handle.flush()
        yield path
    finally:
        handle.close()  # closing the file releases the lock

