"""Attribute accuracy on hand-made scenes and captions whose right answers are worked out by hand."""

from __future__ import annotations

import json

import pytest

from diffusion_bridge.corpus.scenes import Relation, Scene, SceneObject
from diffusion_bridge.errors import InputError
from diffusion_bridge.metrics.attributes import attribute_accuracy, parse_caption

# A red circle on the left, a blue square on the right, on grey stripes.
TWO = Scene(
    objects=(
        SceneObject("circle", "red", "big", "left", 0.2, 0.5, 0.13, 0),
        SceneObject("square", "blue", "small", "right", 0.8, 0.5, 0.08, 5),
    ),
    background_texture="stripes",
    background_colour="grey",
    relation=Relation(0, "left_of", 1),
)
# A small yellow star inside a big green ring in the centre, and a green ring at the top; sand dots.
NESTED = Scene(
    objects=(
        SceneObject("ring", "green", "big", "centre", 0.5, 0.5, 0.14, 0),
        SceneObject("star", "yellow", "small", "centre", 0.5, 0.5, 0.077, 3),
        SceneObject("ring", "green", "small", "top", 0.5, 0.18, 0.08, 0),
    ),
    background_texture="dots",
    background_colour="sand",
    relation=Relation(1, "inside", 0),
)


def score(caption: str, scene: Scene = TWO) -> dict[str, float]:
    return attribute_accuracy({0: caption}, {0: scene.to_dict()})


def test_a_fully_true_caption_scores_one_everywhere() -> None:
    s = score("The red circle is to the left of the blue square, on a grey striped background.")
    assert s["kind_precision"] == s["kind_recall"] == 1.0
    assert s["colour_precision"] == s["background_precision"] == s["relation_precision"] == 1.0
    assert s["hallucination_rate"] == 0.0 and s["correct_pair_rate"] == 1.0
    assert s["colour_mentions"] == 3  # red, blue (objects) and grey (background)
    assert s["position_mentions"] == 0  # "to the left of" is a relation, not a position


def test_a_wrong_colour_lowers_colour_precision() -> None:
    s = score("A green circle and a blue square.")
    assert s["colour_precision"] == pytest.approx(1 / 2)
    assert s["correct_pair_rate"] == 1.0  # the blue square is right
    s = score("A blue circle and a red square.")  # both colours exist, but on the other shapes
    assert s["colour_precision"] == 1.0 and s["correct_pair_rate"] == 0.0


def test_synonyms_and_phrasings_are_understood() -> None:
    assert parse_caption("a crimson disc").pairs == {("circle", "red")}
    assert parse_caption("a round scarlet shape").pairs == {("circle", "red")}
    assert parse_caption("a box painted azure").pairs == {("square", "blue")}
    assert parse_caption("two cobalt boxes").counts == {(2, "square", "blue", None)}
    assert parse_caption("a pair of tiny hoops").counts == {(2, "ring", None, "small")}
    assert score("One crimson disc, and a small cobalt box.")["correct_pair_rate"] == 1.0


def test_an_extra_kind_is_a_hallucination() -> None:
    s = score("A red circle and a star.")
    assert s["hallucination_rate"] == 1.0
    assert s["kind_precision"] == pytest.approx(1 / 2)
    assert s["kind_recall"] == pytest.approx(1 / 2)  # the square is not named


def test_counts_are_checked_against_the_scene() -> None:
    assert score("Two shapes.")["count_precision"] == 1.0
    assert score("Three objects.")["count_precision"] == 0.0
    assert score("Two circles.")["count_precision"] == 0.0
    assert score("A single red circle.")["count_precision"] == 1.0
    assert score("Two green rings and one star.", NESTED)["count_precision"] == 1.0
    assert score("Two big green rings.", NESTED)["count_precision"] == 0.0  # only one of them is big


def test_positions_and_relations() -> None:
    assert score("A circle on the left.")["position_precision"] == 1.0
    assert score("A circle at the top of the picture.")["position_precision"] == 0.0
    assert score("The blue square is to the left of the red circle.")["relation_precision"] == 0.0
    assert score("The square is right of the circle.")["relation_precision"] == 1.0
    assert score("The circle is above the square.")["relation_precision"] == 0.0
    assert score("A star inside a big ring.", NESTED)["relation_precision"] == 1.0
    assert score("A star inside a small ring.", NESTED)["relation_precision"] == 0.0  # the small ring is empty
    assert score("A big ring containing a star.", NESTED)["relation_precision"] == 1.0
    assert score("A ring above the star.", NESTED)["relation_precision"] == 1.0  # the top ring
    assert score("A star near the top.", NESTED)["relation_mentions"] == 0.0  # a position, not a relation


def test_background_claims() -> None:
    assert score("Shapes on a sand background.")["background_precision"] == 0.0
    assert score("Shapes on grey dots.")["background_precision"] == pytest.approx(1 / 2)  # grey yes, dots no
    s = score("The background is gray.")
    assert s["background_precision"] == 1.0 and s["colour_precision"] == 1.0
    s = score("A grey circle.")  # a background tone said of an object is a wrong colour
    assert s["colour_precision"] == 0.0 and s["background_mentions"] == 0
    s = score("A circle on a red background.")  # red is an object's colour, but not the background's
    assert s["background_precision"] == 0.0 and s["colour_precision"] == 1.0


def test_micro_averages_over_captions_match_a_hand_count() -> None:
    captions = {0: "A red circle and a star.", 1: "A yellow star inside a green ring.", 2: "Some shapes."}
    scenes = {0: TWO.to_dict(), 1: NESTED.to_dict(), 2: NESTED.to_dict()}
    s = attribute_accuracy(captions, scenes)
    # kinds: {circle, star} vs TWO -> 1 of 2; {star, ring} vs NESTED -> 2 of 2; none for caption 2
    assert s["kind_precision"] == pytest.approx(3 / 4)
    assert s["kind_recall"] == pytest.approx(3 / 6)  # 1 of 2, 2 of 2, 0 of 2
    assert s["hallucination_rate"] == pytest.approx(1 / 3)
    assert s["correct_pair_rate"] == pytest.approx(2 / 3)
    assert s["n_captions"] == 3.0
    assert s["count_mentions"] == 0 and s["count_precision"] == 0.0  # nothing to score: 0.0 by convention
    assert attribute_accuracy(captions, scenes) == s
    assert json.loads(json.dumps(s)) == s and all(isinstance(v, float) for v in s.values())


def test_a_caption_without_a_scene_is_named() -> None:
    with pytest.raises(InputError, match="imgid=5"):
        attribute_accuracy({5: "a red circle"}, {0: TWO.to_dict()})
