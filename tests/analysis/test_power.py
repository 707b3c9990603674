"""Power of a study design: Schoenfeld's formula against its closed form, the paired t against the normal
approximation and a simulation, the seeds a target needs, and the command that prints them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gnnff_stability.report.power import (
    design_summary,
    paired_mde,
    paired_power,
    schoenfeld_events,
    schoenfeld_mde,
    seeds_needed,
    share_sd_diff,
    temperature_sd_diff,
)
from gnnff_stability.report.study import main


def test_schoenfeld_matches_the_textbook_number():
    """HR 0.5 at two-sided 5 %, 80 % power, equal arms: 4 (1.95996 + 0.84162)^2 / ln(2)^2 = 65.3 events."""
    assert schoenfeld_events(0.5) == pytest.approx(4 * (1.959964 + 0.841621) ** 2 / math.log(2) ** 2, rel=1e-5)
    assert schoenfeld_events(0.5) == pytest.approx(65.35, abs=0.01)
    for hr in (0.3, 0.5, 0.8):
        assert schoenfeld_mde(schoenfeld_events(hr)) == pytest.approx(hr, rel=1e-9)
    assert math.isnan(schoenfeld_mde(0.0))


def test_paired_mde_tends_to_the_normal_approximation_and_has_its_power():
    sd = 0.3
    n = 4000
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert paired_mde(n, sd) == pytest.approx(z * sd / math.sqrt(n), rel=2e-3)
    assert paired_power(paired_mde(5, sd), 5, sd) == pytest.approx(0.8, abs=1e-8)
    assert paired_power(0.0, 5, sd) == pytest.approx(0.05, abs=1e-12)


def test_paired_mde_by_simulation():
    """20,000 studies of 5 seeds at the minimum detectable difference: the paired t-test rejects in 80 %."""
    rng = np.random.default_rng(11)
    delta = paired_mde(5, 1.0)
    diffs = rng.normal(delta, 1.0, size=(20_000, 5))
    rejected = stats.ttest_1samp(diffs, 0.0, axis=1).pvalue < 0.05
    assert rejected.mean() == pytest.approx(0.8, abs=0.01)


def test_seeds_needed_is_the_smallest_sufficient_number():
    n = seeds_needed(0.2, 0.35)
    assert paired_power(0.2, n, 0.35) >= 0.8 > paired_power(0.2, n - 1, 0.35)
    with pytest.raises(ValueError, match="difference of 0"):
        seeds_needed(0.0, 1.0)


def test_sd_of_a_seed_difference():
    assert share_sd_diff(0.2, 4) == pytest.approx(math.sqrt(2 * 0.2 * 0.8 / 4))
    assert share_sd_diff(0.2, 4, 0.1) == pytest.approx(math.sqrt(2 * 0.16 / 4 + 0.02))
    assert temperature_sd_diff(100.0) == pytest.approx(141.4213562)
    with pytest.raises(ValueError, match="unstable share must lie in"):
        share_sd_diff(1.5, 3)


def test_design_summary_sizes_for_each_target():
    res = design_summary(seeds=10, runs_per_seed=3, event_fraction=0.5, unstable_share=0.5,
                         sd_failure_K=100.0, target_hr=0.5, target_share=0.2, target_K=150.0)
    assert res["events"] == 30.0 and res["mde_hr"] == pytest.approx(schoenfeld_mde(30.0))
    assert res["seeds_for_hr"] == math.ceil(schoenfeld_events(0.5) / 3.0)
    assert res["seeds_for_share"] == seeds_needed(0.2, share_sd_diff(0.5, 3))
    assert res["seeds_for_K"] == seeds_needed(150.0, temperature_sd_diff(100.0))
    with pytest.raises(ValueError, match="no event cannot size"):
        design_summary(seeds=3, runs_per_seed=3, event_fraction=0.0, unstable_share=0.0, target_hr=0.5)
    with pytest.raises(ValueError, match="seeds must be >= 2"):
        design_summary(seeds=1, runs_per_seed=3, event_fraction=0.1, unstable_share=0.1)


def test_the_power_command_prints_the_summary(capsys):
    args = ["--seeds", "3", "--runs-per-seed", "9", "--event-fraction", "0.074", "--sd-failure-K", "100",
            "--target-hr", "0.5", "--target-share", "0.1", "--target-K", "100"]
    assert main(["power", *args]) == 0
    out = capsys.readouterr().out
    res = design_summary(seeds=3, runs_per_seed=9, event_fraction=0.074, unstable_share=0.074,
                         sd_failure_K=100.0, target_hr=0.5, target_share=0.1, target_K=100.0)
    assert f"minimum detectable hazard ratio (Schoenfeld): {res['mde_hr']:.2f}" in out
    assert f"{res['seeds_for_hr']} training seeds per arm" in out
    assert f"difference in unstable share 0.1: {res['seeds_for_share']} training seeds" in out
    with pytest.raises(SystemExit, match="alpha must lie in"):
        main(["power", *args, "--alpha", "2"])


def test_a_pilot_sd_replaces_the_binomial_one(capsys):
    res = design_summary(seeds=3, runs_per_seed=3, event_fraction=0.167, unstable_share=0.167,
                         sd_share_diff=0.192, target_share=0.2)
    assert res["sd_share_diff"] == 0.192 and res["seeds_for_share"] == seeds_needed(0.2, 0.192)
    assert main(["power", "--seeds", "3", "--runs-per-seed", "3", "--event-fraction", "0.167"]) == 0
    assert "none (a difference of 0.99" not in capsys.readouterr().out  # 0.994 <= 1: a number
    assert main(["power", "--seeds", "3", "--runs-per-seed", "3", "--event-fraction", "0.167",
                 "--sd-share-between", "0.3"]) == 0
    assert "none (a difference of 1.70 would be needed" in capsys.readouterr().out
