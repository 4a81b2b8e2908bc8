"""The Karpathy reader on valid and malformed files: every error names the file, the record and the field."""

import copy
import json

import pytest
from PIL import Image

from diffusion_bridge.corpus import read_karpathy
from diffusion_bridge.corpus.images import drop_bad_images
from diffusion_bridge.errors import CorpusError, ImageFilesError

DOC = {
    "dataset": "coco",
    "images": [
        {"imgid": 0, "split": "train", "filepath": "train2014", "filename": "a.jpg",
         "sentences": [{"sentid": 0, "imgid": 0, "raw": "A dog  on a\tbench."}, {"sentid": 1, "imgid": 0, "raw": "A brown dog."}]},
        {"imgid": 1, "split": "restval", "filepath": "val2014", "filename": "b.jpg",
         "sentences": [{"sentid": 2, "imgid": 1, "raw": "Two cats."}]},
        {"imgid": 2, "split": "test", "filepath": "val2014", "filename": "c.jpg",
         "sentences": [{"sentid": 3, "imgid": 2, "raw": "A ca\u0301r\u200b parked."}]},
    ],
}


def write(tmp_path, doc):
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(doc))
    return path


def test_reads_tables_merges_restval_and_cleans_captions(tmp_path):
    corpus = read_karpathy(write(tmp_path, DOC), tmp_path / "images")
    assert corpus.images["split"].tolist() == ["train", "train", "test"]
    assert corpus.images["source_split"].tolist() == ["train", "restval", "test"]
    assert corpus.images["image_path"].iloc[1] == str(tmp_path / "images" / "val2014" / "b.jpg")
    assert corpus.captions["sentid"].tolist() == [0, 1, 2, 3]
    assert corpus.captions["raw"].iloc[0] == "A dog  on a\tbench."  # raw kept
    assert corpus.captions["caption"].iloc[0] == "A dog on a bench."
    assert corpus.captions["caption"].iloc[3] == "A cár parked."  # NFKC composes, zero-width space dropped
    assert corpus.split_sizes()["train"] == {"images": 2, "captions": 3}


def test_flickr_records_without_filepath(tmp_path):
    doc = copy.deepcopy(DOC)
    for record in doc["images"]:
        del record["filepath"]
    corpus = read_karpathy(write(tmp_path, doc), tmp_path)
    assert corpus.images["image_path"].iloc[0] == str(tmp_path / "a.jpg")


@pytest.mark.parametrize(
    ("mutate", "error", "fragments"),
    [
        (lambda d: d["images"][1].pop("split"), CorpusError, ["images[1]", "imgid=1", "'split'"]),
        (lambda d: d["images"][2]["sentences"][0].pop("raw"), CorpusError, ["images[2]", "sentid=3", "'raw'"]),
        (lambda d: d["images"][1].update(split="holdout"), CorpusError, ["images[1]", "'holdout'", "restval"]),
        (lambda d: d["images"][2].update(imgid=0), CorpusError, ["images[2]", "imgid=0", "images[0]"]),
        (lambda d: d["images"][2]["sentences"][0].update(sentid=1), CorpusError, ["images[2]", "sentid=1"]),
        (lambda d: d["images"][0]["sentences"][1].update(raw=" \u200b\t"), CorpusError, ["images[0]", "sentid=1", "empty caption"]),
        (lambda d: d["images"][0]["sentences"][1].update(imgid=7), CorpusError, ["sentid=1", "differs"]),
        (lambda d: d["images"][0].update(sentences=[]), CorpusError, ["images[0]", "sentences"]),
    ],
)
def test_malformed_records_raise_named_errors(tmp_path, mutate, error, fragments):
    doc = copy.deepcopy(DOC)
    mutate(doc)
    path = write(tmp_path, doc)
    with pytest.raises(error) as info:
        read_karpathy(path, tmp_path)
    message = str(info.value)
    assert str(path) in message and "Fix:" in message
    for fragment in fragments:
        assert fragment in message


def test_not_json_and_missing_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [')
    with pytest.raises(CorpusError, match="not valid JSON"):
        read_karpathy(path, tmp_path)
    with pytest.raises(FileNotFoundError, match="Karpathy split"):
        read_karpathy(tmp_path / "absent.json", tmp_path)


def _with_images(tmp_path, names=("a.jpg", "b.jpg", "c.jpg")):
    folders = {"a.jpg": "train2014", "b.jpg": "val2014", "c.jpg": "val2014"}
    for name in names:
        folder = tmp_path / "images" / folders[name]
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 24), (200, 10, 10)).save(folder / name, quality=90)
    return read_karpathy(write(tmp_path, DOC), tmp_path / "images")


def test_missing_image_stops_and_lists_it(tmp_path):
    corpus = _with_images(tmp_path, names=("a.jpg", "c.jpg"))
    with pytest.raises(ImageFilesError) as info:
        drop_bad_images(corpus, "decode", "error")
    assert "1 missing" in str(info.value) and "imgid=1" in str(info.value) and "b.jpg" in str(info.value)


def test_corrupt_image_stops_and_lists_it(tmp_path):
    corpus = _with_images(tmp_path)
    target = tmp_path / "images" / "val2014" / "c.jpg"
    target.write_bytes(target.read_bytes()[:40])  # truncated JPEG
    with pytest.raises(ImageFilesError) as info:
        drop_bad_images(corpus, "decode", "error")
    assert "imgid=2" in str(info.value) and "c.jpg" in str(info.value) and "on_bad_images: skip" in str(info.value)


def test_skip_policy_drops_images_and_their_captions_and_reports_them(tmp_path):
    corpus = _with_images(tmp_path, names=("a.jpg", "b.jpg"))
    kept, check = drop_bad_images(corpus, "decode", "skip")
    assert check.bad_ids == {2}
    assert kept.images["imgid"].tolist() == [0, 1]
    assert 3 not in kept.captions["sentid"].tolist()
