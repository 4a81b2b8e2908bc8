"""What a CLIP fit on the default synthetic corpus learns (kinds, retrieval, the gap), one fit variant per call.

Renders the default corpus (seed 0: 1,500 train, 250 val, 250 test images at 64 px, as conf/base) plus
`--extra-scenes` more train scenes from the same generator. Each image has its own seeded stream, so the
first 1,500 train images and the whole test split are the default run's own. It fits CLIP as the prepare
stage does (conf/base/parameters_prepare.yml's `clip.fit`, changed by the flags) and measures on the test split:

- kind precision of the retrieved caption: each image's nearest test caption, the share of the kinds it
  names that are in the image (chance: the same share for a caption drawn at random);
- the same on 250 train images, to tell memorising from learning;
- image→text R@10, the centroid gap (as the gap report) and the same-image caption cosine.

    python benchmarks/clip_fit_study.py                                   # the default fit (~2 min, 1 thread)
    python benchmarks/clip_fit_study.py --logit-scale 30
    python benchmarks/clip_fit_study.py --positives all --extra-scenes 10500 --out results/clip_all_12k.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from _common import write_results
from diffusion_bridge.clip.encoding import embed_images, embed_texts
from diffusion_bridge.clip.fitting import ClipFitConfig, fit_clip
from diffusion_bridge.corpus.synthetic import SyntheticSpec, render_corpus
from diffusion_bridge.metrics.alignment import centroid_distance, image_to_text_recall
from diffusion_bridge.metrics.attributes import parse_caption
from diffusion_bridge.study.gap import rows_of, same_image_caption_cosine

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def default_fit() -> tuple[str, ClipFitConfig, dict]:
    """The CLIP architecture and fit settings of conf/base, and the default corpus' spec."""
    params = yaml.safe_load((ROOT / "conf/base/parameters_prepare.yml").read_text())["clip"]
    catalog = yaml.safe_load((ROOT / "conf/base/catalog_prepare.yml").read_text())
    config = ClipFitConfig(model_name=params["model_name"], **{**params["fit"], "num_workers": 0})
    return params["model_name"], config, catalog["raw_corpus"]["spec"]


def split(dataset: dict, root: Path, name: str, limit: int | None = None) -> tuple[list, list, list, list, list]:
    """(image paths, image ids, kinds per image, captions, caption owners) of one split."""
    records = [r for r in dataset["images"] if r["split"] == name][:limit]
    paths = [str(root / "images" / r["filepath"] / r["filename"]) for r in records]
    kinds = [{o["kind"] for o in r["scene"]["objects"]} for r in records]
    captions = [s["raw"] for r in records for s in r["sentences"]]
    owners = [r["imgid"] for r in records for _ in r["sentences"]]
    return paths, [r["imgid"] for r in records], kinds, captions, owners


def measure(clip, paths, ids, kinds, captions, owners) -> dict:
    """Kind precision of the retrieved caption (and its chance level), i2t R@10, gap, same-image cosine."""
    image = F.normalize(embed_images(clip, paths, ids, CPU, num_workers=0, progress=False), dim=-1)
    text = F.normalize(embed_texts(clip, captions, CPU, num_workers=0, progress=False), dim=-1)
    said = [parse_caption(c).kinds for c in captions]
    owner = rows_of(torch.tensor(ids), torch.tensor(owners))
    best = (image @ text.T).argmax(1).tolist()
    named = sum(len(said[b]) for b in best)
    right = sum(len(said[b] & kinds[i]) for i, b in enumerate(best))
    chance = sum(len(s & k) for k in kinds for s in said) / (len(kinds) * sum(len(s) for s in said))
    return {"kind_precision": round(right / named, 3), "chance": round(chance, 3),
            "i2t_R@10": round(image_to_text_recall(image, text, owner, ks=(10,))["R@10"], 3),
            "centroid_gap": round(centroid_distance(image, text), 3),
            "same_image_caption_cosine": round(same_image_caption_cosine(text, owner), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logit-scale", type=float, default=None, help="frozen logit scale (default: conf/base)")
    parser.add_argument("--positives", choices=["one", "all"], default=None, help="captions per image per step")
    parser.add_argument("--steps", type=int, default=None, help="fit steps (default: conf/base)")
    parser.add_argument("--extra-scenes", type=int, default=0, help="train scenes rendered beyond the default 1,500")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the float order depends on it)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model_name, config, spec = default_fit()
    changes = {k: v for k, v in {"logit_scale": args.logit_scale, "positives": args.positives,
                                 "steps": args.steps}.items() if v is not None}
    config = dataclasses.replace(config, **changes)
    spec = SyntheticSpec(**{**spec, "n_train": spec["n_train"] + args.extra_scenes})
    with tempfile.TemporaryDirectory(prefix="clip-fit-study-") as folder:
        root = Path(folder) / "corpus"
        dataset = render_corpus(spec, root, workers=args.threads)
        paths, ids, _, captions, owners = split(dataset, root, "train")
        start = time.perf_counter()
        clip = fit_clip(paths, ids, captions, owners, config, CPU, progress=False)
        seconds = time.perf_counter() - start
        results = {"train_images": len(paths), "fit_s": round(seconds, 1), "final_loss": round(clip.info["fit"]["final_loss"], 3),
                   "test": measure(clip, *split(dataset, root, "test")),
                   "train_250": measure(clip, *split(dataset, root, "train", 250))}
    settings = {"model_name": model_name, **dataclasses.asdict(config), "extra_scenes": args.extra_scenes}
    print(json.dumps({"settings": settings, **results}))
    if args.out:
        write_results(args.out, "clip_fit_study", CPU, settings, results)


if __name__ == "__main__":
    main()
