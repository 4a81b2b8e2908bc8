"""COCO caption metrics against pycocoevalcap's own COCOEvalCap, the Java-free fallback, results-format checks."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from diffusion_bridge.errors import InputError
from diffusion_bridge.metrics.captioning import (
    caption_metrics,
    caption_metrics_many,
    evaluate_coco_files,
    java_available,
    ptb_tokenize,
    python_tokenize,
    spice_available,
    to_coco_results,
    validate_coco_results,
)

needs_java = pytest.mark.skipif(not java_available(), reason="Java is needed by the PTB tokenizer and METEOR")

SUBJECTS = ["A man", "Two dogs", "A woman", "A small child", "Three people", "A brown cat"]
VERBS = ["riding", "sitting on", "standing next to", "walking down", "looking at", "holding"]
OBJECTS = ["a red bicycle", "the busy street", "a wooden bench", "a large pizza", "the kitchen counter", "a surfboard"]
TAILS = [".", " in the park.", ", near a tree.", " on a sunny day!", " (left) at night.", " that isn't new."]


def _caption(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}"


@pytest.fixture(scope="module")
def coco_files(tmp_path_factory):
    """A COCO label file (40 images x 5 captions, as create_labels_json.py writes) and a results file."""
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("coco")
    image_ids = [rng.randrange(10_000, 99_999) for _ in range(40)]
    annotations = [{"image_id": i, "caption": _caption(rng), "id": 5 * n + k}
                   for n, i in enumerate(image_ids) for k in range(5)]
    labels = {"images": [{"id": i} for i in image_ids], "annotations": annotations}
    # Half the candidates copy a reference with an edit, half are unrelated: non-trivial scores.
    captions = [annotations[5 * n]["caption"].replace("A ", "a ") if n % 2 else _caption(rng)
                for n in range(len(image_ids))]
    results = to_coco_results(image_ids, captions)
    (folder / "labels.json").write_text(json.dumps(labels))
    (folder / "results.json").write_text(json.dumps(results))
    return folder, labels, results


def _official(folder) -> dict[str, float]:
    """pycocotools + pycocoevalcap exactly as the reference's evaluate_on_coco_caption calls them."""
    import pycocoevalcap.eval as coco_eval
    from pycocotools.coco import COCO

    class AbsentSpice:  # SPICE's CoreNLP jars are not installed here and must not be downloaded
        def compute_score(self, gts, res):
            return float("nan"), [float("nan")] * len(gts)

        def method(self):
            return "SPICE"

    spice = coco_eval.Spice
    if not spice_available():
        coco_eval.Spice = AbsentSpice
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(folder / "labels.json"))
            evaluator = coco_eval.COCOEvalCap(coco, coco.loadRes(str(folder / "results.json")))
            evaluator.evaluate()
    finally:
        coco_eval.Spice = spice
    return {k: float(v) for k, v in evaluator.eval.items() if k != "SPICE" or spice_available()}


@pytest.fixture(scope="module")
def ours(coco_files) -> dict[str, float]:
    folder, _, _ = coco_files
    return evaluate_coco_files(folder / "labels.json", folder / "results.json")


@needs_java
def test_metrics_equal_cocoevalcap_on_the_same_files(coco_files, ours):
    folder, _, _ = coco_files
    official = _official(folder)
    assert set(ours) == set(official)
    assert ours == official  # same tokens, same scorers, same order: bit-identical
    assert 0.2 < ours["Bleu_4"] < 0.95 and 1.0 < ours["CIDEr"] < 9.0 and 0.1 < ours["METEOR"] < 0.9


@needs_java
@pytest.mark.slow  # two METEOR start-ups (~10 s each on a busy 2-core runner)
def test_many_sets_share_jvms_and_equal_separate_calls(coco_files, ours):
    _, labels, results = coco_files
    references: dict[int, list[str]] = {image["id"]: [] for image in labels["images"]}
    for ann in labels["annotations"]:
        references[ann["image_id"]].append(ann["caption"])
    first = {r["image_id"]: r["caption"] for r in results}
    second = {i: refs[-1].upper() for i, refs in references.items()}  # a reference, shouted: near-perfect
    many = caption_metrics_many(references, {"first": first, "second": second})
    assert many["first"] == ours
    assert many["second"] == caption_metrics(references, second)
    assert many["second"]["CIDEr"] > many["first"]["CIDEr"]


