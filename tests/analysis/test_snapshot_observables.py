"""Per-snapshot observables of a trajectory (steps, atom counts, minimum distances, largest force,
finiteness) against hand-built snapshots with known values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from analysis_builders import FLUORITE_RMIN, PAIR_NAMES, PAIRS, fluorite, snapshot

from gnnff_stability.analysis.distances import min_pair_distances, snapshot_observables

COLUMNS = ["step", "natoms", *(f"rmin_{p}" for p in PAIR_NAMES), "fmax_eV_per_A", "finite"]


def test_columns_and_values_of_a_short_trajectory():
    pos, types, cell = fluorite()
    forces = np.zeros_like(pos)
    forces[5] = [3.0, 4.0, 0.0]  # norm 5
    forces[7] = [0.0, 0.0, -4.5]
    # snapshot 2: the crystal scaled by 0.9 (every minimum distance scales with it); snapshot 3: one
    # O atom moved 0.3 Å towards an Hf neighbour.
    moved = pos.copy()
    o = int(np.flatnonzero(types == 2)[0])
    hf_o = np.linalg.norm(pos[types == 1][:, None, :] - pos[o][None, None, :], axis=2).ravel()
    hf = int(np.flatnonzero(types == 1)[np.argmin(hf_o)])
    direction = (pos[hf] - pos[o]) / np.linalg.norm(pos[hf] - pos[o])
    moved[o] = pos[o] + 0.3 * direction
    snaps = [snapshot(0, pos, types, cell, forces=forces),
             snapshot(100, pos * 0.9, types, cell * 0.9),
             snapshot(200, moved, types, cell)]
    obs = snapshot_observables(snaps, pairs=PAIRS, pair_names=PAIR_NAMES)
    assert list(obs.columns) == COLUMNS
    assert obs["step"].tolist() == [0, 100, 200] and obs["natoms"].tolist() == [96, 96, 96]
    for pair, r in FLUORITE_RMIN.items():
        assert obs[f"rmin_{pair}"].iloc[0] == pytest.approx(r, rel=1e-12)
        assert obs[f"rmin_{pair}"].iloc[1] == pytest.approx(0.9 * r, rel=1e-12)
    want = min_pair_distances(moved, types, cell, pairs=PAIRS)
    np.testing.assert_allclose(obs.loc[2, [f"rmin_{p}" for p in PAIR_NAMES]].to_numpy(dtype=float), want,
                               rtol=1e-12)
    assert obs["rmin_HfO"].iloc[2] == pytest.approx(FLUORITE_RMIN["HfO"] - 0.3, rel=1e-12)
    assert obs["fmax_eV_per_A"].tolist() == [5.0, 0.0, 0.0]
    assert obs["finite"].tolist() == [True, True, True]


def test_a_later_snapshot_far_from_the_first_still_gets_its_exact_minima():
    # The previous snapshot's minima seed the search radius; a snapshot whose distances jumped
    # (here, the cell scaled by 3) must still come out exact.
    pos, types, cell = fluorite((1, 1, 1))
    obs = snapshot_observables([snapshot(0, pos, types, cell), snapshot(10, pos * 3.0, types, cell * 3.0),
                                snapshot(20, pos * 0.5, types, cell * 0.5)], pairs=PAIRS, pair_names=PAIR_NAMES)
    for k, scale in enumerate((1.0, 3.0, 0.5)):
        for pair, r in FLUORITE_RMIN.items():
            assert obs[f"rmin_{pair}"].iloc[k] == pytest.approx(scale * r, rel=1e-12)


def test_non_finite_forces_give_infinity_and_missing_forces_nan():
    pos, types, cell = fluorite((1, 1, 1))
    bad = np.zeros_like(pos)
    bad[3, 1] = np.nan
    huge = np.zeros_like(pos)
    huge[2] = [1e200, 1e200, 0.0]  # the norm overflows: not finite
    no_forces = dataclasses.replace(snapshot(30, pos, types, cell), forces=None)
    obs = snapshot_observables([snapshot(0, pos, types, cell, forces=bad), snapshot(10, pos, types, cell, forces=huge),
                                no_forces], pairs=PAIRS, pair_names=PAIR_NAMES)
    assert obs["fmax_eV_per_A"].iloc[0] == np.inf and obs["fmax_eV_per_A"].iloc[1] == np.inf
    assert np.isnan(obs["fmax_eV_per_A"].iloc[2])


def test_non_finite_positions_are_flagged_and_do_not_seed_the_next_search():
    pos, types, cell = fluorite((1, 1, 1))
    broken = pos.copy()
    broken[0, 0] = np.inf
    obs = snapshot_observables([snapshot(0, broken, types, cell), snapshot(10, pos, types, cell)], pairs=PAIRS, pair_names=PAIR_NAMES)
    assert obs["finite"].tolist() == [False, True]
    assert obs.loc[0, [f"rmin_{p}" for p in PAIR_NAMES]].isna().all()
    for pair, r in FLUORITE_RMIN.items():
        assert obs[f"rmin_{pair}"].iloc[1] == pytest.approx(r, rel=1e-12)


def test_an_empty_snapshot_and_an_empty_trajectory():
    obs = snapshot_observables([], pairs=PAIRS, pair_names=PAIR_NAMES)
    assert list(obs.columns) == COLUMNS and obs.empty
    empty = snapshot(0, np.zeros((0, 3)), np.zeros(0, dtype=int), np.eye(3) * 5.0)
    obs = snapshot_observables([empty], pairs=PAIRS, pair_names=PAIR_NAMES)
    assert obs["natoms"].tolist() == [0] and np.isnan(obs["fmax_eV_per_A"].iloc[0])
    assert obs.loc[0, [f"rmin_{p}" for p in PAIR_NAMES]].isna().all()
