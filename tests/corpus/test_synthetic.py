"""The synthetic corpus: deterministic renders, Karpathy schema, true and varied captions, compositional split."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import statistics
from pathlib import Path

import pytest
from PIL import Image

from diffusion_bridge.corpus import synthetic
from diffusion_bridge.corpus.scenes import (
    BACKGROUND_COLOURS,
    COLOURS,
    KINDS,
    POSITIONS,
    Scene,
    all_pairs,
    caption_tokens,
    describe_scene,
    render_scene,
    sample_scene,
)
from diffusion_bridge.corpus.synthetic import (
    DATASET_FILE,
    SPEC_FILE,
    SyntheticSpec,
    build_dataset,
    held_out_pairs,
    novel_combination_fraction,
    render_corpus,
)
from diffusion_bridge.errors import ConfigError, InputError, WorkdirError
from diffusion_bridge.metrics.attributes import attribute_accuracy

SMALL = SyntheticSpec(seed=3, n_train=24, n_val=8, n_test=20)


def tree_digest(root: Path) -> str:
    """One hash over every file's relative path and bytes."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def corpus() -> dict:
    """Scenes and captions (no pixels) of a mid-sized corpus."""
    return build_dataset(SyntheticSpec(seed=7, n_train=400, n_val=100, n_test=200))


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_different_seed_differs(tmp_path: Path) -> None:
    first = render_corpus(SMALL, tmp_path / "a")
    second = render_corpus(SMALL, tmp_path / "b", workers=2)  # process pool must not change a byte
    assert first == second
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")

    other = render_corpus(SyntheticSpec(seed=4, n_train=24, n_val=8, n_test=20), tmp_path / "c")
    assert other["images"] != first["images"]
    a_png = (tmp_path / "a" / "images" / "train" / "000000.png").read_bytes()
    c_png = (tmp_path / "c" / "images" / "train" / "000000.png").read_bytes()
    assert a_png != c_png


def test_split_scenes_do_not_depend_on_other_split_sizes() -> None:
    small = build_dataset(SyntheticSpec(seed=1, n_train=10, n_val=5, n_test=5))
    large = build_dataset(SyntheticSpec(seed=1, n_train=30, n_val=5, n_test=5))
    scenes = lambda d, s: [r["scene"] for r in d["images"] if r["split"] == s]  # noqa: E731
    assert scenes(small, "test") == scenes(large, "test")
    assert scenes(small, "train") == scenes(large, "train")[:10]


# --- schema and files ----------------------------------------------------------------------------


def test_karpathy_schema_ids_and_files(tmp_path: Path) -> None:
    dataset = render_corpus(SMALL, tmp_path / "corpus")
    assert json.loads((tmp_path / "corpus" / DATASET_FILE).read_text()) == dataset
    assert dataset["dataset"] == "synthetic"
    images = dataset["images"]
    assert [r["imgid"] for r in images] == list(range(len(images)))
    sentids = [s["sentid"] for r in images for s in r["sentences"]]
    assert sentids == list(range(len(images) * SMALL.captions_per_image))
    counts = {s: sum(r["split"] == s for r in images) for s in ("train", "val", "test")}
    assert counts == {"train": SMALL.n_train, "val": SMALL.n_val, "test": SMALL.n_test}
    for record in images:
        assert record["filepath"] == record["split"]
        assert record["filename"] == f"{record['imgid']:06d}.png"
        assert len(record["sentences"]) == SMALL.captions_per_image
        for sentence in record["sentences"]:
            assert sentence["imgid"] == record["imgid"]
            assert sentence["raw"].strip() and sentence["raw"][0].isupper()
            assert sentence["tokens"] == caption_tokens(sentence["raw"])
            assert all(t == t.lower() and t.isalnum() for t in sentence["tokens"])
        Scene.from_dict(record["scene"])  # ground truth is a valid scene
        with Image.open(tmp_path / "corpus" / "images" / record["filepath"] / record["filename"]) as image:
            assert image.format == "PNG" and image.mode == "RGB" and image.size == (64, 64)


def test_caption_and_size_parameters_are_honoured() -> None:
    dataset = build_dataset(SyntheticSpec(seed=0, n_train=5, n_val=0, n_test=0, captions_per_image=8))
    for record in dataset["images"]:
        assert len({s["raw"] for s in record["sentences"]}) == 8


