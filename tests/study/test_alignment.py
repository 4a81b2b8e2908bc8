"""The alignment study's bookkeeping: representations, who wins which metric, and the report's reading."""

import pytest
import torch
import torch.nn.functional as F

from diffusion_bridge.metrics.alignment import centroid_distance, frechet_distance
from diffusion_bridge.runs.hooks import ReportHooks
from diffusion_bridge.space import centre, noise_injected
from diffusion_bridge.study.alignment import measure_representations, per_image_statistics, reading, winners
from diffusion_bridge.study.intervals import resample_indices
from diffusion_bridge.study.reports import alignment_markdown, alignment_summary
from diffusion_bridge.study.representations import CEILING, split_off_one_caption


def test_centre_and_noise_injection():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.randn(2000, 64, generator=g) * 3, F.normalize(torch.randn(64, generator=g), dim=-1) * 0.5
    expected = F.normalize(F.normalize(x, dim=-1) - mean, dim=-1)
    torch.testing.assert_close(centre(x, mean), expected)
    noisy = noise_injected(x, mean, 0.016, torch.Generator().manual_seed(1))
    torch.testing.assert_close(noisy.norm(dim=1), torch.ones(2000))
    # the same draw, written out: normalize(normalize(x) − mean + ε), ε ~ N(0, 0.016)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)) * 0.016**0.5
    torch.testing.assert_close(noisy, F.normalize(F.normalize(x, dim=-1) - mean + eps, dim=-1))
    assert eps.norm(dim=1).mean() == pytest.approx((0.016 * 64) ** 0.5, rel=0.05)


def test_split_off_one_caption_keeps_the_first_of_each_image():
    held, rest = split_off_one_caption(torch.tensor([3, 3, 3, 7, 8, 8]))
    assert held.tolist() == [0, 3, 4] and rest.tolist() == [1, 2, 5]


RESULTS = {
    "raw": {"centroid_distance": 0.8, "paired_cosine": 0.1, "frechet_distance": 1.2, "probe_accuracy": 1.0, "i2t_R@10": 0.5},
    "mean_shift": {"centroid_distance": 0.1, "paired_cosine": 0.3, "frechet_distance": 0.5, "probe_accuracy": 0.6, "i2t_R@10": 0.4},
    "bridged": {"centroid_distance": 0.2, "paired_cosine": 0.4, "frechet_distance": 0.2, "probe_accuracy": 0.45, "i2t_R@10": 0.3},
    CEILING: {"centroid_distance": 0.0, "paired_cosine": 0.9, "frechet_distance": 0.0, "probe_accuracy": 0.5, "i2t_R@10": 1.0},
}


def test_winners_follow_each_metrics_direction_and_exclude_the_ceiling():
    best = winners(RESULTS)
    assert best["centroid_distance"] == "mean_shift"  # lower is closer
    assert best["paired_cosine"] == "bridged"  # higher is closer
    assert best["frechet_distance"] == "bridged"
    assert best["probe_accuracy"] == "bridged"  # |0.45 − 0.5| < |0.6 − 0.5|
    assert best["i2t_R@10"] == "raw"  # the report says so, whoever wins


def test_reading_states_wins_and_losses_of_the_bridge():
    lines = reading(RESULTS)
    assert any("**mean_shift** (0.100); bridged: 0.200" in line for line in lines)
    verdict = lines[-1]
    assert verdict.startswith("- bridged vs mean_shift: closer to text on 3 of")
    assert "further on centroid_distance, i2t_R@10" in verdict


def test_a_constant_representation_scores_chance_recall():
    g = torch.Generator().manual_seed(0)
    text = F.normalize(torch.randn(40, 8, generator=g), dim=-1)
    index = torch.arange(40) // 4  # 10 images, 4 captions each
    constant = F.normalize(torch.ones(10, 8), dim=-1)
    result = measure_representations({"constant": constant}, text, index, seed=0)["constant"]
    assert result["i2t_R@1"] == pytest.approx(4 / 40, abs=1e-6)  # any of its 4 captions first, among 40 tied
    assert result["t2i_R@1"] == pytest.approx(1 / 10, abs=1e-6)
    assert result["t2i_R@5"] == pytest.approx(5 / 10, abs=1e-6)


def test_report_and_summary_render_every_representation(capsys):
    report = {
        "corpus": "synthetic", "images": 10, "captions": 40, "bridge": {"t0": 600, "steps": 5, "sampler": "ddim"},
        "frechet_floor": 0.01, "representations": RESULTS, "sweep": {0: RESULTS["mean_shift"], 600: RESULTS["bridged"]},
    }
    markdown = alignment_markdown(report)
    assert "| bridged | 0.200 | 0.400 |" in markdown and "| t0=600 |" in markdown and "## Reading" in markdown
    summary = alignment_summary(report)
    hooks = ReportHooks()
    hooks.before_pipeline_run()
    node = type("Node", (), {"name": "write_alignment_report"})()
    hooks.before_node_run(node)
    hooks.after_node_run(node, outputs={"alignment_summary": summary, "something_else": 1})
    hooks.after_pipeline_run()
    printed = capsys.readouterr().out
    assert "Alignment with test captions" in printed and "bridged" in printed and "something_else" not in printed
    assert "Node wall times" in printed and "write_alignment_report" in printed


def test_resampled_centroid_and_frechet_distances_equal_those_of_the_resampled_sets():
    """The weighted (vectorised) set statistics against the metric on the resample built by copying rows."""
    g = torch.Generator().manual_seed(3)
    n, per_image = 30, 3
    rep, text = torch.randn(n, 8, generator=g), torch.randn(n * per_image, 8, generator=g)
    index = torch.arange(n).repeat_interleave(per_image)[torch.randperm(n * per_image, generator=g)]
    stats = per_image_statistics(rep, text, index, ks=(1,))
    indices = resample_indices(n, 5, seed=4)
    for name, metric in (("centroid_distance", centroid_distance), ("frechet_distance", frechet_distance)):
        # the metrics average float32 unit rows in float32; the weighted form averages them in float64
        assert stats[name].value() == pytest.approx(metric(rep, text), abs=1e-6)
        copied = [metric(rep[row], torch.cat([text[index == i] for i in row.tolist()])) for row in indices]
        torch.testing.assert_close(stats[name].resampled(indices), torch.tensor(copied, dtype=torch.float64),
                                   rtol=0, atol=1e-6)
