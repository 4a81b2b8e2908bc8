"""Every report of the study as text: the Markdown files in `08_reporting/` and the summaries printed at the
end of `kedro run`. Formatting only; the numbers and the reading come from `gap`, `alignment` and `captioning`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diffusion_bridge.study.alignment import METRICS, reading, winners
from diffusion_bridge.study.captioning import MAIN_METRICS
from diffusion_bridge.study.claims import claim_lines
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
    """The Markdown report: main table, t0 sweep, the reading, and the comparisons with their intervals."""
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
        *_ceiling_reading(report),
        "",
    ]
    if report.get("comparisons"):
        boot = report["bootstrap"]
        lines += [
            "## Comparisons with 95% paired bootstrap intervals",
            "",
            f"Over the {boot['images']} test images ({boot['resamples']} resamples): **holds** when the interval of "
            "the difference lies on the claimed side of zero, **reversed** on the other side, **not shown** when it "
            "contains zero. The linear probe has no interval (it would be refitted per resample).",
            "",
            *claim_lines(report["comparisons"]),
            "",
        ]
    return "\n".join(lines)


def _ceiling_reading(report: Mapping[str, Any]) -> list[str]:
    """Why bridged paired cosine can exceed the one-caption ceiling, from this run's numbers."""
    results, evidence = report["representations"], report.get("caption_average")
    if not evidence or "bridged" not in results or CEILING not in results:
        return []
    bridged, ceiling = results["bridged"]["paired_cosine"], results[CEILING]["paired_cosine"]
    relation = "exceeds" if bridged > ceiling else "stays below"
    return [
        f"- Bridged paired cosine ({bridged:.3f}) {relation} the one-caption ceiling ({ceiling:.3f}). An average of "
        f"captions sits closer to each caption than one caption does: here a caption's cosine to another caption "
        f"of its image is {evidence['one_caption']:.3f}, to the mean of its image's other "
        f"{evidence['captions_averaged']:.1f} captions {evidence['mean_of_the_others']:.3f}. The denoiser's "
        "x0-prediction is such an average, a posterior mean E[x0 | x_t], so a bridged embedding can be closer to "
        "every caption than any single caption is, without carrying more about the image."
    ]


def alignment_summary(report: Mapping[str, Any]) -> str:
    """One screen for the end of `kedro run`."""
    results = report["representations"]
    recalls = sorted((m for m in next(iter(results.values())) if m.startswith("i2t_R@")), key=lambda m: int(m[6:]))
    columns = ["centroid_distance", "paired_cosine", *recalls[-1:], "frechet_distance", "probe_accuracy"]
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


ATTRIBUTE_COLUMNS = ("kind_precision", "colour_precision", "count_precision", "position_precision", "hallucination_rate")


def _ceiling_row(report: Mapping[str, Any]) -> str:
    """The evaluation that decodes the ceiling representation (its name is the parameters' choice)."""
    rows = [name for name, spec in report.get("evaluations", {}).items() if spec.get("representation") == CEILING]
    return rows[0] if rows else CEILING


def caption_markdown(report: Mapping[str, Any]) -> str:
    """Tables 2, 4 and 5 of the paper on this run's corpus (scores ×100 as the paper prints them), the attribute
    table, and which of the paper's claims hold here, each with its paired bootstrap interval."""
    columns = [c for c in MAIN_METRICS if any(c in v for v in report["metrics"].values())]
    header = "| " + " | ".join(["captions from", *columns]) + " |\n|" + "---|" * (len(columns) + 1)
    attributes = report.get("attributes", {})
    ceiling_row = _ceiling_row(report)
    ceiling = report["metrics"].get(ceiling_row)
    sweep_columns = columns + (["kind_precision"] if attributes else [])
    sweep_header = "| " + " | ".join(["t0", *sweep_columns]) + " |\n|" + "---|" * (len(sweep_columns) + 1)

    def sweep_row(label: str, metrics: Mapping[str, float], attrs: Mapping[str, float] | None) -> str:
        row = _row(label, metrics, columns)
        return row + (f" {attrs['kind_precision']:.3f} |" if attributes and attrs else "")

    lines = [
        "# Zero-shot captioning of the test images",
        "",
        f"Corpus `{report['corpus']}`, {report['images']} test images; decoders trained on text embeddings only. "
        "Each row names the representation fed to the decoder and the decoder's training inputs. Every row is "
        "scored against the image's captions except one, which is held out: its own embedding is the "
        f"`{ceiling_row}` row, the text ceiling.",
        "",
        "## Table 2 — representations",
        "",
        header,
        *[_row(f"{name} ({spec['representation']} → {spec['decoder']} decoder)", report["metrics"][name], columns)
          for name, spec in report["evaluations"].items()],
        "",
        "## Table 4 — insertion step t0 (bridging only, text decoder)",
        "",
        sweep_header,
        *[sweep_row(f"t0 = {e['t0']}", e["metrics"], attributes.get(f"t0={e['t0']}")) for e in report["sweep"]],
        *([sweep_row(f"{ceiling_row} (ceiling)", ceiling, attributes.get(ceiling_row))] if ceiling else []),
        "",
        "## Table 5 — decoder training inputs (bridged test images)",
        "",
        header.replace("captions from", "decoder trained on"),
        *[_row(decoder, report["metrics"][name], columns) for decoder, name in report["table5"].items()],
        *([_row(f"{ceiling_row} (ceiling)", ceiling, columns)] if ceiling else []),
    ]
    if attributes:
        lines += [
            "",
            "## Attribute accuracy against the renderer's ground truth (synthetic corpus)",
            "",
            "| captions from | " + " | ".join(ATTRIBUTE_COLUMNS) + " |",
            "|" + "---|" * (len(ATTRIBUTE_COLUMNS) + 1),
            *[f"| {n} | " + " | ".join(f"{attributes[n][c]:.3f}" for c in ATTRIBUTE_COLUMNS) + " |"
              for n in report["evaluations"] if n in attributes],
        ]
    if report.get("comparisons"):
        boot = report["bootstrap"]
        lines += [
            "",
            "## Which of the paper's claims hold on this corpus",
            "",
            f"Paired bootstrap over the {boot['images']} test images ({boot['resamples']} resamples, seed {boot['seed']}): "
            "a claim **holds** when the 95% interval of the difference lies on its side of zero, is **reversed** "
            "when it lies on the other side, and is **not shown** when it contains zero. COCO metrics ×100.",
            "",
            *claim_lines(report["comparisons"], {m: 100.0 for m in MAIN_METRICS}),
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
