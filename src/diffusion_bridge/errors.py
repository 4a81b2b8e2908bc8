"""The errors a user can act on: one type per thing to fix, each message naming the file or record and the fix.

Catch `DiffusionBridgeError` for all of them. Every type also derives from the built-in exception that
describes it (`ValueError`, `RuntimeError`), so code written against those keeps working.
"""

from __future__ import annotations


class DiffusionBridgeError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(DiffusionBridgeError, ValueError):
    """A parameter or setting that cannot work: unknown name, value out of range, settings that contradict."""


class CorpusError(DiffusionBridgeError, ValueError):
    """An annotation file (Karpathy JSON, COCO labels/results, scene records) that breaks its format.

    `file`, `index`, `imgid`, `sentid` and `field` locate the record where they are known.
    """

    def __init__(
        self,
        file: str,
        problem: str,
        fix: str,
        *,
        index: int | None = None,
        imgid: object = None,
        sentid: object = None,
        field: str | None = None,
    ) -> None:
        self.file, self.index, self.imgid, self.sentid, self.field = str(file), index, imgid, sentid, field
        where = [
            f"images[{index}]" if index is not None else "",
            f"imgid={imgid!r}" if imgid is not None else "",
            f"sentid={sentid!r}" if sentid is not None else "",
            f"field {field!r}" if field is not None else "",
        ]
        record = ", ".join(w for w in where if w)
        super().__init__(f"{self.file}{f' at {record}' if record else ''}: {problem}. Fix: {fix}")


class ImageFilesError(DiffusionBridgeError, ValueError):
    """Image files a corpus refers to that cannot be used (missing, unreadable, outside `image_root`).

    All of a run's bad files are reported together; `problems` holds (imgid, path, reason) for each.
    """

    def __init__(self, kind: str, problems: list[tuple[int, str, str]], source: str, fix: str) -> None:
        self.kind, self.problems, self.source = kind, problems, str(source)
        shown = "\n".join(f"  imgid={i}: {p} ({why})" for i, p, why in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} {kind} image file(s) referenced by {self.source}:\n{shown}{more}\nFix: {fix}")


class CheckpointError(DiffusionBridgeError, ValueError):
    """A saved model or checkpoint that is missing, damaged, or does not fit the model or data it is used with."""


class InputError(DiffusionBridgeError, ValueError):
    """Tensors or values handed to a function that do not fit it or each other (shape, width, rows, ids)."""


class NonFiniteError(InputError):
    """Embeddings (or vectors derived from them) that hold NaN or infinity."""


class WorkdirError(DiffusionBridgeError, RuntimeError):
    """A working or output folder that belongs to another run, or is held by a run still going on."""


class LineageError(DiffusionBridgeError, ValueError):
    """Artifacts that were not made together (different runs, CLIP models or corpora) meeting in one stage."""


class ReplayError(DiffusionBridgeError, ValueError):
    """A run manifest that cannot be replayed: missing versions, or inputs whose content has changed."""
