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
    with pytest.raises(CorpusError, match="absent.json: the annotation file does not exist.*Karpathy split"):
        read_karpathy(tmp_path / "absent.json", tmp_path)


def test_a_non_utf8_byte_is_named_with_its_offset(tmp_path):
    path = tmp_path / "dataset_coco.json"
    path.write_bytes(json.dumps(DOC).encode().replace(b"Two cats", b"Two c\xe9ts"))
    with pytest.raises(CorpusError, match=r"dataset_coco.json: not UTF-8 text \(byte 0xe9 at offset \d+\).*re-encode"):
        read_karpathy(path, tmp_path)


@pytest.mark.parametrize(
    ("filepath", "filename"),
    [("..", "../../etc/passwd"), ("", "/etc/passwd"), ("val2014/../../outside", "x.png"), ("val2014", "..")],
)
def test_image_paths_may_not_leave_image_root(tmp_path, filepath, filename):
    doc = copy.deepcopy(DOC)
    doc["images"][1].update(filepath=filepath, filename=filename)
    with pytest.raises(CorpusError) as info:
        read_karpathy(write(tmp_path, doc), tmp_path / "images")
    assert "images[1]" in str(info.value) and "imgid=1" in str(info.value) and "outside image_root" in str(info.value)


def test_a_link_out_of_image_root_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "b.jpg")
    (tmp_path / "images" / "val2014").mkdir(parents=True)
    (tmp_path / "images" / "val2014" / "b.jpg").symlink_to(outside / "b.jpg")
    with pytest.raises(CorpusError, match="imgid=1.*outside image_root"):
        read_karpathy(write(tmp_path, DOC), tmp_path / "images")


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


def test_an_image_too_large_to_decode_is_a_per_image_error_that_skip_skips(tmp_path, monkeypatch):
    from diffusion_bridge.corpus import images

    corpus = _with_images(tmp_path)
    monkeypatch.setattr(images, "MAX_PIXELS", 32 * 24 - 1)  # every 32x24 test image is now "huge"
    for mode in ("decode", "header"):
        with pytest.raises(ImageFilesError, match="(?s)3 unreadable.*32x24 pixels is more than"):
            drop_bad_images(corpus, mode, "error")
        kept, check = drop_bad_images(corpus, mode, "skip")
        assert check.bad_ids == {0, 1, 2} and kept.images.empty


def test_every_mode_is_converted_faithfully(tmp_path):
    import numpy as np

    from diffusion_bridge.corpus.images import open_rgb

    grey16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1024)  # 0 .. 64512 over a 16-bit range
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    got = np.asarray(open_rgb(str(tmp_path / "grey16.png")))[..., 0].astype(int)
    assert np.abs(got - np.round(grey16 / 257)).max() <= 1  # rescaled, not clipped at 255
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 250  # red, fully transparent
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    assert np.asarray(open_rgb(str(tmp_path / "clear.png"))).tolist()[0][0] == [255, 255, 255]  # over white
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    r, g, b = np.asarray(open_rgb(str(tmp_path / "cmyk.jpg")))[0, 0]
    assert r > 200 and g < 60 and b < 60
    Image.new("1", (4, 4), 1).save(tmp_path / "bits.png")
    assert np.asarray(open_rgb(str(tmp_path / "bits.png"))).min() == 255
