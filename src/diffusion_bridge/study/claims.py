"""The paper's claims, checked on this run's test images with paired bootstrap intervals.

A claim says one system beats another on a metric. It **holds** when the 95% interval of the paired
difference lies on the claimed side of zero, is **reversed** when it lies on the other side, and is
**not shown** when it contains zero. The statements are the paper's; every number and verdict is this run's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from diffusion_bridge.study.intervals import Statistic, paired_difference


@dataclass(frozen=True)
class Claim:
    """`better` beats `worse` on `metric` (lower wins when `higher_is_better` is False)."""

    statement: str
    better: str
    worse: str
    metric: str
    higher_is_better: bool = True


def judge(claims: Iterable[Claim], systems: Mapping[str, Mapping[str, Statistic]], indices: Tensor) -> list[dict[str, Any]]:
    """Each claim with the difference better − worse, its interval and the verdict (claims whose systems
    or metric this run lacks are left out)."""
    judged = []
    for claim in claims:
        if claim.metric not in systems.get(claim.better, {}) or claim.metric not in systems.get(claim.worse, {}):
            continue
        difference = paired_difference(systems[claim.better][claim.metric], systems[claim.worse][claim.metric], indices)
        if not difference.defined:
            verdict = "not measurable"  # e.g. no caption mentions a kind, so there is no precision to compare
        elif not difference.excludes_zero():
            verdict = "not shown"
        else:
            verdict = "holds" if (difference.estimate > 0) == claim.higher_is_better else "reversed"
        judged.append({"statement": claim.statement, "better": claim.better, "worse": claim.worse,
                       "metric": claim.metric, **difference.to_dict(), "verdict": verdict})
    return judged


def claims_from_params(entries: Iterable[Mapping[str, Any]]) -> list[Claim]:
    """Claims as the parameters list them: {statement, better, worse, metrics: [...], higher_is_better?}."""
    return [Claim(e["statement"], e["better"], e["worse"], metric, e.get("higher_is_better", True))
            for e in entries for metric in e["metrics"]]


def claim_lines(judged: Iterable[Mapping[str, Any]], scale: Mapping[str, float] | None = None) -> list[str]:
    """One Markdown line per judged claim: verdict, statement, difference and interval."""
    lines = []
    for j in judged:
        if j["verdict"] == "not measurable":
            lines.append(f"- **not measurable** — {j['statement']}: {j['metric']} is undefined on these captions")
            continue
        k = (scale or {}).get(j["metric"], 1.0)
        lines.append(
            f"- **{j['verdict']}** — {j['statement']}: {j['metric']} {j['better']} − {j['worse']} = "
            f"{k * j['estimate']:+.3f} (95% CI {k * j['low']:+.3f} to {k * j['high']:+.3f})"
        )
    return lines
