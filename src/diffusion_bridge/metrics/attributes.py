"""Attribute accuracy: are the shapes, colours, counts and places a caption names really in the image?

For the synthetic corpus every test image has a ground-truth scene, so a generated caption can be
checked word by word, which n-gram metrics (BLEU, CIDEr) cannot do: "a red circle" and "a blue circle"
differ by one word but only one of them is true. A small rule-based parser reads the vocabulary of
`diffusion_bridge.corpus.scenes` (synonyms and plurals included) out of a caption; `attribute_accuracy`
scores what it found against the scenes. Hallucination is measured like CHAIR-s (Rohrbach et al.,
2018): the share of captions naming at least one kind of object that the image does not hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import permutations
from typing import Any

from diffusion_bridge.corpus.scenes import (
    BACKGROUND_COLOUR_WORDS,
    BACKGROUND_NOUNS,
    COLOUR_WORDS,
    GENERIC_WORDS,
    KIND_ADJECTIVE_WORDS,
    KIND_WORDS,
    POSITIONS,
    SIZE_WORDS,
    TEXTURE_WORDS,
    InputError,
    Scene,
    SceneObject,
)

COUNT_WORDS: dict[str, int] = {
    **{w: n for n, w in enumerate(("one", "two", "three", "four", "five", "six"), start=1)},
    **{str(n): n for n in range(1, 10)},
    "single": 1,
    "lone": 1,
    "sole": 1,
    "pair": 2,
    "couple": 2,
    "trio": 3,
}
_COLLECTIVE_COUNTS = frozenset({"pair", "couple", "trio"})  # "a pair of", "a couple of", "a trio of"
POSITION_WORDS: dict[str, str] = {
    "left": "left",
    "right": "right",
    "top": "top",
    "upper": "top",
    "bottom": "bottom",
    "lower": "bottom",
    "centre": "centre",
    "center": "centre",
    "middle": "centre",
    "central": "centre",
}
# "at the top of the image" is a position; "to the left of the square" is a relation.
_IMAGE_NOUNS = frozenset({"image", "picture", "photo", "frame", "scene", "canvas", "view"})
_TEXTURE_HEADS = frozenset({"stripes", "stripe", "dots", "dot", "spots", "checks", "tiles", "checkerboard", "grid"})
_POST_COLOUR = frozenset({"in", "coloured", "colored", "painted", "is"})
_SINGLE_RELATIONS = {
    "above": "above",
    "below": "below",
    "under": "below",
    "beneath": "below",
    "underneath": "below",
    "beside": "next_to",
    "near": "next_to",
    "inside": "inside",
    "within": "inside",
    "containing": "contains",
    "contains": "contains",
    "around": "contains",
    "surrounding": "contains",
    "surrounds": "contains",
    "enclosing": "contains",
    "encloses": "contains",
}
_CLAUSE_BREAKS = frozenset({",", ";", ".", ":"})




@dataclass(frozen=True)
class NounPhrase:
    """A head noun and the modifiers bound to it ("two big red circles", "a disc in crimson")."""

    head: int  # token index of the head noun
    kind: str | None  # None for generic nouns without a kind adjective ("shapes") and for backgrounds
    colours: frozenset[str]  # object colour names bound to the phrase
    tones: frozenset[str]  # background colour names bound to the phrase
    size: str | None
    count: int | None
    background: bool  # the head names the background ("backdrop", "stripes")


@dataclass(frozen=True)
class CaptionMentions:
    """Everything the parser recognised in one caption, in canonical vocabulary names."""

    kinds: frozenset[str]
    object_colours: frozenset[str]  # colour names said of objects (or of nothing in particular)
    background_colours: frozenset[str]  # colour names said of the background
    pairs: frozenset[tuple[str, str]]  # (kind, colour) bound in one noun phrase
    counts: frozenset[tuple[int, str | None, str | None, str | None]]  # (n, kind, colour, size)
    positions: frozenset[str]
    textures: frozenset[str]
    relations: frozenset[tuple[NounPhrase, str, NounPhrase]]


def parse_tokens(caption: str) -> list[str]:
    """Lower-case words, numbers and clause punctuation (which bounds noun phrases and relations)."""
    return re.findall(r"[a-z]+|[0-9]+|[,;.:]", caption.lower())


def parse_caption(caption: str) -> CaptionMentions:
    """Read the kinds, colours, counts, positions, background and relations a caption names."""
    tokens = parse_tokens(caption)
    parsed = [found for i in range(len(tokens)) if (found := _noun_phrase(tokens, i)) is not None]
    phrases = [phrase for phrase, _ in parsed]
    bound_colour_tokens = {j for _, indices in parsed for j in indices}
    object_colours: set[str] = set()
    background_colours: set[str] = set()
    for p in phrases:
        (background_colours if p.background else object_colours).update(p.colours | p.tones)
    for j, token in enumerate(tokens):
        if j in bound_colour_tokens:
            continue
        if token in COLOUR_WORDS:  # a loose colour word is taken as said of some object
            object_colours.add(COLOUR_WORDS[token])
        elif token in BACKGROUND_COLOUR_WORDS:  # a loose tone word can only mean the background
            background_colours.add(BACKGROUND_COLOUR_WORDS[token])
    objects = [p for p in phrases if not p.background]
    return CaptionMentions(
        kinds=frozenset(p.kind for p in objects if p.kind),
        object_colours=frozenset(object_colours),
        background_colours=frozenset(background_colours),
        pairs=frozenset((p.kind, c) for p in objects if p.kind for c in p.colours),
        counts=frozenset(
            (p.count, p.kind, next(iter(p.colours)) if len(p.colours) == 1 else None, p.size)
            for p in objects
            if p.count is not None and len(p.colours) <= 1
        ),
        positions=frozenset(_positions(tokens)),
        textures=frozenset(TEXTURE_WORDS[t] for t in tokens if t in TEXTURE_WORDS),
        relations=frozenset(_relations(tokens, objects)),
    )


def _noun_phrase(tokens: list[str], i: int) -> tuple[NounPhrase, set[int]] | None:
    """The noun phrase headed at token i and the indices of its colour words; None if i is no head noun."""
    token = tokens[i]
    background = token in BACKGROUND_NOUNS or token in _TEXTURE_HEADS
    generic = token in GENERIC_WORDS
    if not (background or generic or token in KIND_WORDS):
        return None
    kind = KIND_WORDS.get(token)
    colours: set[str] = set()
    tones: set[str] = set()
    size: str | None = None
    count: int | None = None
    bound: set[int] = set()  # token indices of the colour words taken by this phrase
    j = i - 1
    while j >= 0:  # modifiers before the head
        word = tokens[j]
        if word == "of" and j > 0 and tokens[j - 1] in _COLLECTIVE_COUNTS:
            count, j = COUNT_WORDS[tokens[j - 1]], j - 2
            continue
        if word in COUNT_WORDS and word not in _COLLECTIVE_COUNTS:
            count = COUNT_WORDS[word]
        elif word in COLOUR_WORDS:
            colours.add(COLOUR_WORDS[word])
            bound.add(j)
        elif word in BACKGROUND_COLOUR_WORDS:
            tones.add(BACKGROUND_COLOUR_WORDS[word])
            bound.add(j)
        elif word in SIZE_WORDS:
            size = SIZE_WORDS[word]
        elif word in TEXTURE_WORDS or word == "polka":
            pass  # "a striped grey backdrop": the texture itself is read token by token
        elif generic and (word in KIND_ADJECTIVE_WORDS or word in KIND_WORDS):
            kind = KIND_ADJECTIVE_WORDS.get(word) or KIND_WORDS[word]  # "a round red shape", "a star shape"
        elif generic and word == "shaped":
            pass
        else:
            break
        j -= 1
    if not background:  # after the head: "a circle in red", "the circle is red", "a disc coloured crimson"
        k = i + 1
        if k + 1 < len(tokens) and tokens[k] in ("that", "which") and tokens[k + 1] == "is":
            k += 1
        if k + 1 < len(tokens) and tokens[k] in _POST_COLOUR:
            _bind(tokens, k + 1, colours, tones, bound)
    elif i + 2 < len(tokens) and tokens[i + 1] == "is":  # "the background is grey"
        _bind(tokens, i + 2, colours, tones, bound)
    phrase = NounPhrase(i, None if background else kind, frozenset(colours), frozenset(tones), size, count, background)
    return phrase, bound


def _bind(tokens: list[str], j: int, colours: set[str], tones: set[str], bound: set[int]) -> None:
    """Add token j to a phrase's colours or tones when it is a colour word."""
    if tokens[j] in COLOUR_WORDS:
        colours.add(COLOUR_WORDS[tokens[j]])
        bound.add(j)
    elif tokens[j] in BACKGROUND_COLOUR_WORDS:
        tones.add(BACKGROUND_COLOUR_WORDS[tokens[j]])
        bound.add(j)


