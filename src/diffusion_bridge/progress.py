"""One progress-bar style for every long loop: live in a terminal, a line every few seconds in logs."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """tqdm with a 2-second refresh floor, so piped logs (CI, `kedro run > log`) stay readable."""
    return tqdm(iterable, disable=not enabled, mininterval=2.0, dynamic_ncols=True, **kwargs)
