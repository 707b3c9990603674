"""Edges of the stability terms and of the minimum-distance search: degenerate values, thresholds,
the thermo-row warnings, non-periodic cells and the search radius growing from a small start."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from analysis_builders import FLUORITE_RMIN, PAIR_NAMES, PAIRS, fluorite, snapshot

from gnnff_stability.analysis.distances import min_pair_distances, snapshot_observables
from gnnff_stability.analysis.stability import (
    pair_ratio_terms,
    s_index,
    sn_table,
    temperature_term,
    ttf_legato_steps,
)


def test_temperature_term_below_one_kelvin_and_a_set_point_below_one():
    assert temperature_term(0.5, 1.0, 1.0) == pytest.approx(2.0)  # 0.5 K is a temperature
    assert temperature_term(0.25, 0.5, 1.0) == pytest.approx(2.0)
    for bad in (0.0, -3.0):
        with pytest.raises(ValueError, match=rf"temp_set_K must be > 0, got {bad}"):
            temperature_term(300.0, bad, 0.25)


def test_pair_ratio_conventions_for_degenerate_distances():
    a = np.array([np.inf, -2.0, 0.0, 2.0, 0.5])
    b = np.array([np.inf, -1.0, 0.0, -1.0, 0.8])
    np.testing.assert_allclose(pair_ratio_terms(a, b), [0.0, 0.0, 0.0, 0.0, 0.625])


def test_s_index_bounds_and_missing_values():
    sn = pd.DataFrame({"n": [1], "s_n": [np.nan]})
    assert s_index(sn, 1) == 0.0  # a NaN score counts as 0
    assert s_index(pd.DataFrame({"n": [1], "s_n": [0.7]}), 1) == pytest.approx(0.7)
    with pytest.raises(ValueError, match=r"n_planned must be > 0, got 0"):
        s_index(pd.DataFrame({"n": [], "s_n": []}), 0)
    with pytest.raises(ValueError, match=r"2 scored snapshots exceed the 1 planned ones"):
        s_index(pd.DataFrame({"n": [1, 2], "s_n": [1.0, 1.0]}), 1)
    with pytest.raises(ValueError, match=r"the start-up window leaves no snapshot: n_skip 3 of 3 planned "
                                         r"\(stability.equil_steps must end before the run\)"):
        s_index(pd.DataFrame({"n": [1], "s_n": [1.0]}), 3, 3)


def test_legato_one_row_and_step_one():
    one = pd.DataFrame({"step": [10], "temp_K": [2000.0]})
    assert ttf_legato_steps(one, 1200.0, 100.0, 50) == 10
    early = pd.DataFrame({"step": [0, 1, 2], "temp_K": [1200.0, 2000.0, 1200.0]})
    assert ttf_legato_steps(early, 1200.0, 100.0, 2) == 1


def test_warnings_count_the_snapshots_without_an_exact_thermo_row(caplog):
    r = {"rmin_HfHf": 3.0, "rmin_HfO": 2.0, "rmin_OO": 2.5}
    obs = pd.DataFrame([{"step": s, "natoms": 4, **r} for s in (0, 10, 20, 30, 40)])
    thermo = pd.DataFrame({"step": [9, 21, 30], "temp_K": [300.0, 300.0, 300.0]})
    with caplog.at_level(logging.WARNING, logger="gnnff_stability.analysis.stability"):
        sn_table(obs, thermo, temp_set_K=300.0, dump_every=10, steps_planned=40, alpha=1.0, beta=1.0,
                 temp_term="raw", pair_names=PAIR_NAMES)
    # 10 and 20 use a row one step away; 40 is ten steps from 30: used as well (within dump_every)
    assert "3 snapshot step(s) have no thermo row; used the nearest row" in caplog.text
    assert "without a temperature" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gnnff_stability.analysis.stability"):
        sn = sn_table(obs, thermo.iloc[2:], temp_set_K=300.0, dump_every=10, steps_planned=40, alpha=1.0,
                      beta=1.0, temp_term="raw", pair_names=PAIR_NAMES)
    assert np.isnan(sn["temp_K"].iloc[0]) and sn["temp_K"].iloc[1] == 300.0  # 20 steps away; 10 steps away
    assert "2 snapshot step(s) have no thermo row" in caplog.text
    assert "1 snapshot(s) without a temperature: their temperature factor is 0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gnnff_stability.analysis.stability"):
        sn_table(obs, pd.DataFrame({"step": [10, 20, 30, 40], "temp_K": 300.0}), temp_set_K=300.0,
                 dump_every=10, steps_planned=40, alpha=1.0, beta=1.0, temp_term="raw", pair_names=PAIR_NAMES)
    assert caplog.text == ""


def _brute(positions, types, a, b):
    best = np.inf
    for i in np.flatnonzero(types == a):
        for j in np.flatnonzero(types == b):
            if i != j:
                best = min(best, float(np.linalg.norm(positions[i] - positions[j])))
    return best if np.isfinite(best) else np.nan


def test_non_periodic_cell_with_atoms_far_outside_it():
    # a 5 Å box, not periodic, atoms up to 61 Å apart along a diagonal: the search must reach past the
    # box and past the largest extent along one axis (40 Å)
    cell = np.eye(3) * 5.0
    positions = np.array([[0.0, 0.0, 0.0], [40.0, 0.0, 0.0], [0.0, 30.0, 0.0], [0.0, 30.0, 35.0]])
    types = np.array([1, 2, 1, 2])
    got = min_pair_distances(positions, types, cell, (False, False, False), pairs=PAIRS)
    want = [_brute(positions, types, a, b) for a, b in ((1, 1), (1, 2), (2, 2))]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.tolist() == pytest.approx([30.0, 35.0, np.hypot(40.0, np.hypot(30.0, 35.0))])


def test_a_lone_atom_of_a_species_in_a_non_periodic_cell_has_no_partner():
    cell = np.eye(3) * 6.0
    got = min_pair_distances(np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 2.5]]), np.array([1, 2]), cell,
                             (False, False, False), pairs=PAIRS)
    assert np.isnan(got[0]) and got[1] == pytest.approx(1.5) and np.isnan(got[2])


def test_only_oxygen_atoms():
    pos, types, cell = fluorite((1, 1, 1))
    oxygen = pos[types == 2]
    got = min_pair_distances(oxygen, np.full(len(oxygen), 2), cell, pairs=PAIRS)
    assert np.isnan(got[0]) and np.isnan(got[1]) and got[2] == pytest.approx(FLUORITE_RMIN["OO"], rel=1e-12)


def test_a_small_start_radius_grows_until_every_pair_is_found():
    pos, types, cell = fluorite((2, 2, 2))
    got = min_pair_distances(pos, types, cell, start_cutoff_A=[0.6, 0.6, 0.6], growth=1.1, pairs=PAIRS)
    np.testing.assert_allclose(got, list(FLUORITE_RMIN.values()), rtol=1e-12)


def test_a_tiny_cell_is_valid():
    cell = np.eye(3) * 0.8  # volume 0.512 Å^3
    got = min_pair_distances(np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0]]), np.array([1, 2]), cell, pairs=PAIRS)
    assert got == pytest.approx([0.8, 0.3, 0.8])


@pytest.mark.parametrize(
    ("positions", "types", "cell", "pbc", "kw", "match"),
    [
        (np.zeros((2, 2)), [1, 2], np.eye(3), (True,) * 3, {}, r"positions must have shape \[N, 3\], got \(2, 2\)"),
        (np.zeros(3), [1], np.eye(3), (True,) * 3, {}, r"positions must have shape \[N, 3\], got \(3,\)"),
        (np.zeros((2, 3)), [1, 2, 2], np.eye(3), (True,) * 3, {}, r"types must have shape \[2\], got \(3,\)"),
        (np.zeros((2, 3)), [1, 2], np.eye(2), (True,) * 3, {}, r"cell must have shape \[3, 3\], got \(2, 2\)"),
        (np.zeros((2, 3)), [1, 2], np.eye(3), (True,) * 2, {}, r"pbc must have 3 entries, got \(2,\)"),
        (np.zeros((2, 3)), [1, 2], np.eye(3), (True,) * 3, {"growth": 1.0}, r"growth must be > 1, got 1.0"),
        (np.zeros((2, 3)), [1, 2], np.diag([1.0, 1.0, 0.0]), (True,) * 3, {},
         r"cell has zero or non-finite volume 0.0"),
        (np.zeros((2, 3)), [1, 2], np.diag([1.0, 1.0, np.inf]), (True,) * 3, {},
         r"cell has zero or non-finite volume"),
    ],
)
def test_bad_input_is_refused(positions, types, cell, pbc, kw, match):
    with pytest.raises(ValueError, match=match):
        min_pair_distances(positions, np.asarray(types), cell, pbc, **kw, pairs=PAIRS)


def test_nan_in_the_minimum_distances_is_the_documented_convention():
    got = min_pair_distances(np.array([[0.0, 0.0, np.nan]]), np.array([1]), np.eye(3), pairs=PAIRS)
    assert all(math.isnan(v) for v in got)


def test_a_one_atom_run_and_a_temperature_below_one_kelvin():
    obs = pd.DataFrame([{"step": s, "natoms": 1, "rmin_HfHf": 3.0, "rmin_HfO": np.nan, "rmin_OO": np.nan}
                        for s in (0, 10)])
    thermo = pd.DataFrame({"step": [10], "temp_K": [0.5]})
    sn = sn_table(obs, thermo, temp_set_K=1.0, dump_every=10, steps_planned=10, n_atoms_initial=1, alpha=1.0,
                  beta=1.0, temp_term="raw", pair_names=PAIR_NAMES)
    assert sn["n"].dtype.kind == "i" and sn["n"].tolist() == [1]
    assert sn["t_ratio_raw"].tolist() == [2.0] and sn["s_n"].tolist() == [2.0]


def test_snapshot_observables_keep_the_snapshot_periodicity():
    # two Hf atoms 9 Å apart in a 10 Å box: 1 Å through the boundary if periodic, 9 Å if not
    cell = np.eye(3) * 10.0
    snaps = [snapshot(0, [[0.5, 5.0, 5.0], [9.5, 5.0, 5.0]], [1, 1], cell, pbc=(False, False, False)),
             snapshot(10, [[0.5, 5.0, 5.0], [9.5, 5.0, 5.0]], [1, 1], cell)]
    obs = snapshot_observables(snaps, pairs=PAIRS, pair_names=PAIR_NAMES)
    assert obs["rmin_HfHf"].tolist() == pytest.approx([9.0, 1.0])


def test_non_periodic_pair_along_the_body_diagonal():
    # each atom's own coordinates are equal (no extent per atom); the pair is 40·√3 Å apart
    got = min_pair_distances(np.array([[0.0, 0.0, 0.0], [40.0, 40.0, 40.0]]), np.array([2, 2]), np.eye(3) * 5.0,
                             (False, False, False), pairs=PAIRS)
    assert got[2] == pytest.approx(40.0 * np.sqrt(3.0), rel=1e-12)
