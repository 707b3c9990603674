"""Partial RDFs and their distances at the edges: one pair of atoms in a box (closed form), the
smallest histograms, bad input, and histograms that are not distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_builders import PAIR_NAMES, PAIRS

from gnnff_stability.analysis.rdf import js_divergence, partial_rdf, rdf_distances

L = 10.0  # Å, cubic cell; periodic images are 10 Å away, beyond every r_max used here


def test_one_hf_one_o_in_a_box_is_the_closed_form():
    """One Hf and one O 2.0 Å apart: g_HfO(bin of 2.0 Å) = 1 / (1 * 1 * V_bin / V); the like pairs
    have no second atom (N_J - 1 = 0) and stay 0."""
    positions = [[1.0, 1.0, 1.0], [1.0, 1.0, 3.0]]
    r, g = partial_rdf(positions, [1, 2], np.eye(3) * L, r_max=4.5, n_bins=9, pairs=PAIRS)
    k = 4  # bin [2.0, 2.5)
    shell = 4 * math.pi / 3 * (2.5**3 - 2.0**3)
    expected = np.zeros((3, 9))
    expected[1, k] = L**3 / shell
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    np.testing.assert_allclose(r, np.arange(9) * 0.5 + 0.25)


def test_two_atoms_of_one_kind_and_a_single_bin():
    """Two O 0.3 Å apart, r_max 0.5 Å, one bin: 2 ordered pairs / (2 * 1 * V_sphere / V)."""
    _, g = partial_rdf([[1.0, 1.0, 1.0], [1.0, 1.0, 1.3]], [2, 2], np.eye(3) * L, r_max=0.5, n_bins=1, pairs=PAIRS)
    assert g.shape == (3, 1)
    assert g[2, 0] == pytest.approx(L**3 / (4 * math.pi / 3 * 0.5**3))
    assert g[0, 0] == 0.0 and g[1, 0] == 0.0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"r_max": 0.0, "n_bins": 5}, "r_max must be > 0 Å, got 0.0"),
    ({"r_max": 3.0, "n_bins": 0}, "n_bins must be a positive integer, got 0"),
    ({"r_max": 3.0, "n_bins": 2.5}, "n_bins must be a positive integer, got 2.5"),
])
def test_bad_histogram_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        partial_rdf([[0, 0, 0], [1, 1, 1]], [1, 2], np.eye(3) * L, **kwargs, pairs=PAIRS)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"positions \[N, 3\] and types \[N\] expected"):
        partial_rdf([[0, 0, 0], [1, 1, 1]], [1, 2, 2], np.eye(3) * L, r_max=3.0, n_bins=3, pairs=PAIRS)
    with pytest.raises(ValueError, match=r"histograms must have the same shape, got \(2,\) and \(3,\)"):
        js_divergence([1, 0], [1, 0, 0])
    with pytest.raises(ValueError, match=r"RDF arrays must both be \[3, n_bins\]"):
        rdf_distances(np.ones((3, 4)), np.ones((3, 5)), pair_names=PAIR_NAMES)
    with pytest.raises(ValueError, match=r"RDF arrays must both be \[3, n_bins\]"):
        rdf_distances(np.ones((2, 4)), np.ones((2, 4)), pair_names=PAIR_NAMES)


def test_js_divergence_closed_forms():
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint: log2(2)
    assert js_divergence([2, 2], [1, 1]) == pytest.approx(0.0)  # same shape after normalising
    # p = (1/2, 1/2), q = (1, 0): 0.5 KL(p||m) + 0.5 KL(q||m), m = (3/4, 1/4)
    expected = 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)) + 0.5 * math.log2(1 / 0.75)
    assert js_divergence([1, 1], [1, 0]) == pytest.approx(expected, rel=1e-12)
    assert js_divergence([1, 1], [3, 0]) == pytest.approx(expected, rel=1e-12)


def test_js_divergence_clips_negative_bins_and_refuses_empty_ones():
    """Negative values (noise around 0) count as 0; an all-zero, negative or non-finite curve gives NaN."""
    assert js_divergence([1, -1], [0, 1]) == pytest.approx(1.0)
    assert js_divergence([0, 1], [1, -1]) == pytest.approx(1.0)
    for bad in ([0, 0], [-1, -2], [np.nan, 1]):
        assert math.isnan(js_divergence(bad, [1, 1]))
        assert math.isnan(js_divergence([1, 1], bad))


def test_rdf_distances_per_pair_and_missing_curves():
    g_run = np.array([[1.0, 0.0], [0.0, 2.0], [np.nan, 1.0]])
    g_ref = np.array([[0.0, 1.0], [0.0, 2.0], [1.0, 1.0]])
    out = rdf_distances(g_run, g_ref, pair_names=PAIR_NAMES)
    assert out["js_HfHf"] == pytest.approx(1.0) and out["js_HfO"] == pytest.approx(0.0)
    assert out["mae_HfHf"] == pytest.approx(1.0) and out["mae_HfO"] == pytest.approx(0.0)
    assert math.isnan(out["js_OO"]) and math.isnan(out["mae_OO"])
    assert math.isnan(out["js_mean"]) and math.isnan(out["mae_mean"])


def test_js_divergence_stays_in_zero_one_under_rounding():
    # near-identical curves: the two KL terms cancel to -6.5e-17 before the clip
    p = np.array([0.828, 0.409, 0.55, 0.028, 0.754, 0.538])
    q = p.copy()
    q[0] += 1e-9
    assert js_divergence(p, q) == 0.0
    # disjoint curves: log2 of the normalised bins sums to 1 + 2e-16 before the clip
    assert js_divergence([0.37, 0.8, 0, 0, 0, 0], [0, 0, 0.22, 0.12, 0.98, 0.02]) == 1.0


def test_js_divergence_of_a_curve_with_an_infinite_bin_is_nan():
    # without the finiteness check the infinite bin would drop out and leave a finite 0.5
    assert math.isnan(js_divergence([np.inf, 1.0], [0.0, 1.0]))
    assert math.isnan(js_divergence([0.0, 1.0], [np.inf, 1.0]))


def test_an_infinite_rdf_value_gives_a_nan_mae():
    g_run = np.array([[np.inf, 1.0], [1.0, 1.0], [1.0, 1.0]])
    out = rdf_distances(g_run, np.ones((3, 2)), pair_names=PAIR_NAMES)
    assert math.isnan(out["mae_HfHf"]) and out["mae_HfO"] == 0.0 and math.isnan(out["mae_mean"])


def test_positions_that_are_not_three_dimensional_are_refused():
    with pytest.raises(ValueError, match=r"positions \[N, 3\] and types \[N\] expected, got \(2, 2\) and \(2,\)"):
        partial_rdf([[0, 0], [1, 1]], [1, 2], np.eye(3) * L, r_max=3.0, n_bins=3, pairs=PAIRS)
