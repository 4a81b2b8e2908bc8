"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE) computed as `COCOEvalCap` computes them.

Same tokeniser, scorers and order as pycocoevalcap's `COCOEvalCap.evaluate`, but with one JVM for the
PTB tokeniser per evaluation (references and candidates in one call, not two), one METEOR process
(shared by several caption sets with `caption_metrics_many`), no printing, and no network: SPICE runs
only when its Stanford CoreNLP jars are already installed. Without Java, METEOR and SPICE are skipped
and a pure-Python imitation of the PTB tokeniser is used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from diffusion_bridge.errors import InputError

log = logging.getLogger(__name__)

# Exactly the tokens pycocoevalcap's PTBTokenizer drops after tokenising (its PUNCTUATIONS list).
PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# pycocoevalcap replaces only "\n"; PTB also breaks lines at these, which would shift every later caption.
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\u2028\u2029]")
_INSTALL_JAVA = "install a Java runtime (e.g. `apt-get install default-jre-headless`) and rerun"
_warned_no_java = False




def java_available() -> bool:
    """Whether a `java` executable is on PATH (needed by the PTB tokeniser, METEOR and SPICE)."""
    return shutil.which("java") is not None


def _package_dir(name: str) -> Path:
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__))) / name


def spice_available() -> bool:
    """SPICE's CoreNLP jars are present (pycocoevalcap would otherwise download them: we never do)."""
    lib = _package_dir("spice") / "lib"
    return all((lib / f"stanford-corenlp-3.6.0{s}.jar").is_file() for s in ("", "-models"))


# ---------------------------------------------------------------- tokenisation
def ptb_tokenize(sentences: Sequence[str]) -> list[str]:
    """pycocoevalcap's PTBTokenizer on a flat list, in one JVM: lower-cased, punctuation tokens dropped."""
    if not sentences:
        return []
    jar = _package_dir("tokenizer") / "stanford-corenlp-3.4.1.jar"
    text = "\n".join(_LINE_BREAKS.sub(" ", s) for s in sentences)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as handle:
        handle.write(text)
    try:
        cmd = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", handle.name]
        done = subprocess.run(cmd, capture_output=True, check=True)
    finally:
        os.remove(handle.name)
    lines = done.stdout.decode().split("\n")
    if len(lines) != len(sentences):
        raise InputError(
            f"the PTB tokeniser returned {len(lines)} lines for {len(sentences)} captions: a caption holds a "
            "character it reads as a line break; remove control characters from the captions and rerun."
        )
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATION) for line in lines]


_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "{": "-lcb-", "}": "-rcb-", "[": "-lsb-", "]": "-rsb-"}
_SPLIT_WORDS = {"cannot": "can not", "gonna": "gon na", "gotta": "got ta", "wanna": "wan na"}
_ABBREVIATION = re.compile(r"^(?:[a-z]\.){2,}$|^(?:mr|mrs|ms|dr|st|jr|sr|vs|etc|inc|co|no)\.$")
_WORD_PIECE = re.compile(
    r"n't\b|'(?:s|re|ve|ll|m|d)\b"  # clitics, split off as PTB does ("do n't", "dog 's")
    r"|\d+(?:[.,]\d+)+"  # 3.5, 1,000
    r"|@?[^\W_]+(?:[-&][^\W_]+)*(?:\.(?:[a-z]\.)*)?"  # words, t-shirt, at&t, u.s., @home
    r"|\.\.\.|--|[?!]+|[^\s\w]|_"  # punctuation: one token each, runs of ?! as one (PTB keeps "?!")
)


def _python_tokens(sentence: str) -> list[str]:
    tokens: list[str] = []
    for word in sentence.lower().split():
        for piece in _WORD_PIECE.findall(word.replace("n't", " n't").replace("\u2019", "'")):
            if piece.endswith(".") and len(piece) > 1 and not _ABBREVIATION.match(piece):
                tokens += [piece[:-1], "."]
            else:
                tokens.append(_BRACKETS.get(piece, piece))
    tokens = " ".join(_SPLIT_WORDS.get(t, t) for t in tokens).split()
    return [t for t in tokens if t not in PTB_PUNCTUATION and t != '"']


def python_tokenize(sentences: Sequence[str]) -> list[str]:
    """Java-free imitation of the PTB tokeniser as COCO uses it (the fallback when Java is missing).

    Lower-cases; splits off punctuation, clitics (n't 's 're 've 'll 'm 'd) and cannot/gonna; turns
    brackets into -lrb-/-rrb- as PTB's lower-cased output does (COCO then keeps them); keeps
    abbreviations (u.s., mr.), decimals and hyphenated words whole; drops the tokens PTBTokenizer drops
    (. , ; : ? ! ' ` quotes and dashes). Equal to PTB on ordinary captions, not on every corner case.
    """
    return [" ".join(_python_tokens(s)) for s in sentences]


