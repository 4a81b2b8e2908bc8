"""Scenes of the synthetic corpus: the vocabulary, scene sampling, rendering and true captions.

A scene is a few coloured shapes on a textured background. It is the ground truth behind one
image of the offline corpus: `render_scene` draws it with Pillow, `describe_scene` writes captions
that are true of it, each about a different aspect (like the five annotators of a COCO image), and
`diffusion_bridge.metrics.attributes` parses captions back into this vocabulary to score them.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image, ImageDraw

from diffusion_bridge.errors import ConfigError, InputError

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

KINDS: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon")

# Eight well-separated, saturated colours; none of them is used for a background.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "green": (35, 165, 55),
    "blue": (35, 75, 225),
    "yellow": (245, 215, 25),
    "orange": (245, 125, 10),
    "purple": (135, 45, 185),
    "white": (248, 248, 248),
    "black": (18, 18, 18),
}

# Background tones are mid-luminance and named with words no object colour uses, so a tone word in a
# caption can only be about the background.
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "grey": (128, 128, 128),
    "sand": (196, 176, 136),
    "teal": (60, 128, 136),
}
TEXTURES: tuple[str, ...] = ("plain", "stripes", "dots", "checks")

SIZES: tuple[str, ...] = ("small", "big")

# Position name -> nominal centre (x, y) as fractions of the image side; y grows downwards.
POSITIONS: dict[str, tuple[float, float]] = {
    "left": (0.2, 0.5),
    "right": (0.8, 0.5),
    "top": (0.5, 0.2),
    "bottom": (0.5, 0.8),
    "centre": (0.5, 0.5),
}
RELATIONS: tuple[str, ...] = ("left_of", "right_of", "above", "below", "next_to", "inside")
INVERSE_RELATION: dict[str, str] = {
    "left_of": "right_of",
    "right_of": "left_of",
    "above": "below",
    "below": "above",
    "next_to": "next_to",
    "inside": "contains",
}
# Kinds with a hole or a convex body large enough to hold a small shape drawn at their centre.
CONTAINER_KINDS: tuple[str, ...] = ("circle", "square", "ring", "hexagon")

KIND_SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "disk"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "wedge"),
    "star": ("star",),
    "cross": ("cross", "plus sign"),
    "ring": ("ring", "hoop", "donut"),
    "diamond": ("diamond", "rhombus", "lozenge"),
    "hexagon": ("hexagon", "hex"),
}
_IRREGULAR_PLURALS = {"box": "boxes", "cross": "crosses", "rhombus": "rhombuses", "plus sign": "plus signs"}
# Adjectives that name a kind when they modify a generic noun ("a round red shape").
KIND_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "circle": ("round", "circular"),
    "square": ("square",),
    "triangle": ("triangular",),
    "hexagon": ("hexagonal",),
}
GENERIC_NOUNS: tuple[str, ...] = ("shape", "object", "thing", "figure", "item")

COLOUR_SYNONYMS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "green": ("green", "emerald", "jade"),
    "blue": ("blue", "azure", "cobalt"),
    "yellow": ("yellow", "golden", "lemon"),
    "orange": ("orange", "amber", "tangerine"),
    "purple": ("purple", "violet", "plum"),
    "white": ("white", "snowy", "ivory"),
    "black": ("black", "ebony", "inky"),
}
BACKGROUND_COLOUR_SYNONYMS: dict[str, tuple[str, ...]] = {
    "grey": ("grey", "gray"),
    "sand": ("sand", "sandy", "beige"),
    "teal": ("teal", "turquoise"),
}
SIZE_SYNONYMS: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"), "big": ("big", "large")}
TEXTURE_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "plain": ("plain", "solid", "uniform"),
    "stripes": ("striped", "stripy"),
    "dots": ("dotted", "spotted", "polka dot"),
    "checks": ("checkered", "chequered", "checked"),
}
TEXTURE_NOUNS: dict[str, tuple[str, ...]] = {
    "stripes": ("stripes",),
    "dots": ("dots", "spots"),
    "checks": ("checks", "tiles"),
}
BACKGROUND_NOUNS: tuple[str, ...] = ("background", "backdrop")
POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left", "on the left side", "in the left part of the image", "to the left"),
    "right": ("on the right", "at the right", "on the right side", "in the right part of the picture", "to the right"),
    "top": ("at the top", "near the top", "in the upper part", "at the top of the picture", "up at the top"),
    "bottom": ("at the bottom", "near the bottom", "in the lower part", "at the bottom of the image"),
    "centre": ("in the centre", "in the middle", "in the center", "at the centre of the picture"),
}
RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "left_of": ("to the left of", "left of", "on the left of"),
    "right_of": ("to the right of", "right of", "on the right of"),
    "above": ("above",),
    "below": ("below", "under", "beneath", "underneath"),
    "next_to": ("next to", "beside", "near"),
    "inside": ("inside", "within"),
    "contains": ("containing", "around", "surrounding"),
}
NUMBER_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three"}


def plural(noun: str) -> str:
    """The plural of a vocabulary noun ("box" -> "boxes")."""
    return _IRREGULAR_PLURALS.get(noun, noun + "s")


def caption_tokens(raw: str) -> list[str]:
    """Lower-case word tokens of a caption, punctuation dropped (the Karpathy `tokens` field)."""
    return re.findall(r"[a-z]+|[0-9]+", raw.lower())


def _word_map(synonyms: Mapping[str, Sequence[str]], plurals: bool = False) -> dict[str, str]:
    """Single-token word -> canonical name (multi-word phrases contribute their last word)."""
    words: dict[str, str] = {}
    for name, phrases in synonyms.items():
        for phrase in phrases:
            words[phrase.split()[-1]] = name
            if plurals:
                words[plural(phrase).split()[-1]] = name
    return words


# Token -> canonical name, for parsers (the attribute metric). Plurals included for nouns.
KIND_WORDS: dict[str, str] = {
    **_word_map(KIND_SYNONYMS, plurals=True),
    "plus": "cross",
    "doughnut": "ring",
    "doughnuts": "ring",
}
KIND_ADJECTIVE_WORDS: dict[str, str] = _word_map(KIND_ADJECTIVES)
COLOUR_WORDS: dict[str, str] = _word_map(COLOUR_SYNONYMS)
BACKGROUND_COLOUR_WORDS: dict[str, str] = {**_word_map(BACKGROUND_COLOUR_SYNONYMS), "tan": "sand"}
SIZE_WORDS: dict[str, str] = {**_word_map(SIZE_SYNONYMS), "huge": "big"}
TEXTURE_WORDS: dict[str, str] = {
    **_word_map(TEXTURE_ADJECTIVES),
    **_word_map(TEXTURE_NOUNS),
    "polka": "dots",
    "stripe": "stripes",
    "flat": "plain",
    "checkerboard": "checks",
    "tiled": "checks",
    "grid": "checks",
}
GENERIC_WORDS: frozenset[str] = frozenset(GENERIC_NOUNS) | {plural(n) for n in GENERIC_NOUNS}






# ---------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneObject:
    """One shape: what it is (kind, colour, size, position) and exactly where it is drawn."""

    kind: str
    colour: str
    size: str
    position: str
    x: float  # centre, fraction of the image width
    y: float  # centre, fraction of the image height
    radius: float  # circumradius, fraction of the image side
    angle: int  # rotation in degrees

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> SceneObject:
        """Read an object dict back, checking every name against the vocabulary."""
        try:
            obj = cls(**{name: record[name] for name in cls.__dataclass_fields__})
        except KeyError as missing:
            raise InputError(
                f"scene object {dict(record)!r} lacks the field {missing}; re-render the corpus"
            ) from None
        for field, allowed in (("kind", KINDS), ("colour", COLOURS), ("size", SIZES), ("position", POSITIONS)):
            if getattr(obj, field) not in allowed:
                raise InputError(
                    f"scene object has {field}={getattr(obj, field)!r}, which is not one of {sorted(allowed)}; "
                    "the corpus was rendered with another vocabulary, re-render it"
                )
        return obj


@dataclass(frozen=True)
class Relation:
    """`objects[subject]` stands in `relation` to `objects[object]` (e.g. 0 left_of 1)."""

    subject: int
    relation: str
    object: int


@dataclass(frozen=True)
class Scene:
    """The ground truth of one image: its objects, its background and one relation between two objects."""

    objects: tuple[SceneObject, ...]
    background_texture: str
    background_colour: str
    relation: Relation | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the `scene` field of a corpus record)."""
        return {
            "objects": [obj.to_dict() for obj in self.objects],
            "background": {"texture": self.background_texture, "colour": self.background_colour},
            "relation": None if self.relation is None else asdict(self.relation),
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Scene:
        """Read a scene dict back (inverse of `to_dict`), checking it against the vocabulary."""
        try:
            objects = tuple(SceneObject.from_dict(o) for o in record["objects"])
            texture, colour = record["background"]["texture"], record["background"]["colour"]
            relation = record.get("relation")
        except (KeyError, TypeError) as error:
            raise InputError(
                f"scene record lacks 'objects' or 'background': {error!r}; expected Scene.to_dict() output"
            ) from None
        if texture not in TEXTURES or colour not in BACKGROUND_COLOURS:
            raise InputError(
                f"scene background {texture!r}/{colour!r} is not in {TEXTURES}/{sorted(BACKGROUND_COLOURS)}; "
                "re-render the corpus"
            )
        if relation is not None:
            relation = Relation(int(relation["subject"]), relation["relation"], int(relation["object"]))
            if relation.relation not in RELATIONS or not {relation.subject, relation.object} <= set(
                range(len(objects))
            ):
                raise InputError(f"scene relation {relation} names an unknown relation or object")
        return cls(objects, texture, colour, relation)


def all_pairs() -> list[tuple[str, str]]:
    """Every (kind, colour) pair of the vocabulary, in a fixed order."""
    return [(kind, colour) for kind in KINDS for colour in COLOURS]


def relation_between(a: SceneObject, b: SceneObject) -> str:
    """The relation a caption states between two objects at different positions.

    Same row -> left/right of, same column -> above/below, diagonal neighbours -> next to.
    """
    (ax, ay), (bx, by) = POSITIONS[a.position], POSITIONS[b.position]
    if ay == by:
        return "left_of" if ax < bx else "right_of"
    if ax == bx:
        return "above" if ay < by else "below"
    return "next_to"


# Sampling probabilities: a mix of 1-3 objects, like the few salient objects of a COCO image.
_COUNT_WEIGHTS = {1: 0.25, 2: 0.4, 3: 0.35}
_P_SAME_KIND = 0.3  # "sometimes two of the same kind"
_P_INSIDE = 0.25
# Radii (fractions of the side) chosen so that big shapes at neighbouring positions never overlap.
_RADIUS = {"small": (0.075, 0.09), "big": (0.125, 0.14)}
_CONTAINED_SCALE = 0.55  # a contained shape fits in a ring's hole (0.75 r) and a square (0.85 r)
_JITTER = 0.03


def sample_scene(
    rng: random.Random,
    allowed_pairs: Collection[tuple[str, str]],
    must_include: Collection[tuple[str, str]] | None = None,
) -> Scene:
    """Sample a scene whose (kind, colour) pairs all come from `allowed_pairs`.

    `must_include`, when given, forces one object to take a pair from that set (how test images get
    their held-out combinations); the other objects still come from `allowed_pairs`.
    """
    allowed = sorted(set(allowed_pairs))
    if not allowed:
        raise ConfigError("allowed_pairs is empty: pass at least one (kind, colour) pair")
    counts = list(_COUNT_WEIGHTS)
    n = rng.choices(counts, weights=[_COUNT_WEIGHTS[c] for c in counts])[0]
    pairs = [rng.choice(allowed) for _ in range(n)]
    if must_include:
        pairs[0] = rng.choice(sorted(set(must_include)))
    if n >= 2 and rng.random() < _P_SAME_KIND:
        kind = pairs[0][0]
        colours = [c for k, c in allowed if k == kind] or [pairs[0][1]]
        pairs[1] = (kind, rng.choice(colours))
    rng.shuffle(pairs)

    inside: tuple[int, int] | None = None
    if n >= 2 and rng.random() < _P_INSIDE:
        options = [
            (i, j)
            for i in range(n)
            for j in range(n)
            if i != j and pairs[j][0] in CONTAINER_KINDS and pairs[i][1] != pairs[j][1]
        ]
        if options:
            inside = rng.choice(options)

    names = list(POSITIONS)
    if inside is None:
        positions = rng.sample(names, n)
        sizes = [rng.choice(SIZES) for _ in range(n)]
    else:
        spots = iter(rng.sample(names, n - 1))
        shared = next(spots)
        positions = [shared if i in inside else next(spots) for i in range(n)]
        sizes = ["small" if i == inside[0] else "big" if i == inside[1] else rng.choice(SIZES) for i in range(n)]

    objects: list[SceneObject] = []
    for (kind, colour), position, size in zip(pairs, positions, sizes, strict=True):
        x, y = _jittered_centre(rng, position)
        radius = rng.uniform(*_RADIUS[size])
        angle = rng.randint(-12, 12)
        objects.append(SceneObject(kind, colour, size, position, round(x, 4), round(y, 4), round(radius, 4), angle))
    if inside is not None:
        sub, con = inside
        container = objects[con]
        objects[sub] = SceneObject(
            objects[sub].kind, objects[sub].colour, "small", container.position, container.x, container.y,
            round(container.radius * _CONTAINED_SCALE, 4), objects[sub].angle,
        )
        relation: Relation | None = Relation(sub, "inside", con)
    elif n >= 2:
        a, b = rng.sample(range(n), 2)
        relation = Relation(a, relation_between(objects[a], objects[b]), b)
    else:
        relation = None
    return Scene(tuple(objects), rng.choice(TEXTURES), rng.choice(list(BACKGROUND_COLOURS)), relation)


def _jittered_centre(rng: random.Random, position: str) -> tuple[float, float]:
    """Nominal centre plus a small jitter that only moves away from the centre (so shapes never touch)."""
    x, y = POSITIONS[position]
    if position == "centre":
        return x + rng.uniform(-0.01, 0.01), y + rng.uniform(-0.01, 0.01)
    outward = rng.uniform(0, _JITTER)
    along = rng.uniform(-_JITTER, _JITTER)
    if position in ("left", "right"):
        return x + (outward if position == "right" else -outward), y + along
    return x + along, y + (outward if position == "bottom" else -outward)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

_SUPERSAMPLE = 4  # draw at 4x and box-filter down: anti-aliased edges, still deterministic


def render_scene(scene: Scene, size: int = 64) -> Image.Image:
    """Draw the scene as a `size` x `size` RGB image (same scene -> identical pixels)."""
    side = size * _SUPERSAMPLE
    tone = BACKGROUND_COLOURS[scene.background_colour]
    image = Image.new("RGB", (side, side), tone)
    draw = ImageDraw.Draw(image)
    _draw_texture(draw, scene.background_texture, tone, side, size)
    # Bigger shapes first, so a contained shape is drawn on top of its container.
    for obj in sorted(scene.objects, key=lambda o: -o.radius):
        _draw_object(draw, obj, side)
    return image.resize((size, size), Image.Resampling.BOX)


def _shade(rgb: tuple[int, int, int], delta: int) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, c + delta)) for c in rgb)
    return r, g, b