@needs_java
def test_python_tokenizer_matches_ptb_on_captions(coco_files):
    _, labels, results = coco_files
    sentences = [a["caption"] for a in labels["annotations"]] + [r["caption"] for r in results] + [
        "A dog's ball (red) \"big\" don't.", "", "Two men -- on a t-shirt... can't won't I'm 3.5 $5 U.S.",
        "50% off & more / #1 a.m. Mr. Smith cannot gonna", "Is that a hot-dog?!", "There are 1,000 zebras; ok:",
    ]
    assert python_tokenize(sentences) == ptb_tokenize(sentences)
    # Line breaks other than \n would shift every later caption in the JVM's output; they become spaces.
    assert ptb_tokenize(["A\rdog.", "x\u2028y", "", "A cat!"]) == ["a dog", "x y", "", "a cat"]


_NO_JAVA_SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    from diffusion_bridge.metrics.captioning import evaluate_coco_files, java_available
    assert not java_available()
    first = evaluate_coco_files(sys.argv[1], sys.argv[2])
    second = evaluate_coco_files(sys.argv[1], sys.argv[2])
    print(json.dumps([first, second]))
    """
)


def test_without_java_one_warning_and_bleu_rouge_cider_still_computed(coco_files, tmp_path, request):
    folder, _, _ = coco_files
    env = {**os.environ, "PATH": str(tmp_path)}  # a PATH with no java on it
    done = subprocess.run(
        [sys.executable, "-c", _NO_JAVA_SCRIPT, str(folder / "labels.json"), str(folder / "results.json")],
        env=env, capture_output=True, text=True, timeout=1800, check=True,  # hang guard only
    )
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, done.stderr
    for needle in ("METEOR", "SPICE", "PTB", "apt-get install default-jre-headless"):
        assert needle in warnings[0]
    first, second = json.loads(done.stdout)
    assert first == second
    assert sorted(first) == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"]
    if java_available():  # these captions tokenise identically both ways: the same numbers as with Java
        with_java = request.getfixturevalue("ours")
        assert first == {k: with_java[k] for k in first}


def test_results_format_round_trip(coco_files):
    _, labels, results = coco_files
    assert all(set(r) == {"image_id", "caption"} and type(r["image_id"]) is int for r in results)
    validate_coco_results(json.loads(json.dumps(results)), labels)
    with pytest.raises(InputError, match="3 image ids but 2 captions"):
        to_coco_results([1, 2, 3], ["a", "b"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rs: rs.__setitem__(0, {**rs[0], "image_id": str(rs[0]["image_id"])}), r"record 0 has image_id='\d+' \(str\)"),
        (lambda rs: rs.__setitem__(1, {"image_id": rs[1]["image_id"]}), "record 1 = .* must be"),
        (lambda rs: rs.append(dict(rs[2])), "is a second caption for image_id"),
        (lambda rs: rs.append({"image_id": 7, "caption": "x"}), "image_id=7, which the labels do not list"),
        (lambda rs: rs.pop(), "no caption for 1 labelled images"),
    ],
)
def test_bad_results_raise_named_errors(coco_files, tmp_path, edit, message):
    folder, labels, results = coco_files
    broken = [dict(r) for r in results]
    edit(broken)
    with pytest.raises(InputError, match=message):
        validate_coco_results(broken, labels)
    path = tmp_path / "bad_results.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(InputError, match="bad_results.json"):
        evaluate_coco_files(folder / "labels.json", path)


def test_bad_inputs_to_caption_metrics_and_label_files(tmp_path):
    with pytest.raises(InputError, match="references are empty"):
        caption_metrics({}, {})
    with pytest.raises(InputError, match=r"no candidate for \[2\]"):
        caption_metrics({1: ["a dog"], 2: ["a cat"]}, {1: "a dog"})
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"images": [{"id": 1}], "annotations": [{"image_id": 2, "caption": "x", "id": 0}]}))
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "caption": "x"}]))
    with pytest.raises(InputError, match=r"labels.json: annotations\[0\]"):
        evaluate_coco_files(labels, results)
    with pytest.raises(InputError, match="missing.json does not exist"):
        evaluate_coco_files(tmp_path / "missing.json", results)