def _warn_no_java() -> None:
    global _warned_no_java
    if not _warned_no_java:
        _warned_no_java = True
        log.warning(
            "Java not found on PATH: METEOR and SPICE are skipped and captions are tokenised by a Python "
            "imitation of the Stanford PTB tokenizer, so BLEU, ROUGE-L and CIDEr may differ slightly from "
            "the official COCO numbers. To get all metrics, %s.", _INSTALL_JAVA,
        )


# ---------------------------------------------------------------- scoring
def _check_pairs(references: Mapping[int, Sequence[str]], candidates: Mapping[int, str]) -> None:
    if not references:
        raise InputError("no images to evaluate: references are empty; pass at least one image.")
    missing = [k for k in references if k not in candidates]
    extra = [k for k in candidates if k not in references]
    if missing or extra:
        raise InputError(
            f"candidates and references must cover the same image ids: no candidate for {missing[:10]}, "
            f"no references for {extra[:10]} ({len(missing)} and {len(extra)} in all); caption every image."
        )
    empty = [k for k, refs in references.items() if len(refs) == 0]
    if empty:
        raise InputError(f"images {empty[:10]} have no reference captions; drop them or add references.")
    for k, caption in candidates.items():
        if not isinstance(caption, str):
            raise InputError(f"the candidate for image {k} is {type(caption).__name__}, not a string.")


@contextmanager
def _meteor_process() -> Iterator[Any]:
    """pycocoevalcap's METEOR scorer (one JVM, ~10 s to load its tables), shut down with its pipes."""
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        yield scorer
    finally:
        process = scorer.meteor_p
        with scorer.lock:
            process.stdin.close()
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()  # Meteor.__del__ later repeats close/kill/wait: all no-ops by then


# Metrics whose corpus score is the mean of per-image scores, so per-image values can be resampled
# (corpus BLEU and METEOR pool n-gram and alignment statistics over the whole corpus first).
PER_IMAGE_METRICS = ("ROUGE_L", "CIDEr")


