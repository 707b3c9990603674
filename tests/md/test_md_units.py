"""Unit tests of the MD stage's pure functions: settings, seeds, neighbour list, log parsing, rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matscipy.neighbours import neighbour_list

from gnnff_stability.analysis.dump import THERMO_COLUMNS
from gnnff_stability.md import (
    CrashInfo,
    VerletNeighbourList,
    classify_run,
    lammps_seeds,
    min_distance_A,
    parse_thermo_log,
)
from gnnff_stability.md.outcome import PartialOutputs
from gnnff_stability.settings import MDSettings
from toy_models import fluorite_hfo2, morse_labels
from partial_settings import partial


# --- settings and seeds -------------------------------------------------------------------------


def test_settings_defaults_are_the_paper_protocol():
    s = partial(MDSettings, {})
    assert (s.steps, s.dt_fs, s.dump_every, s.engine) == (40000, 0.25, 100, "embedded")
    assert s.dt_ps == pytest.approx(0.00025)
    assert s.hpc.pair_style == "auto"


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"stepz": 10}, "unknown key 'stepz'"),
        ({"engine": "gpu"}, "md.engine"),
        ({"steps": 0}, "md.steps"),
        ({"dump_every": 100, "thermo_every": 30}, "must divide"),
        ({"temp_fail_factor": 1.0}, "temp_fail_factor"),
        ({"hpc": {"pair_style": "mace"}}, "pair_style"),
        ({"hpc": {"lmpp": "lmp"}}, "md.hpc: unknown key 'lmpp'"),
    ],
)
def test_settings_reject_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        partial(MDSettings, bad)


def test_lammps_seeds_positive_distinct_reproducible():
    a = lammps_seeds(0)
    assert a == lammps_seeds(0)
    assert all(v >= 1 for v in a) and a[0] != a[1]
    assert lammps_seeds(1) != a
    with pytest.raises(ValueError, match="seed"):
        lammps_seeds(-1)


def test_langevin_seeds_are_accepted_by_lammps():
    """fix langevin's Marsaglia generator refuses seeds above 900,000,000 (about 1 in 6 raw draws)."""
    from gnnff_stability._lammps import import_lammps

    raw = {s: np.random.default_rng(s).integers(1, 2**30, size=2) for s in range(40)}
    folded = [s for s, (_, lseed) in raw.items() if lseed > 900_000_000]
    assert 4 in folded
    for s, (vseed, lseed) in raw.items():
        velocity, langevin = lammps_seeds(s)
        assert velocity == vseed and 1 <= langevin <= 900_000_000
        if lseed <= 900_000_000:
            assert langevin == lseed
    lmp = import_lammps().lammps(cmdargs=["-nocite", "-screen", "none", "-log", "none"])
    try:
        lmp.commands_string("units metal\nregion box block 0 5 0 5 0 5\ncreate_box 1 box\n"
                            "create_atoms 1 single 1 1 1\nmass 1 1.0")
        for s in folded:
            lmp.command(f"fix l{s} all langevin 300 300 0.1 {lammps_seeds(s)[1]}")
        with pytest.raises(Exception, match="Invalid seed"):
            lmp.command(f"fix raw all langevin 300 300 0.1 {raw[4][1]}")
    finally:
        lmp.close()


# --- neighbour list ------------------------------------------------------------------------------


def _edge_set(edge_index, shifts):
    return {(int(i), int(j), *map(int, np.rint(s))) for i, j, s in zip(*edge_index, shifts)}


def test_verlet_list_matches_fresh_list_and_rebuilds_only_when_needed():
    atoms = fluorite_hfo2((2, 2, 2))
    cell = np.array(atoms.cell) @ (np.eye(3) + [[0, 0.05, 0], [0, 0, 0.03], [0, 0, 0]])
    atoms.set_cell(cell, scale_atoms=True)
    rng = np.random.default_rng(0)
    nl = VerletNeighbourList(cell, [True] * 3, r_max=4.0, skin=1.0)
    pos = atoms.positions.copy()
    for step in range(30):
        pos = pos + rng.normal(0, 0.04, pos.shape)  # a random walk of ~0.07 Å per step per atom
        if step == 20:
            pos[5] += 2 * cell[0] - cell[2]  # an atom wrapped to another image
        ei, sh = nl(pos)
        i, j, s = neighbour_list("ijS", positions=pos, cell=cell, pbc=[True] * 3, cutoff=4.0)
        assert _edge_set(ei, sh) == _edge_set(np.stack([i, j]), s)
        vec = pos[ei[1]] - pos[ei[0]] + sh @ cell
        assert np.linalg.norm(vec, axis=1).max() < 4.0
    assert 2 <= nl.n_builds < 30
    n_builds = nl.n_builds
    nl(pos, force_rebuild=True)
    assert nl.n_builds == n_builds + 1
    no_skin = VerletNeighbourList(cell, [True] * 3, r_max=4.0, skin=0.0)
    assert _edge_set(*no_skin(pos)) == _edge_set(*nl(pos))


def test_hot_path_uses_nequips_field_names():
    from nequip.data import AtomicDataDict as A

    from gnnff_stability.md import forcefield as f

    assert (f._POS, f._EDGE_INDEX, f._ATOM_TYPES, f._CELL, f._EDGE_SHIFT) == (
        A.POSITIONS_KEY, A.EDGE_INDEX_KEY, A.ATOM_TYPE_KEY, A.CELL_KEY, A.EDGE_CELL_SHIFT_KEY)
    assert (f._TOTAL_ENERGY, f._FORCES) == (A.TOTAL_ENERGY_KEY, A.FORCE_KEY)


