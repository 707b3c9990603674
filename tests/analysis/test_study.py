"""The hierarchical bootstrap and the method contrast, on hand-built runs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.report.study import contrast_markdown, hierarchical_bootstrap, main, method_contrast


def test_two_groups_of_one_value_give_the_closed_form_distribution():
    """Two groups, one value each (a, b): the bootstrap mean is a, (a+b)/2 or b with probability 1/4,
    1/2, 1/4."""
    rng = np.random.default_rng(1)
    boots = hierarchical_bootstrap(pd.Series([0.0, 1.0]), pd.Series([0, 1]), 20000, rng)
    values, counts = np.unique(boots, return_counts=True)
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(counts / counts.sum(), [0.25, 0.5, 0.25], atol=0.01)


def test_runs_of_one_seed_do_not_shrink_the_interval():
    """Three seeds whose runs agree within a seed: the interval is that of three values, however many
    velocity seeds each has (a flat bootstrap over runs would shrink it with their number)."""
    rng = np.random.default_rng(2)
    seeds = pd.Series(np.repeat([0, 1, 2], 30))
    values = pd.Series(np.repeat([0.0, 0.0, 1.0], 30))
    boots = hierarchical_bootstrap(values, seeds, 5000, rng)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    assert (lo, hi) == (0.0, 1.0)  # all-0 and all-1 draws each have probability 1/27 > 2.5 %
    flat = np.random.default_rng(3).choice(values.to_numpy(), size=(5000, 90)).mean(axis=1)
    assert np.quantile(flat, 0.975) - np.quantile(flat, 0.025) < 0.25


def _a4(rows):
    keys = ("model", "layers", "method", "seed", "vseed", "ratio", "temp_K", "classification", "s_index")
    return pd.DataFrame([dict(zip(keys, r)) | {"family": r[0]} for r in rows])  # presets named as families


def test_contrast_counts_and_differences():
    rows = []
    for seed in range(3):
        for vseed in range(2):
            rows.append(("allegro", 3, "baseline", seed, vseed, 1.55, 1200, "fail", 0.8))
            rows.append(("allegro", 3, "corr", seed, vseed, 1.55, 1200, "stable", 0.9))
    rows.append(("allegro", 3, "corr", 0, 0, 1.10, 1200, "stable", 0.9))  # no baseline there: left out
    rows.append(("allegro", 3, "baseline", 0, 2, 1.55, 1200, float("nan"), float("nan")))  # unscored
    table = method_contrast(_a4(rows), "baseline", "corr")
    assert len(table) == 1
    r = table.iloc[0]
    assert (r.n_baseline, r.seeds_baseline, r.n_corr) == (6, 3, 6)
    assert (r.unstable_baseline, r.unstable_corr, r.d_unstable) == (1.0, 0.0, -1.0)
    assert (r.d_unstable_lo, r.d_unstable_hi) == (-1.0, -1.0)  # no spread: every draw says the same
    assert r.d_s_index == pytest.approx(0.1) and r.d_s_index_lo == pytest.approx(0.1)
    assert "-1.00 [-1.00, -1.00]" in contrast_markdown(table, "baseline", "corr")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'sam' has no runs"):
        method_contrast(_a4([("a", 1, "baseline", 0, 0, 1.1, 1200, "stable", 0.9)]), "baseline", "sam")
    with pytest.raises(SystemExit, match="does not exist"):
        main(["/nonexistent/tableA4.csv", "corr"])