def test_complete_render_is_reused_and_incomplete_one_redone(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    render_corpus(SMALL, out)
    stamp = (out / SPEC_FILE).stat().st_mtime_ns
    render_corpus(SMALL, out)
    assert (out / SPEC_FILE).stat().st_mtime_ns == stamp  # nothing rewritten

    missing = out / "images" / "test" / f"{SMALL.n_train + SMALL.n_val:06d}.png"
    missing.unlink()
    render_corpus(SMALL, out)
    assert missing.is_file()

    changed = SyntheticSpec(seed=3, n_train=10, n_val=8, n_test=20)
    dataset = render_corpus(changed, out)
    assert len(dataset["images"]) == 38 and len(list((out / "images" / "train").iterdir())) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]  # no temp or old folders left


def test_interrupted_render_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = itertools.count()
    real = synthetic._render_one

    def failing(job):  # the 10th image fails, as if the process were stopped mid-way
        if next(calls) == 9:
            raise KeyboardInterrupt
        real(job)

    monkeypatch.setattr(synthetic, "_render_one", failing)
    with pytest.raises(KeyboardInterrupt):
        render_corpus(SMALL, tmp_path / "corpus")
    assert list(tmp_path.iterdir()) == []


def test_foreign_output_folder_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(WorkdirError, match="not a synthetic corpus render"):
        render_corpus(SMALL, out)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"holdout_pairs": len(KINDS) * (len(COLOURS) - 1) + 1}, "holdout_pairs"),
        ({"holdout_pairs": 0, "novel_test_fraction": 0.5}, "novel_test_fraction"),
        ({"novel_test_fraction": 1.5}, "novel_test_fraction"),
        ({"n_train": -1}, "n_train"),
        ({"image_size": 8}, "image_size"),
        ({"n_trian": 5}, "unknown synthetic corpus parameter"),
    ],
)
def test_bad_spec_is_named(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SyntheticSpec.from_params(params)


# --- scenes and pixels -----------------------------------------------------------------------------


def test_scene_round_trips_and_rejects_unknown_names() -> None:
    scene = sample_scene(random.Random(0), all_pairs())
    assert Scene.from_dict(json.loads(json.dumps(scene.to_dict()))) == scene
    bad = scene.to_dict()
    bad["objects"][0]["colour"] = "mauve"
    with pytest.raises(InputError, match="mauve"):
        Scene.from_dict(bad)


def test_scenes_are_compositional_and_shapes_do_not_collide(corpus: dict) -> None:
    scenes = [Scene.from_dict(r["scene"]) for r in corpus["images"]]
    sizes = {len(s.objects) for s in scenes}
    assert sizes == {1, 2, 3}
    assert any(len({o.kind for o in s.objects}) < len(s.objects) for s in scenes)  # two of a kind
    relations = {s.relation.relation for s in scenes if s.relation}
    assert relations == {"left_of", "right_of", "above", "below", "next_to", "inside"}
    assert {s.background_texture for s in scenes} == {"plain", "stripes", "dots", "checks"}
    for s in scenes:
        for a, b in itertools.combinations(s.objects, 2):
            if a.position == b.position:  # only a shape inside a container shares its place
                assert s.relation and s.relation.relation == "inside"
                assert abs(a.radius - b.radius) > 0.04
            else:
                assert math.dist((a.x, a.y), (b.x, b.y)) >= a.radius + b.radius - 1e-6
        for o in s.objects:
            assert o.radius <= o.x <= 1 - o.radius and o.radius <= o.y <= 1 - o.radius
            assert math.dist((o.x, o.y), POSITIONS[o.position]) < 0.05


def test_rendered_pixels_show_each_shape_in_its_colour(corpus: dict) -> None:
    """Independent check: the pixel at each shape's centre has that shape's colour (a ring's does not)."""
    size = 64
    for record in corpus["images"][:150]:
        scene = Scene.from_dict(record["scene"])
        pixels = render_scene(scene, size).load()
        for obj in scene.objects:
            inner = [o for o in scene.objects if o.position == obj.position and o.radius < obj.radius]
            if inner:
                continue  # covered by the shape inside it
            rgb = pixels[int(obj.x * size), int(obj.y * size)]
            if obj.kind == "ring":
                assert max(abs(p - q) for p, q in zip(rgb, COLOURS[obj.colour], strict=True)) > 40
            else:
                assert max(abs(p - q) for p, q in zip(rgb, COLOURS[obj.colour], strict=True)) <= 12, (record, obj)
        corner = pixels[0, 0]  # background tone or its darker texture ink
        tone = BACKGROUND_COLOURS[scene.background_colour]
        assert max(abs(p - q) for p, q in zip(corner, tone, strict=True)) <= 23


# --- captions -----------------------------------------------------------------------------------


def test_captions_are_true_of_their_scene(corpus: dict) -> None:
    scenes = {r["imgid"]: r["scene"] for r in corpus["images"]}
    for k in range(5):
        captions = {r["imgid"]: r["sentences"][k]["raw"] for r in corpus["images"]}
        scores = attribute_accuracy(captions, scenes)
        for name in ("kind", "colour", "count", "position", "background", "relation"):
            assert scores[f"{name}_mentions"] > 20, name  # every attribute is exercised ...
            assert scores[f"{name}_precision"] == 1.0, (k, name)  # ... and always true
        assert scores["hallucination_rate"] == 0.0


def test_captions_of_one_image_describe_different_aspects(corpus: dict) -> None:
    def jaccard(a: list[str], b: list[str]) -> float:
        return len(set(a) & set(b)) / len(set(a) | set(b))

    per_image = []
    for record in corpus["images"]:
        tokens = [s["tokens"] for s in record["sentences"]]
        assert len({tuple(t) for t in tokens}) == len(tokens)
        per_image.append(statistics.mean(jaccard(a, b) for a, b in itertools.combinations(tokens, 2)))
    # Measured 0.13 (0.09 between captions of different images); COCO's same-image captions share more.
    assert statistics.mean(per_image) < 0.2
    assert max(per_image) < 0.5


def test_describe_scene_uses_synonyms_and_is_deterministic() -> None:
    scene = sample_scene(random.Random(5), all_pairs())
    assert describe_scene(scene, random.Random(1), 5) == describe_scene(scene, random.Random(1), 5)
    words = set()
    for seed in range(300):
        s = sample_scene(random.Random(seed), all_pairs())
        words |= {t for c in describe_scene(s, random.Random(seed), 5) for t in caption_tokens(c)}
    assert {"crimson", "disc", "box", "violet", "hoop", "rhombus", "beige", "striped", "middle"} <= words


# --- compositional split --------------------------------------------------------------------------


def test_held_out_pairs_never_in_train_and_mostly_in_test(corpus: dict) -> None:
    holdout = {tuple(p) for p in corpus["holdout_pairs"]}
    assert len(holdout) == 8
    train_pairs = {
        (o["kind"], o["colour"]) for r in corpus["images"] if r["split"] == "train" for o in r["scene"]["objects"]
    }
    assert not holdout & train_pairs
    assert novel_combination_fraction(corpus, "train") == 0.0
    assert novel_combination_fraction(corpus, "test") == pytest.approx(0.75)
    assert novel_combination_fraction(corpus, "val") == pytest.approx(0.75)
    # independent count of test images holding a held-out pair
    test = [r for r in corpus["images"] if r["split"] == "test"]
    novel = [r for r in test if any((o["kind"], o["colour"]) in holdout for o in r["scene"]["objects"])]
    assert len(novel) == 150


def test_held_out_pairs_spread_over_kinds_and_colours() -> None:
    eight = held_out_pairs(seed=0, count=8)
    assert {k for k, _ in eight} == set(KINDS) and {c for _, c in eight} == set(COLOURS)
    assert held_out_pairs(seed=0, count=8) == eight and held_out_pairs(seed=1, count=8) != eight
    most = held_out_pairs(seed=0, count=len(KINDS) * (len(COLOURS) - 1))
    assert len(set(most)) == len(most)
    for kind in KINDS:  # every kind keeps a colour for train
        assert sum(k == kind for k, _ in most) == len(COLOURS) - 1


def test_novel_fraction_is_a_parameter() -> None:
    dataset = build_dataset(SyntheticSpec(seed=2, n_train=50, n_val=0, n_test=40, novel_test_fraction=0.9))
    assert novel_combination_fraction(dataset, "test") == pytest.approx(0.9)