def _positions(tokens: list[str]) -> set[str]:
    """Position names, leaving out relation uses ("left of the square", "near ... ")."""
    found = set()
    for i, token in enumerate(tokens):
        if token not in POSITION_WORDS:
            continue
        if i + 1 < len(tokens) and tokens[i + 1] == "of":
            rest = [t for t in tokens[i + 2 : i + 4] if t != "the"]
            if not rest or rest[0] not in _IMAGE_NOUNS:
                continue
        found.add(POSITION_WORDS[token])
    return found


def _relation_at(tokens: list[str], i: int) -> tuple[str, int] | None:
    """The relation triggered at token i and the index of its last token, or None."""
    token = tokens[i]
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    if token in ("left", "right") and following == "of":
        rest = [t for t in tokens[i + 2 : i + 4] if t != "the"]
        if rest and rest[0] in _IMAGE_NOUNS:
            return None
        return ("left_of" if token == "left" else "right_of"), i + 1
    if token == "next" and following == "to":
        return "next_to", i + 1
    if token == "near" and following == "the" and i + 2 < len(tokens) and tokens[i + 2] in POSITION_WORDS:
        return None  # "near the top" is a position
    if token in _SINGLE_RELATIONS:
        return _SINGLE_RELATIONS[token], i
    return None