def caption_metrics_many(references: Mapping[int, Sequence[str]], candidate_sets: Mapping[Hashable, Mapping[int, str]],
                         per_image: bool = False) -> dict[Hashable, dict[str, Any]]:
    """`caption_metrics` for several candidate sets against the same references, sharing the JVMs.

    One PTB tokeniser call for the references and every set, one METEOR process for all sets (its
    start-up dominates: ~10 s, then ~1 s per 1,000 images). Each set's numbers equal a separate
    `caption_metrics` call. With `per_image`, each set also gets `per_image`: {metric: [score of each image,
    in the order of `references`]} for the metrics of PER_IMAGE_METRICS.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if not candidate_sets:
        return {}
    for candidates in candidate_sets.values():
        _check_pairs(references, candidates)
    ids = list(references)
    flat = [c for i in ids for c in references[i]]
    for candidates in candidate_sets.values():
        flat += [candidates[i] for i in ids]
    java = java_available()
    if not java:
        _warn_no_java()
    tokens = iter(ptb_tokenize(flat) if java else python_tokenize(flat))
    gts = {i: [next(tokens) for _ in references[i]] for i in ids}
    res_sets = {name: {i: [next(tokens)] for i in ids} for name in candidate_sets}

    spice = java and spice_available()
    if java and not spice:
        log.info("SPICE skipped: its Stanford CoreNLP jars are not in %s (we never download them).",
                 _package_dir("spice") / "lib")
    results: dict[Hashable, dict[str, Any]] = {}
    with _meteor_process() if java else nullcontext() as meteor:
        for name, res in res_sets.items():
            bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
            scores: dict[str, Any] = {f"Bleu_{n}": float(b) for n, b in enumerate(bleu, start=1)}
            images: dict[str, list[float]] = {}
            if meteor is not None:
                scores["METEOR"] = meteor.compute_score(gts, res)[0]
            scores["ROUGE_L"], images["ROUGE_L"] = Rouge().compute_score(gts, res)
            scores["CIDEr"], images["CIDEr"] = Cider().compute_score(gts, res)
            if spice:
                from pycocoevalcap.spice.spice import Spice

                scores["SPICE"] = float(Spice().compute_score(gts, res)[0])
            scores = {k: float(v) for k, v in scores.items()}
            if per_image:
                scores["per_image"] = {k: [float(x) for x in v] for k, v in images.items()}
            results[name] = scores
    return results


def caption_metrics_status() -> str:
    """Which COCO metrics this machine cannot compute, and why ("" when all of them can)."""
    if not java_available():
        return "METEOR, SPICE (no Java)"
    return "" if spice_available() else "SPICE (its Stanford CoreNLP jars are not installed)"


def caption_metrics(references: Mapping[int, Sequence[str]], candidates: Mapping[int, str]) -> dict[str, float]:
    """COCO metrics of one caption per image against that image's references (scores in [0, 1], CIDEr ~[0, 10]).

    Keys as COCOEvalCap names them: Bleu_1..Bleu_4, METEOR, ROUGE_L, CIDEr, SPICE. Images are scored
    in the order of `references`. For several caption sets, `caption_metrics_many` shares the JVMs.
    """
    return caption_metrics_many(references, {"candidates": candidates})["candidates"]


# ---------------------------------------------------------------- COCO files
def to_coco_results(image_ids: Sequence[int], captions: Sequence[str]) -> list[dict[str, Any]]:
    """The COCO caption results format: `[{"image_id": int, "caption": str}, ...]`."""
    if len(image_ids) != len(captions):
        raise InputError(f"{len(image_ids)} image ids but {len(captions)} captions; pass one caption per image.")
    return [{"image_id": int(i), "caption": str(c)} for i, c in zip(image_ids, captions, strict=True)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def references_from_labels(labels: Mapping[str, Any], source: str, exclude: Collection[int] = ()) -> dict[int, list[str]]:
    """Reference captions per labelled image, in the order of `labels["images"]`, leaving out the annotations
    whose `id` is in `exclude` (the study holds one caption per image out as its text ceiling)."""
    if not isinstance(labels, Mapping) or not isinstance(labels.get("images"), list) \
            or not isinstance(labels.get("annotations"), list):
        raise InputError(
            f"{source}: COCO caption labels need lists 'images' ([{{'id'}}]) and 'annotations' "
            "([{'image_id', 'caption', 'id'}]); regenerate the label file with the prepare pipeline."
        )
    refs: dict[int, list[str]] = {}
    for n, image in enumerate(labels["images"]):
        if not isinstance(image, Mapping) or not _is_int(image.get("id")):
            raise InputError(f"{source}: images[{n}] = {image!r} has no integer 'id'.")
        refs[image["id"]] = []
    for n, ann in enumerate(labels["annotations"]):
        ok = isinstance(ann, Mapping) and _is_int(ann.get("image_id")) and isinstance(ann.get("caption"), str)
        if not ok or ann["image_id"] not in refs:
            raise InputError(
                f"{source}: annotations[{n}] = {ann!r} needs an integer 'image_id' listed in 'images' and "
                "a string 'caption'; regenerate the label file."
            )
        if ann.get("id") not in exclude:
            refs[ann["image_id"]].append(ann["caption"])
    bare = [i for i, r in refs.items() if not r]
    if bare:
        raise InputError(f"{source}: images {bare[:10]} have no annotations; every labelled image needs one.")
    return refs


def validate_coco_results(results: Any, labels: Mapping[str, Any], source: str = "results") -> None:
    """Raise `InputError` unless `results` holds exactly one caption for every labelled image."""
    refs = references_from_labels(labels, "labels")
    if not isinstance(results, list):
        raise InputError(f"{source}: COCO results must be a JSON list of records, got {type(results).__name__}.")
    seen: set[int] = set()
    for n, record in enumerate(results):
        if not isinstance(record, Mapping) or set(record) - {"id"} != {"image_id", "caption"}:
            raise InputError(
                f"{source}: record {n} = {record!r} must be {{'image_id': int, 'caption': str}}; "
                "write it with to_coco_results."
            )
        image_id, caption = record["image_id"], record["caption"]
        if not _is_int(image_id) or not isinstance(caption, str):
            raise InputError(
                f"{source}: record {n} has image_id={image_id!r} ({type(image_id).__name__}) and "
                f"caption of type {type(caption).__name__}; image_id must be an int, caption a string."
            )
        if image_id not in refs:
            raise InputError(f"{source}: record {n} names image_id={image_id}, which the labels do not list.")
        if image_id in seen:
            raise InputError(f"{source}: record {n} is a second caption for image_id={image_id}; keep one.")
        seen.add(image_id)
    missing = [i for i in refs if i not in seen]
    if missing:
        raise InputError(
            f"{source}: no caption for {len(missing)} labelled images (e.g. {missing[:10]}); caption every image."
        )


def _load_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as error:
        raise InputError(f"{path} does not exist; write it first (prepare / caption pipelines).") from error
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON: {error}.") from error


def evaluate_coco_files(labels_json_path: str | os.PathLike, results_json_path: str | os.PathLike) -> dict[str, float]:
    """Metrics of a COCO results file against a COCO-format label file, checked first."""
    labels = _load_json(labels_json_path)
    results = _load_json(results_json_path)
    refs = references_from_labels(labels, str(labels_json_path))
    validate_coco_results(results, labels, str(results_json_path))
    candidates = {r["image_id"]: r["caption"] for r in results}
    return caption_metrics(refs, candidates)
