"""S_index on hand-built trajectories with closed-form answers, and periodic minimum distances."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from analysis_builders import FLUORITE_RMIN, HFO2, PAIR_NAMES, PAIRS, fluorite, snapshot, write_run

from gnnff_stability.analysis.distances import min_pair_distances
from gnnff_stability.analysis.score import score_run
from gnnff_stability.analysis.stability import (
    pair_ratio_terms,
    s_index,
    sn_table,
    startup_bias,
    temperature_term,
    ttf_arena_fraction,
    ttf_legato_steps,
)
from gnnff_stability.settings import StabilitySettings
from partial_settings import partial

SETTINGS = {"alpha": 1.0, "beta": 0.25, "ttf_band_K": 500.0}
STEPS = list(range(0, 1001, 100))  # num = 10 snapshots after step 0


def _score(tmp_path, snaps, temps, **status):
    files = write_run(tmp_path / "run", snaps, temps, **status)
    rec = score_run(files["dump"], files["thermo"], files["status"], None, partial(StabilitySettings, SETTINGS),
                    tmp_path / "stability.json", tmp_path / "sn.csv", material=HFO2)
    return rec, pd.read_csv(tmp_path / "sn.csv")


def test_perfect_crystal_at_set_temperature_scores_one(tmp_path, crystal):
    pos, types, cell = crystal
    snaps = [snapshot(s, pos, types, cell) for s in STEPS]
    rec, sn = _score(tmp_path, snaps, {s: 1200.0 for s in range(0, 1001, 50)})
    assert rec["s_index"] == pytest.approx(1.0)
    for col in ("s_n", "n_term", "t_term", "r_term"):
        np.testing.assert_allclose(sn[col], 1.0)
    assert rec["n_snapshots"] == rec["n_planned"] == 10
    for pair, r in FLUORITE_RMIN.items():
        assert rec[f"rmin_{pair}_A"] == pytest.approx(r)
    assert not rec["crashed"] and not rec["atoms_lost"] and rec["classification"] == "stable"
    assert rec["ttf_legato_steps"] == 1000 and rec["ttf_arena_fraction"] == 1.0
    contract = {"s_index", "s_index_zero", "s_index_partial", "crash_score", "classification",
                "crash_step", "atoms_lost", "crashed", "temp_mean_K",
                "temp_max_K", "fmax_eV_per_A", "rmin_HfHf_A", "rmin_HfO_A", "rmin_OO_A",
                "n_snapshots", "n_planned", "ttf_legato_steps", "ttf_arena_fraction"}
    assert contract <= set(json.loads((tmp_path / "stability.json").read_text()))
    assert list(sn.columns[:6]) == ["n", "step", "s_n", "n_term", "t_term", "r_term"]


def test_removing_atoms_scales_by_the_atom_fraction(tmp_path, crystal):
    pos, types, cell = crystal
    # From snapshot n = 4 on, one O atom is gone (minimum distances of the crystal unchanged).
    snaps = [snapshot(s, pos, types, cell) if s < 400 else snapshot(s, pos[:-1], types[:-1], cell)
             for s in STEPS]
    rec, sn = _score(tmp_path, snaps, {s: 1200.0 for s in STEPS})
    expected = (3 * 1.0 + 7 * (95 / 96)) / 10
    assert rec["s_index_partial"] == pytest.approx(expected)
    # the paper's rule: a run that lost atoms scores 0, even without a crash (Table A1, edge+env 1:1.1)
    assert rec["s_index"] == rec["s_index_zero"] == 0.0 and rec["crash_score"] == "zero"
    assert rec["atoms_lost"] and not rec["crashed"] and rec["n_atoms_final"] == 95
    np.testing.assert_allclose(sn["n_term"], [1.0] * 3 + [95 / 96] * 7)


def test_heating_and_cooling_temperature_term(tmp_path, crystal):
    pos, types, cell = crystal
    snaps = [snapshot(s, pos, types, cell) for s in STEPS]
    temps = {s: (2400.0 if s >= 600 else 1200.0) for s in STEPS}
    rec, sn = _score(tmp_path, snaps, temps)
    assert rec["s_index"] == pytest.approx((5 + 5 * 0.5**0.25) / 10)
    assert rec["temp_max_K"] == 2400.0
    # Allegro-Legato TTF: first thermo step outside 1200 ± 500 K.
    assert rec["ttf_legato_steps"] == 600
    # Readings of the temperature factor at T = T_set / 2.
    assert temperature_term(600.0, 1200.0, 0.25, "symmetric") == pytest.approx(0.5**0.25)
    assert temperature_term(600.0, 1200.0, 0.25, "clip") == pytest.approx(1.0)
    assert temperature_term(600.0, 1200.0, 0.25, "raw") == pytest.approx(2**0.25)
    np.testing.assert_array_equal(temperature_term(np.array([np.inf, np.nan, 0.0]), 1200, 0.25), 0)
    with pytest.raises(ValueError, match="temp_term"):
        temperature_term(1.0, 1200.0, 0.25, "nonsense")


def test_literal_temperature_factor_rewards_a_cold_run_above_one(tmp_path, crystal):
    """The default (raw) reading is the paper's (T_set/T_n)^β: S ≤ 1 no longer holds for cold snapshots."""
    pos, types, cell = crystal
    snaps = [snapshot(s, pos, types, cell) for s in STEPS]
    temps = {s: (600.0 if s >= 600 else 1200.0) for s in STEPS}  # the last five snapshots at T_set / 2
    rec, sn = _score(tmp_path, snaps, temps)
    assert rec["temp_term"] == "raw"
    # (1200 / 600)^(1/4) = 2^(1/4) = 1.18921 at each of the five cold snapshots
    np.testing.assert_allclose(sn["t_term"], [1.0] * 5 + [1.189207115] * 5, rtol=1e-9)
    assert rec["s_index"] == pytest.approx((5 + 5 * 1.189207115) / 10) and rec["s_index"] > 1
    np.testing.assert_allclose(sn["t_ratio_raw"], [1.0] * 5 + [2.0] * 5)
    files = write_run(tmp_path / "sym", snaps, temps)
    sym = score_run(files["dump"], files["thermo"], files["status"], None,
                    partial(StabilitySettings, {**SETTINGS, "temp_term": "symmetric"}), tmp_path / "s2.json", tmp_path / "sn2.csv", material=HFO2)
    assert sym["s_index"] == pytest.approx((5 + 5 * 0.840896415) / 10) and sym["s_index"] <= 1


