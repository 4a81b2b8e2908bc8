"""Caption vocabularies: text <-> token ids for the prefix decoder, saved as plain JSON.

Two kinds: GPT-2's own byte-level BPE (the paper's decoder, `coco` environment) and a compact
vocabulary cut from open_clip's bundled BPE (the offline default: no download, small softmax).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from diffusion_bridge.errors import CheckpointError

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
_CLIP_WORD_END = "</w>"
# open_clip's BPE drops the spacing around punctuation; put it back the way captions are written.
_SPACE_BEFORE_PUNCT = re.compile(r" ([.,!?;:])")
_SPACE_BEFORE_CLITIC = re.compile(r" '(s|t|re|ve|m|ll|d)\b")




@runtime_checkable
class CaptionVocabulary(Protocol):
    """What the decoder needs from a tokenizer: ids in, ids out, the stop and filler ids, JSON."""

    eos_id: int
    pad_id: int
    vocab_size: int

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without an end token (the trainer appends `eos_id`)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of one id sequence, cut at the first `eos_id`; special tokens dropped."""
        ...

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict, tagged with its `kind`; `from_json` / `vocabulary_from_json` invert it."""
        ...

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaptionVocabulary:
        """The vocabulary `to_json` described."""
        ...


def _cut_at(ids: Sequence[int], stop: int) -> list[int]:
    ids = [int(i) for i in ids]
    return ids[: ids.index(stop)] if stop in ids else ids


@lru_cache(maxsize=1)
def _clip_bpe():
    """open_clip's tokenizer; its 49k-merge vocabulary ships inside the package (no download)."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


class ClipBpeVocabulary:
    """open_clip's BPE compacted to the tokens seen in the training captions, plus pad/eos/unk.

    Ids 0, 1, 2 are `<pad>`, `<eos>`, `<unk>`; then the kept BPE tokens in open_clip's own order,
    so fitting the same captions always gives the same ids. Text is lower-cased by the BPE's
    cleaner (as CLIP sees it); unseen tokens map to `<unk>`.
    """

    kind = "clip_bpe"

    def __init__(self, tokens: Sequence[str]):
        specials = [PAD, EOS, UNK]
        if list(tokens[:3]) != specials:
            raise CheckpointError(
                f"A ClipBpeVocabulary must start with {specials}, got {list(tokens[:3])}; "
                "build one with ClipBpeVocabulary.fit(captions) or load its vocabulary.json."
            )
        bpe = _clip_bpe()
        unknown = [t for t in tokens[3:] if t not in bpe.encoder]
        if unknown:
            raise CheckpointError(
                f"Tokens {unknown[:5]} are not in open_clip's bundled BPE vocabulary; this vocabulary.json "
                "was written by another open_clip version or edited by hand: refit the vocabulary."
            )
        self.tokens = list(tokens)
        self.pad_id, self.eos_id, self.unk_id = 0, 1, 2
        self.vocab_size = len(self.tokens)
        self._clip_to_compact = {bpe.encoder[t]: i for i, t in enumerate(self.tokens) if i >= 3}

    @classmethod
    def fit(cls, texts: Sequence[str]) -> ClipBpeVocabulary:
        """Keep exactly the BPE tokens that occur in `texts`."""
        bpe = _clip_bpe()
        seen = sorted({i for text in texts for i in bpe.encode(text)})
        return cls([PAD, EOS, UNK, *(bpe.decoder[i] for i in seen)])

    def encode(self, texts: list[str]) -> list[list[int]]:
        bpe = _clip_bpe()
        return [[self._clip_to_compact.get(i, self.unk_id) for i in bpe.encode(text)] for text in texts]

    def decode(self, ids: Sequence[int]) -> str:
        pieces = [self.tokens[i] for i in _cut_at(ids, self.eos_id) if i >= 3]
        raw = "".join(pieces)
        byte_decoder = _clip_bpe().byte_decoder
        text = bytearray(byte_decoder[c] for c in raw).decode("utf-8", errors="replace")
        text = " ".join(text.replace(_CLIP_WORD_END, " ").split())
        return _SPACE_BEFORE_CLITIC.sub(r"'\1", _SPACE_BEFORE_PUNCT.sub(r"\1", text))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokens": self.tokens}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClipBpeVocabulary:
        return cls(data["tokens"])


class GPT2Vocabulary:
    """GPT-2's byte-level BPE through transformers; `<|endoftext|>` is both end and filler.

    GPT-2 has no pad token; padding is masked out of the loss, so reusing eos as filler is safe.
    The whole tokenizer (vocab + merges) is kept in the JSON, so a checkpoint never needs the hub.
    """

    kind = "gpt2"
    _END = "<|endoftext|>"

    def __init__(self, tokenizer_json: str, name_or_path: str = ""):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self.name_or_path = name_or_path
        eos = self._tokenizer.token_to_id(self._END)
        if eos is None:
            raise CheckpointError(
                f"GPT-2 tokenizer {name_or_path!r} has no {self._END!r} token; "
                "use a GPT-2 tokenizer (vocab.json + merges.txt with the end-of-text token)."
            )
        self.eos_id = self.pad_id = int(eos)
        self.vocab_size = int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> GPT2Vocabulary:
        """A hub name (e.g. `gpt2`, cached or downloadable) or a folder with vocab.json + merges.txt."""
        from transformers import GPT2Tokenizer

        try:
            tokenizer = GPT2Tokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as error:
            raise CheckpointError(
                f"Cannot load the GPT-2 tokenizer {name_or_path!r}: {error}. Pass a folder holding "
                "vocab.json and merges.txt, or run once on a connected machine to fill the HF cache."
            ) from error
        return cls(tokenizer.backend_tokenizer.to_str(), str(name_or_path))

    def encode(self, texts: list[str]) -> list[list[int]]:
        # As the reference: the raw caption, no leading space, no special tokens.
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(_cut_at(ids, self.eos_id), skip_special_tokens=True).strip()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name_or_path": self.name_or_path,
            "tokenizer": json.loads(self._tokenizer.to_str()),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GPT2Vocabulary:
        return cls(json.dumps(data["tokenizer"]), data.get("name_or_path", ""))


_KINDS = {ClipBpeVocabulary.kind: ClipBpeVocabulary, GPT2Vocabulary.kind: GPT2Vocabulary}


def vocabulary_from_json(data: dict[str, Any], source: str = "vocabulary.json") -> CaptionVocabulary:
    """Rebuild whichever vocabulary `to_json` wrote; `source` names the file in errors."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in _KINDS:
        raise CheckpointError(
            f"{source}: unknown vocabulary kind {kind!r}; expected one of {sorted(_KINDS)}. "
            "The file was not written by save_decoder: re-save the decoder."
        )
    return _KINDS[kind].from_json(data)