def _draw_texture(draw: ImageDraw.ImageDraw, texture: str, tone: tuple[int, int, int], side: int, size: int) -> None:
    """Low-contrast texture (shade +-22) so the shapes stay the salient content."""
    ink = _shade(tone, -22)
    period = side // 8
    if texture == "stripes":
        for offset in range(-side, side, period):
            draw.line([(offset, side), (offset + side, 0)], fill=ink, width=period // 2)
    elif texture == "dots":
        dot = period // 6
        for cy in range(period // 2, side, period):
            for cx in range(period // 2, side, period):
                draw.ellipse((cx - dot, cy - dot, cx + dot, cy + dot), fill=ink)
    elif texture == "checks":
        for row in range(8):
            for col in range(row % 2, 8, 2):
                draw.rectangle((col * period, row * period, (col + 1) * period - 1, (row + 1) * period - 1), fill=ink)


def _rotated(points: Sequence[tuple[float, float]], angle: float, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Unit-shape points scaled by r, rotated by angle (degrees) and moved to (cx, cy)."""
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return [(cx + r * (px * cos - py * sin), cy + r * (px * sin + py * cos)) for px, py in points]


def _regular(n: int, start: float = -90.0) -> list[tuple[float, float]]:
    return [
        (math.cos(math.radians(start + 360 * k / n)), math.sin(math.radians(start + 360 * k / n))) for k in range(n)
    ]


_STAR = [
    (math.cos(math.radians(-90 + 36 * k)) * (1 if k % 2 == 0 else 0.45),
     math.sin(math.radians(-90 + 36 * k)) * (1 if k % 2 == 0 else 0.45))
    for k in range(10)
]
_W = 0.32  # half-width of a cross arm
_UNIT_SHAPES: dict[str, list[tuple[float, float]]] = {
    "square": [(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)],
    "triangle": _regular(3),
    "star": _STAR,
    "cross": [(-_W, -1), (_W, -1), (_W, -_W), (1, -_W), (1, _W), (_W, _W), (_W, 1), (-_W, 1), (-_W, _W),
              (-1, _W), (-1, -_W), (-_W, -_W)],
    "diamond": [(0, -1), (0.7, 0), (0, 1), (-0.7, 0)],  # narrower than a turned square
    "hexagon": _regular(6, start=0.0),
}


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, side: int) -> None:
    colour = COLOURS[obj.colour]
    cx, cy, r = obj.x * side, obj.y * side, obj.radius * side
    box = (cx - r, cy - r, cx + r, cy + r)
    if obj.kind == "circle":
        draw.ellipse(box, fill=colour)
    elif obj.kind == "ring":
        draw.ellipse(box, outline=colour, width=max(1, round(0.25 * r)))
    else:
        draw.polygon(_rotated(_UNIT_SHAPES[obj.kind], obj.angle, cx, cy, r), fill=colour)


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------


def describe_scene(scene: Scene, rng: random.Random, n: int = 5) -> list[str]:
    """`n` distinct captions, each true of the scene and each about a different aspect of it.

    Aspects (in a random order per image): objects and colours, positions, the relation (or, for one
    object, its size), count and background, a short loose caption; then sizes; then the aspects
    again with fresh templates. Synonyms vary ("red circle", "crimson disc", "round red shape").
    """
    core = [_about_objects, _about_positions, _about_relation, _about_count_and_background, _about_loosely]
    rng.shuffle(core)
    order: list[Callable[[Scene, random.Random], str]] = core + [_about_sizes]
    while len(order) < n:
        again = [*core, _about_sizes]
        rng.shuffle(again)
        order += again
    captions: list[str] = []
    for aspect in order[:n]:
        caption = _sentence(aspect(scene, rng))
        for _ in range(20):  # redraw an exact duplicate (possible for tiny scenes)
            if caption not in captions:
                break
            caption = _sentence(rng.choice(order)(scene, rng))
        captions.append(caption)
    return captions


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[0].upper() + text[1:] + "."


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" and not word.startswith(("uni", "one")) else "a"


def _with_article(phrase: str, article: str) -> str:
    return f"{_article(phrase) if article == 'a' else article} {phrase}".strip()


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _pick(rng: random.Random, words: Sequence[str], canonical_p: float = 0.55) -> str:
    """The canonical (first) word with probability `canonical_p`, else one of its synonyms."""
    if len(words) == 1 or rng.random() < canonical_p:
        return words[0]
    return rng.choice(words[1:])


def _kind_word(kind: str, rng: random.Random, many: bool = False) -> str:
    word = _pick(rng, KIND_SYNONYMS[kind])
    return plural(word) if many else word


# Synonyms that only work as adjectives ("an inky cross", never "a cross in inky").
_ADJECTIVE_ONLY_COLOURS = frozenset({"snowy", "inky", "golden"})


def _colour_word(colour: str, rng: random.Random, noun: bool = False) -> str:
    words = [w for w in COLOUR_SYNONYMS[colour] if not (noun and w in _ADJECTIVE_ONLY_COLOURS)]
    return _pick(rng, words)


def _object_phrase(
    obj: SceneObject, rng: random.Random, *, article: str = "a", colour_p: float = 1.0, size_p: float = 0.3
) -> str:
    """A noun phrase true of one object: "a big red circle", "a disc in crimson", "a round red shape"."""
    words = [_pick(rng, SIZE_SYNONYMS[obj.size], 0.6)] if rng.random() < size_p else []
    noun = _kind_word(obj.kind, rng)
    if rng.random() >= colour_p:
        words.append(noun)
    else:
        style = rng.random()
        if style < 0.15 and obj.kind in KIND_ADJECTIVES:
            words += [rng.choice(KIND_ADJECTIVES[obj.kind]), _colour_word(obj.colour, rng), rng.choice(GENERIC_NOUNS)]
        elif style < 0.3:
            words += [noun, rng.choice(("in", "coloured", "painted")), _colour_word(obj.colour, rng, noun=True)]
        else:
            words += [_colour_word(obj.colour, rng), noun]
    return _with_article(" ".join(words), article)


def _groups(scene: Scene) -> list[tuple[tuple[str, str], list[SceneObject]]]:
    """Objects grouped by (kind, colour), in scene order."""
    groups: dict[tuple[str, str], list[SceneObject]] = {}
    for obj in scene.objects:
        groups.setdefault((obj.kind, obj.colour), []).append(obj)
    return list(groups.items())


def _group_phrase(key: tuple[str, str], members: list[SceneObject], rng: random.Random) -> str:
    kind, colour = key
    if len(members) == 1:
        return _object_phrase(members[0], rng)
    count = rng.choice((NUMBER_WORDS[len(members)],) + (("a pair of",) if len(members) == 2 else ()))
    return f"{count} {_colour_word(colour, rng)} {_kind_word(kind, rng, many=True)}"


def _about_objects(scene: Scene, rng: random.Random) -> str:
    phrases = [_group_phrase(key, members, rng) for key, members in _groups(scene)]
    listed = _join(phrases)
    many = len(scene.objects) > 1
    templates = (
        "{x}",
        "a picture of {x}",
        "an image with {x}",
        "this image shows {x}",
        "there are {x}" if many else "there is {x}",
        "{x} drawn together" if many else "{x} drawn on its own",
    )
    return rng.choice(templates).format(x=listed)


def _about_positions(scene: Scene, rng: random.Random) -> str:
    clauses = []
    for obj in scene.objects:
        phrase = _object_phrase(obj, rng, colour_p=0.5, size_p=0.25)
        where = rng.choice(POSITION_PHRASES[obj.position])
        if rng.random() < 0.3:
            clauses.append(f"{where} there is {phrase}")
        else:
            clauses.append(f"{phrase} {where}")
    rng.shuffle(clauses)
    return rng.choice((_join(clauses), "; ".join(clauses)))


def _about_relation(scene: Scene, rng: random.Random) -> str:
    if scene.relation is None:
        return _about_single(scene.objects[0], rng)
    a, b = scene.objects[scene.relation.subject], scene.objects[scene.relation.object]
    relation = scene.relation.relation
    if rng.random() < 0.5:  # state it from the other object's side
        a, b, relation = b, a, INVERSE_RELATION[relation]
    size_p = 0.5 if relation in ("inside", "contains") else 0.2
    phrase = rng.choice(RELATION_PHRASES[relation])
    definite = rng.random() < 0.5
    first = _object_phrase(a, rng, article="the" if definite else "a", colour_p=0.7, size_p=size_p)
    second = _object_phrase(b, rng, article="the" if definite else "a", colour_p=0.7, size_p=size_p)
    if relation == "contains":
        return f"{first} {phrase} {second}"
    verb = rng.choice(("is", "sits", "is placed", "lies")) if definite else rng.choice(("", "placed", "drawn"))
    return f"{first} {verb} {phrase} {second}"


def _about_single(obj: SceneObject, rng: random.Random) -> str:
    size, colour, noun = _pick(rng, SIZE_SYNONYMS[obj.size]), _colour_word(obj.colour, rng), _kind_word(obj.kind, rng)
    templates = (
        f"a single {size} {colour} {noun}",
        f"only one {rng.choice(GENERIC_NOUNS)}: {_with_article(f'{size} {colour} {noun}', 'a')}",
        f"a lone {colour} {noun}, quite {size}",
        f"just one {size} {noun} in {_colour_word(obj.colour, rng, noun=True)}",
    )
    return rng.choice(templates)


def _count_phrase(scene: Scene, rng: random.Random) -> str:
    n = len(scene.objects)
    if rng.random() < 0.5:
        generic = rng.choice(GENERIC_NOUNS)
        if n == 1:
            return f"{rng.choice(('one', 'a single', 'just one', 'only one'))} {generic}"
        return f"{NUMBER_WORDS[n]} {plural(generic)}"
    parts = []
    for kind, k in Counter(obj.kind for obj in scene.objects).items():
        if k == 1:
            noun = _kind_word(kind, rng)
            parts.append(rng.choice((f"one {noun}", f"a single {noun}", _with_article(noun, "a"))))
        else:
            parts.append(f"{NUMBER_WORDS[k]} {_kind_word(kind, rng, many=True)}")
    rng.shuffle(parts)
    return _join(parts)


def _background_phrase(scene: Scene, rng: random.Random) -> str:
    """ "a grey striped background", "beige dots", "a plain teal backdrop" ..."""
    tone = _pick(rng, BACKGROUND_COLOUR_SYNONYMS[scene.background_colour], 0.5)
    texture = scene.background_texture
    noun = rng.choice(BACKGROUND_NOUNS)
    adjective = rng.choice(TEXTURE_ADJECTIVES[texture])
    options = [f"a {tone} {adjective} {noun}", _with_article(f"{adjective} {tone} {noun}", "a")]
    if texture in TEXTURE_NOUNS:
        options += [f"{tone} {rng.choice(TEXTURE_NOUNS[texture])}", f"a {noun} of {tone} {TEXTURE_NOUNS[texture][0]}"]
    return rng.choice(options)


def _about_count_and_background(scene: Scene, rng: random.Random) -> str:
    count, background = _count_phrase(scene, rng), _background_phrase(scene, rng)
    templates = (
        f"{count} on {background}",
        f"{count} against {background}",
        f"{background} with {count} on it",
        f"there {'is' if len(scene.objects) == 1 else 'are'} {count} over {background}",
    )
    return rng.choice(templates)


def _about_loosely(scene: Scene, rng: random.Random) -> str:
    obj = rng.choice(scene.objects)
    colours = [_colour_word(c, rng) for c in dict.fromkeys(o.colour for o in scene.objects)]
    texture = scene.background_texture
    ground = (
        rng.choice(TEXTURE_NOUNS[texture]) if texture in TEXTURE_NOUNS else f"a {rng.choice(TEXTURE_ADJECTIVES['plain'])} background"
    )
    options = [
        _object_phrase(obj, rng, size_p=0.0),
        f"{_join(colours)} {'shapes' if len(scene.objects) > 1 else 'shape'}",
        f"{_with_article(_kind_word(obj.kind, rng), 'a')} on {ground}",
        f"{_with_article(_pick(rng, SIZE_SYNONYMS[obj.size]), 'a')} {_kind_word(obj.kind, rng)}",
        "simple shapes" if len(scene.objects) > 1 else "a simple shape",
    ]
    if len(colours) == 1 and len(scene.objects) > 1:
        options[1] = f"{colours[0]} shapes"
    # The uninformative "simple shapes" only now and then, like the odd vague COCO caption.
    return rng.choices(options, weights=(3, 3, 3, 3, 1))[0]


def _about_sizes(scene: Scene, rng: random.Random) -> str:
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        return f"{_with_article(_pick(rng, SIZE_SYNONYMS[obj.size]), 'a')} {_kind_word(obj.kind, rng)} alone"
    phrases = [_object_phrase(o, rng, colour_p=0.3, size_p=1.0) for o in scene.objects]
    return _join(phrases)
