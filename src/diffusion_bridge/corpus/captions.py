"""Caption clean-up: unicode and whitespace normalisation; the raw text is kept beside it."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"\s+")


def clean_caption(raw: str) -> str:
    """NFKC-normalise, drop control and zero-width characters, collapse whitespace, strip.

    Case and punctuation are kept: CLIP's tokenizer and the caption metrics do their own folding,
    so the cleaned text stays as close to what the annotator wrote as possible.
    """
    text = unicodedata.normalize("NFKC", raw)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()