def _relations(tokens: list[str], objects: list[NounPhrase]) -> set[tuple[NounPhrase, str, NounPhrase]]:
    """(subject, relation, object) for each relation word with a kind-naming phrase on both sides.

    The subject is the nearest object phrase before the relation word and the object the nearest one
    after it, both within the same clause; a side without a kind is not scored.
    """
    breaks = [i for i, t in enumerate(tokens) if t in _CLAUSE_BREAKS]
    found = set()
    for i in range(len(tokens)):
        hit = _relation_at(tokens, i)
        if hit is None:
            continue
        relation, end = hit
        start = max((b for b in breaks if b < i), default=-1)
        stop = min((b for b in breaks if b > end), default=len(tokens))
        before = [p for p in objects if start < p.head < i]
        after = [p for p in objects if end < p.head < stop]
        if before and after and before[-1].kind and after[0].kind:
            found.add((before[-1], relation, after[0]))
    return found


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def _matches(obj: SceneObject, phrase: NounPhrase) -> bool:
    return (
        obj.kind == phrase.kind
        and (not phrase.colours or obj.colour in phrase.colours)
        and (phrase.size is None or obj.size == phrase.size)
    )


def _holds(relation: str, a: SceneObject, b: SceneObject) -> bool:
    """Whether `a relation b` is true, from the objects' nominal positions."""
    (ax, ay), (bx, by) = POSITIONS[a.position], POSITIONS[b.position]
    apart = a.position != b.position
    return {
        "left_of": apart and ax < bx,
        "right_of": apart and ax > bx,
        "above": apart and ay < by,
        "below": apart and ay > by,
        "next_to": apart,
        "inside": not apart and a.radius < b.radius,
        "contains": not apart and a.radius > b.radius,
    }[relation]


def _object_count(scene: Scene, kind: str | None, colour: str | None, size: str | None) -> int:
    return sum(
        (kind is None or o.kind == kind) and (colour is None or o.colour == colour) and (size is None or o.size == size)
        for o in scene.objects
    )


PRECISIONS = ("kind", "colour", "count", "position", "background", "relation")