def test_crash_at_known_step_counts_missing_snapshots_as_zero(tmp_path, crystal):
    pos, types, cell = crystal
    snaps = [snapshot(s, pos, types, cell) for s in STEPS if s <= 500]
    files = write_run(tmp_path / "run", snaps, {s: 1200.0 for s in STEPS if s <= 500},
                      classification="crash", crash_step=560, steps_done=560)
    # The crash left half a snapshot at step 600 in the dump.
    text = files["dump"].read_text()
    extra = text[text.index("ITEM: TIMESTEP\n500"):].replace("TIMESTEP\n500", "TIMESTEP\n600")
    files["dump"].write_text(text + extra[: len(extra) // 2])
    rec = score_run(files["dump"], files["thermo"], files["status"], None,
                    partial(StabilitySettings, {**SETTINGS, "crash_score": "partial"}), tmp_path / "s.json", tmp_path / "sn.csv", material=HFO2)
    assert rec["s_index"] == rec["s_index_partial"] == pytest.approx(5 / 10)
    assert rec["s_index_zero"] == 0.0 and rec["crash_score"] == "partial"
    assert rec["crashed"] and rec["crash_step"] == 560 and rec["dump_truncated"]
    assert rec["n_snapshots"] == 5 and rec["ttf_arena_fraction"] == pytest.approx(0.56)


def test_minimum_distance_change_closed_form(tmp_path, crystal):
    pos, types, cell = crystal
    lam = 0.9  # snapshot n = 3 is the crystal compressed by λ: every r_p scales by λ
    snaps = [snapshot(s, pos * (lam if s == 300 else 1.0), types, cell * (lam if s == 300 else 1.0))
             for s in STEPS]
    rec, sn = _score(tmp_path, snaps, {s: 1200.0 for s in STEPS})
    np.testing.assert_allclose(sn.loc[sn["n"].isin([3, 4]), "r_term"], lam**3)
    assert rec["s_index"] == pytest.approx((8 + 2 * lam**3) / 10)


def test_sn_table_alpha_and_missing_temperature():
    obs = pd.DataFrame({"step": [0, 100, 200], "natoms": [96, 48, 48],
                        "rmin_HfHf": 3.0, "rmin_HfO": 2.0, "rmin_OO": 2.5})
    thermo = pd.DataFrame({"step": [0, 100], "temp_K": [1200.0, 1200.0]})
    sn = sn_table(obs, thermo, temp_set_K=1200, dump_every=100, steps_planned=400, alpha=2.0,
                  beta=0.25, temp_term="symmetric", pair_names=PAIR_NAMES)
    np.testing.assert_allclose(sn["n_term"], [0.25, 0.25])
    np.testing.assert_allclose(sn["t_term"], [1.0, 1.0])  # step 200 uses the row at 100 (nearest)
    assert s_index(sn, 4) == pytest.approx(0.5 / 4)
    far = pd.DataFrame({"step": [0], "temp_K": [1200.0]})
    sn = sn_table(obs, far, temp_set_K=1200, dump_every=100, steps_planned=400, alpha=1.0, beta=0.25,
                  temp_term="symmetric", pair_names=PAIR_NAMES)
    np.testing.assert_allclose(sn["t_term"], [1.0, 0.0])


def test_pair_ratio_conventions():
    r = pair_ratio_terms(np.array([[2.0, np.nan, np.nan, 0.0]]), np.array([[4.0, np.nan, 1.0, 1.0]]))
    np.testing.assert_allclose(r, [[0.5, 1.0, 0.0, 0.0]])


def _brute_force_min(positions, types, cell, a, b, n_img=2):
    best = np.inf
    shifts = np.array(list(itertools.product(range(-n_img, n_img + 1), repeat=3))) @ cell
    for i in np.flatnonzero(types == a):
        for j in np.flatnonzero(types == b):
            d = np.linalg.norm(positions[j] - positions[i] + shifts, axis=1)
            if i == j:
                d = d[d > 1e-12]
            best = min(best, d.min())
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_minimum_distance_matches_brute_force_in_triclinic_cells(seed):
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(4.0, 6.0, 3))
    cell[1, 0], cell[2, 0], cell[2, 1] = rng.uniform(-2.0, 2.0, 3)
    types = rng.integers(1, 3, 7)
    types[:2] = [1, 2]
    positions = rng.uniform(-3.0, 9.0, (7, 3))  # some atoms outside the cell
    got = min_pair_distances(positions, types, cell, pairs=PAIRS)
    want = [_brute_force_min(positions, types, cell, a, b) for a, b in ((1, 1), (1, 2), (2, 2))]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_minimum_distance_across_the_boundary():
    cell = np.array([[10.0, 0, 0], [6.0, 10.0, 0], [0, 0, 10.0]])
    # Atoms near opposite corners: nearest through the tilted boundary.
    positions = np.array([[0.2, 0.1, 0.1], [15.7, 9.9, 9.95], [5.0, 5.0, 5.0]])
    types = np.array([1, 2, 2])
    got = min_pair_distances(positions, types, cell, pairs=PAIRS)
    want = [_brute_force_min(positions, types, cell, a, b) for a, b in ((1, 1), (1, 2), (2, 2))]
    np.testing.assert_allclose(got, want)
    assert got[0] == pytest.approx(10.0)  # a lone Hf sees its own image one lattice vector away
    assert got[1] == pytest.approx(np.linalg.norm([0.2 - 15.7 + 16.0, 0.1 - 9.9 + 10.0, 0.15]))


def test_absent_species_and_non_finite_positions():
    cell = np.eye(3) * 5.0
    got = min_pair_distances(np.array([[0.0, 0, 0], [1.0, 0, 0]]), np.array([1, 1]), cell, pairs=PAIRS)
    assert got[0] == pytest.approx(1.0) and np.isnan(got[1]) and np.isnan(got[2])
    got = min_pair_distances(np.array([[np.nan, 0, 0], [1.0, 0, 0]]), np.array([1, 2]), cell, pairs=PAIRS)
    assert np.all(np.isnan(got))


def test_large_cell_is_searched_in_linear_time():
    pos, types, cell = fluorite((12, 12, 12))  # 20,736 atoms
    got = min_pair_distances(pos, types, cell, pairs=PAIRS)
    np.testing.assert_allclose(got, list(FLUORITE_RMIN.values()), rtol=1e-9)


def test_ttf_helpers():
    thermo = pd.DataFrame({"step": [0, 100, 200, 300], "temp_K": [0.0, 1250.0, np.inf, 1200.0]})
    assert ttf_legato_steps(thermo, 1200.0, 100.0, 300) == 200
    assert ttf_legato_steps(thermo, 1200.0, 100.0, 150) == 150
    assert ttf_arena_fraction(250, 1000) == 0.25
    with pytest.raises(ValueError):
        ttf_legato_steps(thermo, 1200.0, 0.0, 300)


def test_unknown_setting_is_refused(tmp_path, crystal):
    pos, types, cell = crystal
    files = write_run(tmp_path / "run", [snapshot(0, pos, types, cell)], {0: 1200.0})
    with pytest.raises(ValueError, match="unknown key 'gamma'"):
        score_run(files["dump"], files["thermo"], files["status"], None, partial(StabilitySettings, {"gamma": 1}),
                  tmp_path / "s.json", tmp_path / "sn.csv", material=HFO2)
    with pytest.raises(ValueError, match="crash_score.*'half'"):
        score_run(files["dump"], files["thermo"], files["status"], None, partial(StabilitySettings, {"crash_score": "half"}),
                  tmp_path / "s.json", tmp_path / "sn.csv", material=HFO2)


@pytest.mark.parametrize(("row", "crash_step", "lost"), [
    # Table 1 / A4: NequIP baseline (4 layers) at 1:1.55 crashed at step 6698, no atoms lost, S = 0
    ("nequip_base_1.55", 6698, 0),
    # Table 1 / A4: Allegro baseline (3 layers) at 1:1.10 crashed at step 150 and lost atoms, S = 0
    ("allegro_base_1.10", 150, 3),
])
def test_paper_crash_rows_score_zero(tmp_path, crystal, row, crash_step, lost):
    """The paper's 40,000-step protocol (dump every 100): crashed rows score 0, whatever came first."""
    pos, types, cell = crystal
    steps = [s for s in range(0, 40001, 100) if s < crash_step]
    snaps = [snapshot(s, pos, types, cell) for s in steps]
    temps = {s: 1262.0 for s in range(0, crash_step, 10)}  # T > T_set: every reading of τ agrees
    files = write_run(tmp_path / row, snaps, temps, steps_planned=40000, classification="crash",
                      crash_step=crash_step, steps_done=crash_step)
    status = json.loads(files["status"].read_text())
    status["n_atoms_final"] = 96 - lost
    files["status"].write_text(json.dumps(status))
    rec = score_run(files["dump"], files["thermo"], files["status"], None, partial(StabilitySettings, {"alpha": 1, "beta": 0.25}),
                    tmp_path / "s.json", tmp_path / "sn.csv", material=HFO2)
    assert (rec["crashed"], rec["atoms_lost"], rec["crash_step"]) == (True, lost > 0, crash_step)
    assert rec["s_index"] == 0.0 and rec["crash_score"] == "zero"
    # the partial-credit reading keeps what was earned before the crash: (1200/1262)^(1/4) per snapshot
    reached = len(steps) - 1
    assert rec["s_index_partial"] == pytest.approx(reached * (1200 / 1262) ** 0.25 / 400)
    assert rec["n_snapshots"] == reached and rec["n_planned"] == 400


def test_crash_before_the_first_snapshot_scores_zero(tmp_path, crystal):
    pos, types, cell = crystal
    rec, sn = _score(tmp_path, [snapshot(0, pos, types, cell)], {0: 1200.0},
                     classification="crash", crash_step=40, steps_done=40)
    assert rec["s_index"] == 0.0 and rec["n_snapshots"] == 0 and len(sn) == 0
    assert rec["crashed"] and rec["ttf_arena_fraction"] == pytest.approx(0.04)


def test_startup_window_leaves_the_dip_out(tmp_path, crystal):
    """A perfect crystal whose first two snapshots (steps 100, 200) sit at T_set / 2, the rest at
    T_set: the literal factor gives them 2^(1/4) each, so S over every snapshot is
    (8 + 2 x 2^(1/4)) / 10; with stability.equil_steps 200 the mean runs over the eight others: 1."""
    pos, types, cell = crystal
    snaps = [snapshot(s, pos, types, cell) for s in STEPS]
    temps = {s: (600.0 if 0 < s <= 200 else 1200.0) for s in STEPS}
    files = write_run(tmp_path / "run", snaps, temps)
    every = (8 + 2 * 2**0.25) / 10
    rec = score_run(files["dump"], files["thermo"], files["status"], None,
                    partial(StabilitySettings, {**SETTINGS, "equil_steps": 200}), tmp_path / "s.json", tmp_path / "sn.csv", material=HFO2)
    assert rec["s_index"] == pytest.approx(1.0) and rec["equil_steps"] == 200
    assert rec["s_index_all_snapshots"] == pytest.approx(every)
    paper = score_run(files["dump"], files["thermo"], files["status"], None, partial(StabilitySettings, SETTINGS),
                      tmp_path / "p.json", tmp_path / "psn.csv", material=HFO2)
    assert paper["s_index"] == paper["s_index_all_snapshots"] == pytest.approx(every)
    bias = startup_bias(pd.read_csv(tmp_path / "sn.csv"), 10, 100, 200)
    assert bias["n_window"] == 2 and bias["delta"] == pytest.approx(every - 1.0)
    assert bias["t_term_window_mean"] == pytest.approx(2**0.25)
    assert bias["t_term_after_mean"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="start-up window leaves no snapshot"):
        s_index(pd.read_csv(tmp_path / "sn.csv"), 10, 10)
