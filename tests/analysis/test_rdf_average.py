"""A trajectory's RDF is the mean of its snapshots' RDFs over the chosen steps; the comparison files
carry the run's and the reference's curves, each from its own trajectory.

The per-snapshot RDF (``partial_rdf``) is checked against LAMMPS ``compute rdf`` in
test_analysis_rdf.py; here the expected means are taken snapshot by snapshot with it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from analysis_builders import HFO2, PAIRS, fluorite, snapshot

from analysis_builders import write_dump
from gnnff_stability.settings import RDFSettings
from partial_settings import partial
from gnnff_stability.analysis.rdf import (
    average_rdf,
    compute_rdf_comparison,
    partial_rdf,
)

R_MAX, N_BINS = 4.5, 30


def _rattled(step: int, sigma: float, seed: int, pbc=(True, True, True)):
    positions, types, cell = fluorite()
    rng = np.random.default_rng(seed)
    return snapshot(step, positions + rng.normal(0.0, sigma, positions.shape), types, cell, pbc=pbc)


def _g(snap):
    return partial_rdf(snap.positions, snap.types, snap.cell, snap.pbc, r_max=R_MAX, n_bins=N_BINS, pairs=PAIRS)[1]


def _trajectory():
    """Steps 0..400 every 100, each rattled differently; step 250 has a NaN position."""
    snaps = [_rattled(100 * k, 0.04 + 0.03 * k, seed=k) for k in range(5)]
    broken = _rattled(250, 0.1, seed=9)
    broken.positions[3, 0] = np.nan
    return [*snaps[:3], broken, *snaps[3:]]


def test_mean_over_the_steps_in_range_skipping_non_finite_snapshots():
    snaps = _trajectory()
    by_step = {s.step: s for s in snaps}
    r, g, n = average_rdf(snaps, r_max=R_MAX, n_bins=N_BINS, pairs=PAIRS)
    assert n == 5  # all but the NaN snapshot, including the two after it
    np.testing.assert_allclose(g, np.mean([_g(by_step[k]) for k in (0, 100, 200, 300, 400)], axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(r, (np.arange(N_BINS) + 0.5) * R_MAX / N_BINS)

    r, g, n = average_rdf(snaps, r_max=R_MAX, n_bins=N_BINS, start_step=100, stop_step=400, pairs=PAIRS)
    assert n == 3  # 100, 200, 300; 250 skipped, 400 is the stop step
    np.testing.assert_allclose(g, np.mean([_g(by_step[k]) for k in (100, 200, 300)], axis=0), rtol=1e-12)


def test_each_snapshots_periodicity_is_used():
    """A cluster (no periodic images) has fewer neighbours at long range than the crystal."""
    snap = _rattled(0, 0.05, seed=1, pbc=(False, False, False))
    _, g, n = average_rdf([snap], r_max=R_MAX, n_bins=N_BINS, pairs=PAIRS)
    assert n == 1
    np.testing.assert_allclose(g, _g(snap), rtol=1e-12)
    periodic = _g(_rattled(0, 0.05, seed=1))
    assert g.sum() < 0.9 * periodic.sum()


def test_no_snapshot_in_range_gives_nan_curves_on_the_bin_centres():
    r, g, n = average_rdf([_rattled(0, 0.05, seed=1)], r_max=R_MAX, n_bins=N_BINS, start_step=50, pairs=PAIRS)
    assert n == 0 and g.shape == (3, N_BINS) and np.isnan(g).all()
    np.testing.assert_allclose(r, (np.arange(N_BINS) + 0.5) * R_MAX / N_BINS)


def test_comparison_files_hold_both_curves_and_the_counts(tmp_path):
    run = _trajectory()
    ref = [_rattled(100 * k, 0.02, seed=100 + k) for k in range(3)]
    write_dump(tmp_path / "run.lammpstrj", run)
    write_dump(tmp_path / "ref.lammpstrj", ref)
    (tmp_path / "status.json").write_text(json.dumps({"crash_step": 300}))
    out = tmp_path / "deep" / "er"
    metrics = compute_rdf_comparison(tmp_path / "run.lammpstrj", tmp_path / "ref.lammpstrj",
                                     out / "rdf.csv", tmp_path / "m" / "n" / "metrics.json",
                                     partial(RDFSettings, {"r_max": R_MAX, "n_bins": N_BINS}), status=tmp_path / "status.json",
                                     start_step=100, material=HFO2)
    table = pd.read_csv(out / "rdf.csv")
    g_run = np.mean([_g(s) for s in run if s.step in (100, 200)], axis=0)  # before the crash step
    g_ref = np.mean([_g(s) for s in ref if s.step >= 100], axis=0)  # the reference has no crash
    for k, name in enumerate(["HfHf", "HfO", "OO"]):
        np.testing.assert_allclose(table[f"g_{name}"], g_run[k], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(table[f"g_{name}_ref"], g_ref[k], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(table["r_A"], (np.arange(N_BINS) + 0.5) * R_MAX / N_BINS)
    on_disk = json.loads((tmp_path / "m" / "n" / "metrics.json").read_text())
    assert on_disk == metrics
    assert (metrics["n_snapshots"], metrics["n_snapshots_ref"], metrics["stop_step"]) == (2, 2, 300)
    assert (metrics["r_max_A"], metrics["n_bins"]) == (R_MAX, N_BINS)
    assert metrics["mae_mean"] == pytest.approx(np.mean(np.abs(g_run - g_ref)), rel=1e-9)
    assert 0 < metrics["js_mean"] < 1


def test_without_a_status_file_every_snapshot_counts(tmp_path):
    run = [_rattled(100 * k, 0.05, seed=k) for k in range(3)]
    write_dump(tmp_path / "run.lammpstrj", run)
    metrics = compute_rdf_comparison(tmp_path / "run.lammpstrj", tmp_path / "run.lammpstrj",
                                     tmp_path / "rdf.csv", tmp_path / "m.json",
                                     partial(RDFSettings, {"r_max": R_MAX, "n_bins": N_BINS}), status=tmp_path / "absent.json", material=HFO2)
    assert (metrics["n_snapshots"], metrics["n_snapshots_ref"], metrics["stop_step"]) == (3, 3, None)
    assert metrics["js_mean"] == pytest.approx(0.0, abs=1e-12)


def test_a_run_without_a_usable_snapshot_writes_nulls(tmp_path):
    """Every snapshot of the run non-finite (and a status without a crash step): the run's curves are NaN
    in the CSV and its distances null in the JSON, which stays strict JSON."""
    broken = [_rattled(100 * k, 0.05, seed=k) for k in range(2)]
    for snap in broken:
        snap.positions[0, 0] = np.nan
    ref = [_rattled(100 * k, 0.05, seed=k) for k in range(2)]
    write_dump(tmp_path / "run.lammpstrj", broken)
    write_dump(tmp_path / "ref.lammpstrj", ref)
    (tmp_path / "status.json").write_text(json.dumps({"crash_step": None}))
    metrics = compute_rdf_comparison(tmp_path / "run.lammpstrj", tmp_path / "ref.lammpstrj",
                                     tmp_path / "rdf.csv", tmp_path / "m.json",
                                     partial(RDFSettings, {"r_max": R_MAX, "n_bins": N_BINS}), status=tmp_path / "status.json", material=HFO2)
    assert (metrics["n_snapshots"], metrics["n_snapshots_ref"], metrics["stop_step"]) == (0, 2, None)
    assert metrics["js_mean"] is None and metrics["mae_mean"] is None
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and json.loads(text)["js_mean"] is None
    table = pd.read_csv(tmp_path / "rdf.csv")
    assert table["g_OO"].isna().all() and table["g_OO_ref"].notna().all()
