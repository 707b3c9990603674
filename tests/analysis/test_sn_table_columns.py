"""Every column of the per-snapshot table s_n against a hand computation of Eq. 8, the dump-grid and
thermo-row rules, the input checks, and the time-to-failure readings at their boundaries."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from analysis_builders import PAIR_NAMES

from gnnff_stability.analysis.stability import (
    crash_scored_s_index,
    sn_table,
    startup_bias,
    ttf_arena_fraction,
    ttf_legato_steps,
)

RCOLS = [f"rmin_{p}" for p in PAIR_NAMES]
COLUMNS = ["n", "step", "s_n", "n_term", "t_term", "r_term", *(f"r_term_{p}" for p in PAIR_NAMES),
           "t_ratio_raw", *RCOLS, "temp_K", "natoms"]


def _obs(rows):
    """Observables table from ``(step, natoms, (rHfHf, rHfO, rOO))`` rows, in the given order."""
    return pd.DataFrame([{"step": s, "natoms": n, **dict(zip(RCOLS, r))} for s, n, r in rows])


def _ratio(a, b):
    return min(a, b) / max(a, b)


def test_every_column_matches_a_hand_computation():
    # dump_every 10, steps_planned 45: num 4 snapshots at steps 10..40. Rows out of order, one
    # off-grid step (15), one duplicated step (20: the last row counts) and one past the planned end
    # (50) that do not score.
    r0, r1, r2, r3 = (3.0, 2.0, 2.5), (2.7, 2.2, 2.5), (3.3, 2.0, 2.0), (3.0, 1.6, 2.4)
    obs = _obs([(20, 90, (9.9, 9.9, 9.9)), (0, 96, r0), (15, 1, (0.1, 0.1, 0.1)), (10, 96, r1),
                (20, 95, r2), (50, 10, (1.0, 1.0, 1.0)), (30, 94, r3)])
    # thermo rows at 10 (exact), 19 (nearest to 20, 1 step away) and 31 (nearest to 30); 21 is
    # as near to 20 as 19 and comes later, so 19 is the one taken.
    thermo = pd.DataFrame({"step": [0, 10, 19, 21, 31], "temp_K": [1200.0, 1500.0, 1000.0, 7.0, 1320.0]})
    alpha, beta, tset = 2.0, 0.5, 1200.0
    sn = sn_table(obs, thermo, temp_set_K=tset, dump_every=10, steps_planned=45, alpha=alpha, beta=beta,
                  temp_term="raw", pair_names=PAIR_NAMES)
    assert list(sn.columns) == COLUMNS
    assert sn["n"].tolist() == [1, 2, 3] and sn["step"].tolist() == [10, 20, 30]
    assert sn["natoms"].tolist() == [96, 95, 94] and sn["natoms"].dtype == np.int64
    temps = [1500.0, 1000.0, 1320.0]
    np.testing.assert_array_equal(sn["temp_K"], temps)
    np.testing.assert_allclose(sn["t_ratio_raw"], [tset / t for t in temps])
    np.testing.assert_allclose(sn["t_term"], [(tset / t) ** beta for t in temps])
    np.testing.assert_allclose(sn["n_term"], [(n / 96) ** alpha for n in (96, 95, 94)])
    prev, now = [r0, r1, r2], [r1, r2, r3]
    for k, pair in enumerate(PAIR_NAMES):
        np.testing.assert_allclose(sn[f"r_term_{pair}"], [_ratio(a[k], b[k]) for a, b in zip(now, prev)])
        np.testing.assert_array_equal(sn[f"rmin_{pair}"], [r[k] for r in now])
    r_term = [np.prod([_ratio(a[k], b[k]) for k in range(3)]) for a, b in zip(now, prev)]
    np.testing.assert_allclose(sn["r_term"], r_term)
    want = [(n / 96) ** alpha * (tset / t) ** beta * r for n, t, r in zip((96, 95, 94), temps, r_term)]
    np.testing.assert_allclose(sn["s_n"], want, rtol=1e-12)


def test_step_past_the_planned_end_does_not_score_and_the_last_planned_one_does():
    r = (3.0, 2.0, 2.5)
    obs = _obs([(0, 8, r), (100, 8, r), (200, 8, r), (300, 8, r)])
    thermo = pd.DataFrame({"step": [100, 200, 300], "temp_K": [1200.0, 1200.0, 1200.0]})
    sn = sn_table(obs, thermo, temp_set_K=1200.0, dump_every=100, steps_planned=299, alpha=1.0, beta=0.25,
                  temp_term="raw", pair_names=PAIR_NAMES)
    assert sn["step"].tolist() == [100, 200]  # num = 299 // 100 = 2
    sn = sn_table(obs, thermo, temp_set_K=1200.0, dump_every=100, steps_planned=300, alpha=1.0, beta=0.25,
                  temp_term="raw", pair_names=PAIR_NAMES)
    assert sn["step"].tolist() == [100, 200, 300]
    np.testing.assert_allclose(sn["s_n"], 1.0)


def test_explicit_initial_atom_count_and_the_temperature_readings():
    r = (3.0, 2.0, 2.5)
    obs = _obs([(0, 100, r), (5, 80, r), (10, 60, r)])
    thermo = pd.DataFrame({"step": [5, 10], "temp_K": [600.0, 2400.0]})
    kw = {"temp_set_K": 1200.0, "dump_every": 5, "steps_planned": 10, "alpha": 1.0, "beta": 1.0}
    sn = sn_table(obs, thermo, n_atoms_initial=120, temp_term="raw", **kw, pair_names=PAIR_NAMES)
    np.testing.assert_allclose(sn["n_term"], [80 / 120, 60 / 120])
    np.testing.assert_allclose(sn["t_term"], [2.0, 0.5])
    sn = sn_table(obs, thermo, temp_term="symmetric", **kw, pair_names=PAIR_NAMES)
    np.testing.assert_allclose(sn["n_term"], [0.8, 0.6])
    np.testing.assert_allclose(sn["t_term"], [0.5, 0.5])
    np.testing.assert_allclose(sn["t_ratio_raw"], [2.0, 0.5])  # the raw ratio whatever the reading
    sn = sn_table(obs, thermo, temp_term="clip", **kw, pair_names=PAIR_NAMES)
    np.testing.assert_allclose(sn["t_term"], [1.0, 0.5])
    np.testing.assert_allclose(sn["s_n"], [0.8, 0.3])


def test_without_thermo_or_with_bad_temperatures_the_factor_is_zero_and_the_ratio_nan():
    r = (3.0, 2.0, 2.5)
    obs = _obs([(0, 4, r), (1, 4, r), (2, 4, r), (3, 4, r)])
    kw = {"temp_set_K": 300.0, "dump_every": 1, "steps_planned": 3, "alpha": 1.0, "beta": 0.25,
          "temp_term": "raw"}
    for thermo in (None, pd.DataFrame({"step": [], "temp_K": []})):
        sn = sn_table(obs, thermo, **kw, pair_names=PAIR_NAMES)
        np.testing.assert_array_equal(sn["t_term"], 0.0)
        assert sn["temp_K"].isna().all() and sn["t_ratio_raw"].isna().all()
        np.testing.assert_array_equal(sn["s_n"], 0.0)
    thermo = pd.DataFrame({"step": [1, 2, 3], "temp_K": [0.0, np.nan, -5.0]})
    sn = sn_table(obs, thermo, **kw, pair_names=PAIR_NAMES)
    np.testing.assert_array_equal(sn["t_term"], 0.0)
    assert sn["t_ratio_raw"].isna().all()


def test_thermo_row_within_one_dump_interval_is_used_and_a_farther_one_is_not():
    r = (3.0, 2.0, 2.5)
    obs = _obs([(0, 4, r), (10, 4, r), (20, 4, r), (30, 4, r)])
    # 10: the row at 20 is 10 steps away (= dump_every, used); 30: the row at 20 is too, but 30 has
    # its own row. A row 11 steps away is not used.
    kw = {"temp_set_K": 300.0, "dump_every": 10, "steps_planned": 30, "alpha": 1.0, "beta": 1.0,
          "temp_term": "raw"}
    sn = sn_table(obs, pd.DataFrame({"step": [20, 30], "temp_K": [150.0, 600.0]}), **kw, pair_names=PAIR_NAMES)
    np.testing.assert_allclose(sn["temp_K"], [150.0, 150.0, 600.0])
    sn = sn_table(obs, pd.DataFrame({"step": [21], "temp_K": [150.0]}), **kw, pair_names=PAIR_NAMES)
    np.testing.assert_allclose(sn["temp_K"], [np.nan, 150.0, 150.0])
    sn = sn_table(obs, pd.DataFrame({"step": [-1, 41], "temp_K": [150.0, 100.0]}), **kw, pair_names=PAIR_NAMES)
    np.testing.assert_allclose(sn["temp_K"], [np.nan, np.nan, np.nan])


def test_snapshots_missing_inside_the_run_are_named_in_a_warning(caplog):
    r = (3.0, 2.0, 2.5)
    obs = _obs([(0, 4, r), (10, 4, r), (40, 4, r)])
    thermo = pd.DataFrame({"step": [10, 40], "temp_K": [300.0, 300.0]})
    with caplog.at_level(logging.WARNING, logger="gnnff_stability.analysis.stability"):
        sn = sn_table(obs, thermo, temp_set_K=300.0, dump_every=10, steps_planned=50, alpha=1.0, beta=1.0,
                      temp_term="raw", pair_names=PAIR_NAMES)
    assert sn["n"].tolist() == [1, 4]
    assert "missing inside the run (n = [2 3])" in caplog.text
    caplog.clear()
    obs = _obs([(0, 4, r), (10, 4, r), (20, 4, r)])
    with caplog.at_level(logging.WARNING, logger="gnnff_stability.analysis.stability"):
        sn_table(obs, thermo.assign(step=[10, 20]), temp_set_K=300.0, dump_every=10, steps_planned=50,
                 alpha=1.0, beta=1.0, temp_term="raw", pair_names=PAIR_NAMES)
    assert "missing" not in caplog.text


def test_only_the_step_zero_snapshot_gives_an_empty_table_with_the_columns():
    obs = _obs([(0, 4, (3.0, 2.0, 2.5))])
    sn = sn_table(obs, None, temp_set_K=300.0, dump_every=10, steps_planned=10, alpha=1.0, beta=1.0,
                  temp_term="raw", pair_names=PAIR_NAMES)
    assert list(sn.columns) == COLUMNS and len(sn) == 1 - 1
    sn = sn_table(_obs([(5, 4, (3.0, 2.0, 2.5))]), None, temp_set_K=300.0, dump_every=10, steps_planned=10,
                  alpha=1.0, beta=1.0, temp_term="raw", pair_names=PAIR_NAMES)
    assert list(sn.columns) == COLUMNS and sn.empty


@pytest.mark.parametrize(
    ("rows", "kw", "match"),
    [
        ([(10, 4, (3.0, 2.0, 2.5)), (20, 4, (3.0, 2.0, 2.5))], {},
         r"the dump has no step-0 snapshot \(first on-grid step 10\)"),
        ([(0, 4, (3.0, 2.0, 2.5))], {"dump_every": 0}, r"dump_every must be a positive number of steps, got 0"),
        ([(0, 4, (3.0, 2.0, 2.5))], {"steps_planned": 9},
         r"steps_planned \(9\) must be at least dump_every \(10\)"),
        ([(0, 0, (3.0, 2.0, 2.5)), (10, 4, (3.0, 2.0, 2.5))], {}, r"n_atoms_initial must be > 0, got 0"),
        ([(0, 4, (3.0, 2.0, 2.5)), (10, 4, (3.0, 2.0, 2.5))], {"n_atoms_initial": -1},
         r"n_atoms_initial must be > 0, got -1"),
    ],
)
def test_bad_input_is_refused_with_the_value(rows, kw, match):
    args = {"temp_set_K": 300.0, "dump_every": 10, "steps_planned": 20, "alpha": 1.0, "beta": 1.0,
            "temp_term": "raw", **kw}
    with pytest.raises(ValueError, match=match):
        sn_table(_obs(rows), None, **args, pair_names=PAIR_NAMES)


def test_steps_planned_equal_to_dump_every_is_one_snapshot():
    r = (3.0, 2.0, 2.5)
    sn = sn_table(_obs([(0, 4, r), (10, 4, r)]), pd.DataFrame({"step": [10], "temp_K": [300.0]}),
                  temp_set_K=300.0, dump_every=10, steps_planned=10, alpha=1.0, beta=1.0, temp_term="raw", pair_names=PAIR_NAMES)
    assert sn["n"].tolist() == [1] and sn["s_n"].tolist() == [1.0]


def test_legato_time_to_failure_band_edges():
    thermo = pd.DataFrame({"step": [0, 10, 20, 30, 40], "temp_K": [5000.0, 1300.0, 1100.0, 1301.0, 900.0]})
    # step 0 is never a failure; |T - 1200| = 100 is inside a band of 100; 101 is outside
    assert ttf_legato_steps(thermo, 1200.0, 100.0, 40) == 30
    assert ttf_legato_steps(thermo, 1200.0, 101.0, 40) == 40
    assert ttf_legato_steps(thermo, 1200.0, 99.0, 40) == 10
    assert ttf_legato_steps(thermo, 1200.0, 100.0, 30) == 30  # the row at steps_done counts
    assert ttf_legato_steps(thermo, 1200.0, 100.0, 29) == 29
    assert ttf_legato_steps(thermo.assign(temp_K=[1200.0, 1200.0, np.nan, 1200.0, 1200.0]), 1200.0, 100.0,
                            40) == 20
    assert ttf_legato_steps(None, 1200.0, 100.0, 40) == 0
    assert ttf_legato_steps(thermo.iloc[:0], 1200.0, 100.0, 40) == 0
    assert ttf_legato_steps(thermo, 1200.0, 0.5, 40) == 10  # a band narrower than 1 K is a band
    with pytest.raises(ValueError, match=r"ttf_band_K must be > 0, got -1.0"):
        ttf_legato_steps(thermo, 1200.0, -1.0, 40)


def test_arena_fraction_is_clipped_to_zero_and_one():
    assert ttf_arena_fraction(0, 10) == 0.0
    assert ttf_arena_fraction(-5, 10) == 0.0
    assert ttf_arena_fraction(10, 10) == 1.0
    assert ttf_arena_fraction(15, 10) == 1.0
    assert ttf_arena_fraction(3, 4) == 0.75
    assert ttf_arena_fraction(1, 1) == 1.0
    for bad in (0, -4):
        with pytest.raises(ValueError, match=rf"steps_planned must be > 0, got {bad}"):
            ttf_arena_fraction(1, bad)


def test_startup_bias_by_hand():
    # four planned snapshots; a window of 250 steps at dump_every 100 holds n = 1, 2
    sn = pd.DataFrame({"n": [1, 2, 3, 4], "s_n": [1.2, 1.1, 0.9, 0.8], "t_term": [1.3, 1.1, 1.0, 0.9]})
    got = startup_bias(sn, 4, 100, 250)
    want = {"s_all": 1.0, "s_windowed": 0.85, "delta": 0.15, "n_window": 2, "t_term_window_mean": 1.2,
            "t_term_after_mean": 0.95}
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12)
    assert isinstance(got["n_window"], int)
    got = startup_bias(sn, 4, 100, 0)  # no window: nothing inside it
    assert got["n_window"] == 0 and got["delta"] == 0.0 and np.isnan(got["t_term_window_mean"])
    assert got["t_term_after_mean"] == pytest.approx(1.075)
    got = startup_bias(sn.iloc[:2], 4, 100, 250)  # a run that stopped inside the window
    assert np.isnan(got["t_term_after_mean"]) and got["s_windowed"] == 0.0


def test_crash_rules():
    assert crash_scored_s_index(0.4, True, False, "zero") == 0.0
    assert crash_scored_s_index(0.4, False, True, "zero") == 0.0
    assert crash_scored_s_index(0.4, True, True, "partial") == 0.4
    assert crash_scored_s_index(0.4, False, False, "zero") == 0.4
    with pytest.raises(ValueError, match=r"crash_score must be one of \('zero', 'partial'\), got 'half'"):
        crash_scored_s_index(0.4, True, False, "half")
