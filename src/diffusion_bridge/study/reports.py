"""Every report of the study as text: the Markdown files in `08_reporting/` and the summaries printed at the
end of `kedro run`. Formatting only; the numbers and the reading come from `gap`, `alignment` and `captioning`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diffusion_bridge.study.alignment import METRICS, reading, winners
from diffusion_bridge.study.captioning import MAIN_METRICS
from diffusion_bridge.study.representations import CEILING


def gap_summary(report: dict[str, Any]) -> str:
    """The modality-gap table: one row per split."""
    clip = report.get("clip", {})
    lines = [
        f"Modality gap — CLIP {clip.get('model_name', '?')} ({clip.get('source', '?')}), {clip.get('embed_dim', '?')}-d; "
        f"distance of the train modality means: {report['train_mean_distance']:.3f}",
        f"{'split':<6} {'images':>7} {'captions':>9} {'centroid dist':>14} {'matched cos':>12} {'random cos':>11} {'same-image caps':>16}",
    ]
    for split, s in report["splits"].items():
        lines.append(
            f"{split:<6} {s['images']:>7} {s['captions']:>9} {s['centroid_distance']:>14.3f} {s['matched_cosine']:>12.3f} "
            f"{s['random_pair_cosine']:>11.3f} {s['same_image_caption_cosine']:>16.3f}"
        )
    return "\n".join(lines)


def _table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str], first: str) -> list[str]:
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.3f}" if c in values else "–" for c in columns) + " |")
    return lines


def alignment_markdown(report: Mapping[str, Any]) -> str:
    """The Markdown report: main table, t0 sweep, and the reading."""
    results, sweep = report["representations"], report["sweep"]
    columns = list(METRICS)
    lines = [
        "# Alignment of test image representations with the test captions",
        "",
        f"Corpus `{report['corpus']}`, {report['images']} test images, {report['captions']} captions "
        f"(one caption per image is held out as the `{CEILING}` ceiling; all rows are compared with the rest). "
        f"Bridge: t0 = {report['bridge']['t0']}, {report['bridge']['steps']} {report['bridge']['sampler']} steps. "
        "All vectors live in the caption decoder's input space (centred, normalised).",
        "",
        *_table(results, columns, "representation"),
        "",
        f"Fréchet-distance floor (train captions vs test captions): {report['frechet_floor']:.3f}.",
        "",
        "## Insertion step sweep (bridged at t0; t0 = 0 is the mean shift alone)",
        "",
        *_table({f"t0={k}": v for k, v in sweep.items()}, columns, "t0"),
        "",
        "## Reading",
        "",
        *reading(results),
        "",
    ]
    return "\n".join(lines)


def alignment_summary(report: Mapping[str, Any]) -> str:
    """One screen for the end of `kedro run`."""
    results = report["representations"]
    columns = ["centroid_distance", "paired_cosine", "i2t_R@10", "frechet_distance", "probe_accuracy"]
    head = f"{'representation':<16}" + "".join(f"{c:>18}" for c in columns)
    rows = [f"{n:<16}" + "".join(f"{v[c]:>18.3f}" for c in columns) for n, v in results.items()]
    best = winners(results)
    return "\n".join(
        [f"Alignment with test captions (FD floor {report['frechet_floor']:.3f})", head, *rows,
         "closest to text: " + ", ".join(f"{c} → {best[c]}" for c in columns)]
    )


def _row(name: str, values: Mapping[str, float], columns: Sequence[str]) -> str:
    cells = [f"{100 * values[c]:.1f}" if c in values else "–" for c in columns]
    return f"| {name} | " + " | ".join(cells) + " |"


def caption_markdown(report: Mapping[str, Any]) -> str:
    """Tables 2, 4 and 5 of the paper, on this run's corpus, scores ×100 as the paper prints them."""
    columns = [c for c in MAIN_METRICS if any(c in v for v in report["metrics"].values())]
    attr_cols = ("kind_precision", "colour_precision", "count_precision", "position_precision", "hallucination_rate")
    header = "| " + " | ".join(["captions from", *columns]) + " |\n|" + "---|" * (len(columns) + 1)
    lines = [
        "# Zero-shot captioning of the test images",
        "",
        f"Corpus `{report['corpus']}`, {report['images']} test images; decoders trained on text embeddings only.",
        "Each row names the representation fed to the decoder and the decoder's training inputs.",
        "",
        "## Table 2 — representations",
        "",
        header,
        *[_row(f"{name} ({spec['representation']} → {spec['decoder']} decoder)", report["metrics"][name], columns)
          for name, spec in report["evaluations"].items()],
        "",
        "## Table 4 — insertion step t0 (bridging only, text decoder)",
        "",
        header.replace("captions from", "t0"),
        *[_row(f"t0 = {entry['t0']}", entry["metrics"], columns) for entry in report["sweep"]],
        "",
        "## Table 5 — decoder training inputs (bridged test images)",
        "",
        header.replace("captions from", "decoder trained on"),
        *[_row(decoder, report["metrics"][name], columns) for decoder, name in report["table5"].items()],
    ]
    if report.get("attributes"):
        lines += [
            "",
            "## Attribute accuracy against the renderer's ground truth (synthetic corpus)",
            "",
            "| captions from | " + " | ".join(attr_cols) + " |",
            "|" + "---|" * (len(attr_cols) + 1),
            *[f"| {n} | " + " | ".join(f"{v[c]:.3f}" for c in attr_cols) + " |" for n, v in report["attributes"].items()],
        ]
    if report.get("skipped_metrics"):
        lines += ["", f"Not computed: {report['skipped_metrics']}."]
    return "\n".join(lines) + "\n"


def caption_summary(report: Mapping[str, Any]) -> str:
    """The Table 2 rows on one screen, printed at the end of `kedro run`."""
    columns = [c for c in MAIN_METRICS if any(c in v for v in report["metrics"].values())]
    lines = [f"Captioning, {report['images']} test images (scores ×100)", f"{'captions from':<28}" + "".join(f"{c:>9}" for c in columns)]
    for name in report["evaluations"]:
        values = report["metrics"][name]
        lines.append(f"{name:<28}" + "".join(f"{100 * values[c]:>9.1f}" if c in values else f"{'–':>9}" for c in columns))
    return "\n".join(lines)


def node_times_summary(seconds: Mapping[str, float], total: float) -> str:
    """Where the run's minutes went: each node's wall time, slowest first, and the run's total."""
    width = max(len(name) for name in seconds)
    lines = [f"Node wall times (total {total:.1f} s)"]
    lines += [f"  {name:<{width}}  {s:7.1f} s  {100 * s / total:5.1f}%" for name, s in sorted(seconds.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)