# --- log parsing, distances, rules ---------------------------------------------------------------

_LOG = """LAMMPS (22 Jul 2025 - Update 4)
run 20 pre yes post no
   Step          Temp          PotEng         KinEng         TotEng        Atoms        c_fmax
         0   1200           -10.5           14.7           4.2                 96   0.5
        10   1100           -10.0           13.5           3.5                 96   1.5
WARNING: Lost atoms: original 96 current 95 (src/src/thermo.cpp:494)
        20   1000           -9.0            12.2           3.2                 95   2.5
Loop time of 0.1 on 1 procs for 20 steps with 95 atoms
run 10 pre no post no
   Step          Temp          PotEng         KinEng         TotEng        Atoms        c_fmax
        20   1000           -9.0            12.2           3.2                 95   2.5
        30   -nan           nan             inf            nan                 95   3.5
Loop time of 0.1 on 1 procs for 10 steps with 95 atoms
"""


def test_parse_thermo_log_dedups_rows_skips_warnings_keeps_nan(tmp_path):
    path = tmp_path / "log.lammps"
    path.write_text(_LOG)
    df = parse_thermo_log(path)
    assert list(df.columns) == list(THERMO_COLUMNS)
    assert df["step"].tolist() == [0, 10, 20, 30]
    assert df["natoms"].tolist() == [96, 96, 95, 95]
    assert math.isnan(df["temp_K"].iloc[-1]) and math.isinf(df["ke_eV"].iloc[-1])


def _thermo(temps, natoms=96, fmax=1.0):
    n = len(temps)
    return pd.DataFrame({
        "step": np.arange(n) * 10, "temp_K": temps, "pe_eV": np.full(n, -10.0),
        "ke_eV": np.full(n, 1.0), "etotal_eV": np.full(n, -9.0),
        "natoms": np.broadcast_to(natoms, n).astype(int), "fmax_eV_per_A": np.full(n, fmax),
    })


def test_classify_rules_on_synthetic_runs():
    s = partial(MDSettings, {"temp_fail_factor": 1.5, "fmax_crash_eV_per_A": 100.0})
    assert classify_run(_thermo([1000, 1100, 1200]), None, 1000, s, 96).classification == "stable"
    hot = classify_run(_thermo([1000, 2000, 2100]), None, 1000, s, 96)
    assert hot.classification == "fail" and "mean temperature" in hot.reason
    lost = classify_run(_thermo([1000] * 3, natoms=[96, 96, 90]), None, 1000, s, 96)
    assert (lost.classification, lost.crash_step) == ("crash", 20)
    nan = classify_run(_thermo([1000, np.nan, 1000]), None, 1000, s, 96)
    assert (nan.classification, nan.crash_step) == ("crash", 10)
    big = classify_run(_thermo([1000] * 3, fmax=500.0), None, 1000, s, 96)
    assert (big.classification, big.crash_step) == ("crash", 0)
    seen = classify_run(_thermo([1000] * 3), None, 1000, s, 96, crash=CrashInfo(7, "boom"))
    assert (seen.classification, seen.crash_step, seen.reason) == ("crash", 7, "boom")


def _write_dump(path, positions, cell_len, steps=(0, 100)):
    with open(path, "w") as fh:
        for step in steps:
            fh.write(f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(positions)}\n")
            fh.write("ITEM: BOX BOUNDS pp pp pp\n" + f"0 {cell_len}\n" * 3)
            fh.write("ITEM: ATOMS id type x y z fx fy fz\n")
            for k, p in enumerate(positions):
                fh.write(f"{k + 1} {1 + (k % 2)} {p[0]} {p[1]} {p[2]} 0 0 0\n")


def test_min_distance_rule_uses_periodic_images(tmp_path):
    # Two atoms 0.8 Å apart only across the periodic boundary.
    positions = np.array([[0.1, 5.0, 5.0], [9.3, 5.0, 5.0]])
    assert min_distance_A(positions, np.eye(3) * 10, [True] * 3, 2.0) == pytest.approx(0.8)
    assert min_distance_A(positions, np.eye(3) * 10, [False] * 3, 2.0) == math.inf
    dump = tmp_path / "dump.lammpstrj"
    _write_dump(dump, positions, 10.0)
    s = partial(MDSettings, {"rmin_fail_A": 1.0})
    out = classify_run(_thermo([1000] * 3, natoms=2), dump, 1000, s, 2)
    assert out.classification == "fail" and "0.800 A apart at step 0" in out.reason
    s_loose = partial(MDSettings, {"rmin_fail_A": 0.5})
    assert classify_run(_thermo([1000] * 3, natoms=2), dump, 1000, s_loose, 2).classification == (
        "stable"
    )


def test_partial_outputs_appear_only_on_commit(tmp_path):
    finals = {"dump": tmp_path / "a" / "dump.lammpstrj", "status": tmp_path / "a" / "status.json"}
    out = PartialOutputs(finals)
    out["dump"].write_text("x")
    out["status"].write_text("{}")
    assert not finals["dump"].exists() and not finals["status"].exists()
    out.commit()
    assert finals["dump"].read_text() == "x" and finals["status"].exists()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["dump.lammpstrj", "status.json"]


def test_toy_labels_are_forces_of_the_energy():
    atoms = fluorite_hfo2()
    atoms.rattle(0.05, seed=1)
    energy, forces = morse_labels(atoms)
    h = 1e-5
    shifted = atoms.copy()
    shifted.positions[3, 1] += h
    assert (morse_labels(shifted)[0] - energy) / h == pytest.approx(-forces[3, 1], rel=1e-3)
