"""Named errors for bad corpus input: each message names the file, the record and the fix."""

from __future__ import annotations

from pathlib import Path


class CorpusError(ValueError):
    """Base class for every problem found in a user's corpus."""


class KarpathyFormatError(CorpusError):
    """A Karpathy-split annotation file that does not follow the expected schema."""

    def __init__(
        self,
        file: str | Path,
        problem: str,
        fix: str,
        *,
        index: int | None = None,
        imgid: object = None,
        sentid: object = None,
        field: str | None = None,
    ) -> None:
        self.file, self.index, self.imgid, self.sentid, self.field = str(file), index, imgid, sentid, field
        where = []
        if index is not None:
            where.append(f"images[{index}]")
        if imgid is not None:
            where.append(f"imgid={imgid!r}")
        if sentid is not None:
            where.append(f"sentid={sentid!r}")
        if field is not None:
            where.append(f"field {field!r}")
        record = f" at {', '.join(where)}" if where else ""
        super().__init__(f"{self.file}{record}: {problem}. Fix: {fix}")


class MissingFieldError(KarpathyFormatError):
    """A record lacks a required key."""


class UnknownSplitError(KarpathyFormatError):
    """A record's split is not one of train, restval, val, test."""


class DuplicateIdError(KarpathyFormatError):
    """An imgid or sentid appears twice."""


class EmptyCaptionError(KarpathyFormatError):
    """A caption is empty (or only whitespace) after clean-up."""


class ImageFilesError(CorpusError):
    """Image files referenced by the corpus that cannot be used; all of them are reported together."""

    def __init__(self, kind: str, problems: list[tuple[int, str, str]], annotation_file: str | Path) -> None:
        self.problems = problems  # (imgid, path, reason)
        self.annotation_file = str(annotation_file)
        shown = "\n".join(f"  imgid={i}: {p} ({why})" for i, p, why in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__(
            f"{len(problems)} {kind} image file(s) referenced by {self.annotation_file}:\n{shown}{more}\n"
            "Fix: put the images under the configured image_root (see README, 'Real data'), or set "
            "`corpus.on_bad_images: skip` to leave them out; skipped ids are then listed in corpus_report."
        )


class MissingImagesError(ImageFilesError):
    """Referenced image files that do not exist."""

    def __init__(self, problems: list[tuple[int, str, str]], annotation_file: str | Path) -> None:
        super().__init__("missing", problems, annotation_file)


class UnreadableImagesError(ImageFilesError):
    """Referenced image files that exist but cannot be decoded."""

    def __init__(self, problems: list[tuple[int, str, str]], annotation_file: str | Path) -> None:
        super().__init__("unreadable", problems, annotation_file)