def caption_counts(caption: str, scene_record: Mapping[str, Any], imgid: object = None) -> dict[str, tuple[int, int]]:
    """(correct, total) mentions of one caption against its scene, for every precision of `attribute_accuracy`,
    plus `kind_recall` (scene kinds mentioned / scene kinds), `hallucination` and `correct_pair` (0 or 1 of 1)."""
    try:
        scene = Scene.from_dict(scene_record)
    except InputError as error:
        raise InputError(f"scene of imgid={imgid!r}: {error}") from None
    m = parse_caption(caption)
    kinds = {o.kind for o in scene.objects}
    colours = {o.colour for o in scene.objects}
    said = m.object_colours | m.background_colours
    background = [t == scene.background_texture for t in m.textures]
    background += [c == scene.background_colour for c in m.background_colours]
    return {
        "kind": (len(m.kinds & kinds), len(m.kinds)),
        "colour": (sum(c in colours or (c in m.background_colours and c == scene.background_colour) for c in said), len(said)),
        "count": (sum(n == _object_count(scene, *rest) for n, *rest in m.counts), len(m.counts)),
        "position": (len(m.positions & {o.position for o in scene.objects}), len(m.positions)),
        "background": (sum(background), len(background)),
        "relation": (
            sum(
                any(_matches(a, s) and _matches(b, o) and _holds(rel, a, b) for a, b in permutations(scene.objects, 2))
                for s, rel, o in m.relations
            ),
            len(m.relations),
        ),
        "kind_recall": (len(m.kinds & kinds), len(kinds)),
        "hallucination": (int(bool(m.kinds - kinds)), 1),
        "correct_pair": (int(any((o.kind, o.colour) in m.pairs for o in scene.objects)), 1),
    }


def per_image_counts(captions: Mapping[int, str], scenes: Mapping[int, Mapping[str, Any]]) -> dict[int, dict[str, tuple[int, int]]]:
    """`caption_counts` of every caption, by image id (what paired bootstrap intervals resample)."""
    missing = [i for i in captions if i not in scenes]
    if missing:
        raise InputError(
            f"caption for imgid={missing[0]!r} has no scene in the ground truth ({len(scenes)} scenes given); "
            "score only captions of the corpus' own images"
        )
    return {imgid: caption_counts(caption, scenes[imgid], imgid) for imgid, caption in captions.items()}


def attribute_accuracy(captions: Mapping[int, str], scenes: Mapping[int, Mapping[str, Any]]) -> dict[str, float]:
    """Score generated captions against ground-truth scenes (`Scene.to_dict()` dicts) by image id.

    All rates are micro-averaged over captions (each distinct mention counted once per caption) and
    are 0.0 when nothing of that attribute was mentioned; the `*_mentions` entries say how many there were.

    - kind_precision: mentioned kinds present in the scene; kind_recall: scene kinds mentioned.
    - colour_precision: a colour is correct if some object has it, or, when said of the background
      ("a grey striped backdrop", "the background is sand"), if the background has it.
    - count_precision: "two circles", "three shapes", "a single red star" match the number of objects
      of that kind (and colour and size, when given).
    - position_precision: a mentioned position (left, top, centre, ...) holds some object.
    - background_precision: mentioned textures and colours of the background are the scene's.
    - relation_precision: "X left of / above / next to / inside Y" holds for some objects X and Y.
    - hallucination_rate: share of captions naming a kind the scene does not contain (CHAIR-s).
    - correct_pair_rate: share of captions naming at least one correct (kind, colour) pair.
    """
    counts = per_image_counts(captions, scenes).values()

    def total(key: str) -> tuple[int, int]:
        return sum(c[key][0] for c in counts), sum(c[key][1] for c in counts)

    def rate(key: str) -> float:
        correct, seen = total(key)
        return correct / seen if seen else 0.0

    result: dict[str, float] = {"n_captions": float(len(captions))}
    for name in PRECISIONS:
        result[f"{name}_precision"] = rate(name)
        result[f"{name}_mentions"] = float(total(name)[1])
    result["kind_recall"] = rate("kind_recall")
    result["hallucination_rate"] = rate("hallucination")
    result["correct_pair_rate"] = rate("correct_pair")
    return result
