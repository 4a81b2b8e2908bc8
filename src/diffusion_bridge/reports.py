"""Plain-text summaries of the run's reports, printed at the end of `kedro run`."""

from __future__ import annotations

from typing import Any


def format_gap_report(report: dict[str, Any]) -> str:
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
