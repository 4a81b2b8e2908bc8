"""Caption vocabularies: compaction of open_clip's BPE, a locally written GPT-2 tokenizer, JSON round trips."""

from __future__ import annotations

import json

import pytest
from open_clip.tokenizer import SimpleTokenizer, bytes_to_unicode
from transformers import GPT2Tokenizer

from diffusion_bridge.decoder import (
    CaptionVocabulary,
    ClipBpeVocabulary,
    GPT2Vocabulary,
    vocabulary_from_json,
)
from diffusion_bridge.errors import CheckpointError

CAPTIONS = ["A dog runs on the grass.", "Two cats sleep on a red sofa.", "The man's bike isn't blue!"]


def test_clip_bpe_keeps_exactly_the_tokens_seen():
    clip = SimpleTokenizer()
    seen = {clip.decoder[i] for c in CAPTIONS for i in clip.encode(c)}
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    assert isinstance(vocab, CaptionVocabulary)
    assert vocab.vocab_size == len(seen) + 3
    assert set(vocab.tokens[3:]) == seen
    assert (vocab.pad_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2)
    # ids follow open_clip's order, so the same captions in another order give the same vocabulary
    assert ClipBpeVocabulary.fit(CAPTIONS[::-1]).tokens == vocab.tokens


def test_clip_bpe_round_trip_and_unknown_words():
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    ids = vocab.encode(CAPTIONS)
    assert [vocab.decode(row) for row in ids] == [
        "a dog runs on the grass.", "two cats sleep on a red sofa.", "the man's bike isn't blue!",
    ]
    # decode stops at the end token and drops the padding behind it
    assert vocab.decode(ids[0] + [vocab.eos_id, *ids[1]]) == "a dog runs on the grass."
    (unknown,) = vocab.encode(["a zebra runs"])
    assert unknown[1] == vocab.unk_id and unknown[0] != vocab.unk_id
    assert vocab.decode(unknown) == "a runs"


def test_clip_bpe_json_round_trip_and_errors():
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    again = vocabulary_from_json(json.loads(json.dumps(vocab.to_json())))
    assert isinstance(again, ClipBpeVocabulary)
    assert again.tokens == vocab.tokens and again.encode(CAPTIONS) == vocab.encode(CAPTIONS)
    with pytest.raises(CheckpointError, match="unknown vocabulary kind 'pickle'"):
        vocabulary_from_json({"kind": "pickle"}, "ckpt/vocabulary.json")
    with pytest.raises(CheckpointError, match="not in open_clip's bundled BPE"):
        ClipBpeVocabulary([*vocab.tokens, "notatoken###"])


@pytest.fixture
def tiny_gpt2_dir(tmp_path):
    """A byte-level BPE tokenizer in GPT-2's file format, written locally (no download)."""
    merges = ["Ġ d", "o g", "Ġd og", "Ġ a", "a t", "Ġ c", "Ġc at", "Ġ s", "Ġs i", "Ġsi t"]
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    for merge in merges:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    vocab["<|endoftext|>"] = len(vocab)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return tmp_path


def test_gpt2_vocabulary_matches_transformers(tiny_gpt2_dir):
    vocab = GPT2Vocabulary.from_pretrained(str(tiny_gpt2_dir))
    reference = GPT2Tokenizer.from_pretrained(str(tiny_gpt2_dir))
    texts = ["A dog sits at a cat.", "a cat", "Dog!"]
    assert vocab.encode(texts) == [reference.encode(t) for t in texts]
    end = json.loads((tiny_gpt2_dir / "vocab.json").read_text())["<|endoftext|>"]
    assert vocab.eos_id == vocab.pad_id == end
    assert vocab.vocab_size == end + 1
    ids = vocab.encode(texts)[0]
    assert len(ids) < len(texts[0])  # the merges were applied
    assert vocab.decode([*ids, vocab.eos_id, *ids]) == texts[0]

    again = vocabulary_from_json(json.loads(json.dumps(vocab.to_json())))
    assert isinstance(again, GPT2Vocabulary)
    assert again.encode(texts) == vocab.encode(texts) and again.eos_id == vocab.eos_id


def test_gpt2_vocabulary_missing_folder_is_named(tmp_path):
    missing = tmp_path / "no-such-tokenizer"
    with pytest.raises(CheckpointError, match="no-such-tokenizer"):
        GPT2Vocabulary.from_pretrained(str(missing))
