"""Atomic writes: a file or folder appears whole under its final name or not at all.

Everything is written into a temporary sibling (`.<name>.<random>.partial`) and renamed into place. When
a folder already exists (a checkpoint saved again), it is first renamed aside (`.<name>.<random>.old`),
then the new one takes its name, then the old one is deleted: a crash between the two renames leaves the
old one aside, and `resolve` finds it. `clean_temporaries` tidies what killed writers left behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL, RETIRED = ".partial", ".old"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(final: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `final` to write into; it replaces `final` only if the block succeeds."""
    final = Path(final)
    created = not final.parent.exists()  # a fresh version folder is removed again if the write fails
    final.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=PARTIAL, dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=PARTIAL, dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        _swap_into_place(tmp, final)
    except BaseException:
        _remove(tmp)
        if created and final.parent.exists() and not any(final.parent.iterdir()):
            final.parent.rmdir()
        raise


def _swap_into_place(tmp: Path, final: Path) -> None:
    if not (final.is_dir() and tmp.is_dir()):
        os.replace(tmp, final)  # files (and a folder taking a fresh name) are replaced in one step
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=RETIRED, dir=final.parent))
    os.replace(final, retired / final.name)
    os.replace(tmp, final)
    shutil.rmtree(retired, ignore_errors=True)


def resolve(final: str | Path, complete: str) -> Path | None:
    """`final` if it holds the file `complete`; else the copy a crash left aside mid-swap; else None."""
    final = Path(final)
    if (final / complete).is_file():
        return final
    aside = [p / final.name for p in final.parent.glob(f".{final.name}.*{RETIRED}") if (p / final.name / complete).is_file()]
    return max(aside, key=lambda p: p.stat().st_mtime) if aside else None


def stale_temporaries(folder: str | Path) -> list[Path]:
    """Temporaries under `folder` that an interrupted writer left behind."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for pattern in (f".*{PARTIAL}", f".*{RETIRED}") for p in folder.rglob(pattern))


def clean_temporaries(folder: str | Path) -> list[Path]:
    """Remove what interrupted writers left under `folder`, restoring a folder a crash left aside mid-swap.

    Call it only while holding the folder's lock (no writer may be running). Returns what was removed.
    """
    removed = []
    for path in stale_temporaries(folder):
        if not path.exists():
            continue
        if path.name.endswith(RETIRED):
            name = _final_name(path)
            final, aside = path.parent / name, path / name
            if aside.exists() and not final.exists():
                os.replace(aside, final)  # the swap died between its two renames: the old copy is the only one
        _remove(path)
        removed.append(path)
    return removed


def _final_name(retired: Path) -> str:
    """`.<name>.<random>.old` -> `<name>` (names may contain dots; the random part never does)."""
    return retired.name[1:].rsplit(".", 2)[0]
