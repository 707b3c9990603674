"""Dump and thermo parsing: LAMMPS-written triclinic dumps, truncated files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_builders import HFO2, fluorite, snapshot, write_dump

from gnnff_stability.analysis.dump import (
    DumpReader,
    lammps_box_to_cell,
    read_thermo,
)


def read_dump(path):
    """The whole dump in memory: its complete snapshots, and whether it ended inside one."""
    reader = DumpReader(path)
    return list(reader), reader.truncated


def _triclinic_atoms():
    from ase import Atoms

    pos, types, cell = fluorite()
    sheared = cell.copy()
    sheared[1, 0], sheared[2, 0], sheared[2, 1] = 1.3, -0.7, 0.9
    frac = np.linalg.solve(cell.T, pos.T).T
    atoms = Atoms(["Hf" if t == 1 else "O" for t in types], scaled_positions=frac, cell=sheared,
                  pbc=True)
    atoms.rattle(0.05, seed=1)
    return atoms


def test_lammps_written_triclinic_dump_matches_the_structure(tmp_path):
    """LAMMPS itself writes the dump (contract format); the parser recovers cell and positions."""
    import ase.io

    from gnnff_stability._lammps import import_lammps

    atoms = _triclinic_atoms()
    data = tmp_path / "cell.data"
    ase.io.write(data, atoms, format="lammps-data", specorder=["Hf", "O"], masses=True,
                 atom_style="atomic")
    lmp = import_lammps().lammps(cmdargs=["-log", "none", "-screen", "none"])
    try:
        lmp.commands_string(f"""
            units metal
            atom_style atomic
            boundary p p p
            read_data {data}
            pair_style lj/cut 3.0
            pair_coeff * * 0.01 1.8
            dump d all custom 1 {tmp_path / 'dump.lammpstrj'} id type x y z fx fy fz
            dump_modify d sort id format float %.10g
            run 0
        """)
        forces = np.array(lmp.numpy.extract_atom("f")[: len(atoms)])
        ids = np.array(lmp.numpy.extract_atom("id")[: len(atoms)])
    finally:
        lmp.close()
    snaps, truncated = read_dump(tmp_path / "dump.lammpstrj")
    assert not truncated and len(snaps) == 1
    snap = snaps[0]
    assert snap.step == 0
    np.testing.assert_allclose(snap.cell, atoms.cell.array, atol=1e-9)
    # LAMMPS wraps atoms into its box: compare modulo lattice vectors.
    frac = np.linalg.solve(atoms.cell.array.T, (snap.positions - atoms.positions).T).T
    np.testing.assert_allclose(frac - np.round(frac), 0.0, atol=1e-8)
    np.testing.assert_array_equal(snap.types, [1 if s == "Hf" else 2 for s in atoms.symbols])
    order = np.argsort(ids)
    np.testing.assert_allclose(snap.forces, forces[order], rtol=1e-8, atol=1e-12)
    assert snap.symbols(HFO2.species)[:1] == ["Hf"] and snap.to_atoms(HFO2.species).get_chemical_formula() == "Hf32O64"


def test_box_conversion_inverts_the_bounding_box():
    cell, origin = lammps_box_to_cell(np.array([[-2.0, 12.0], [0.5, 11.0], [1.0, 9.0]]),
                                      (1.5, -2.0, 0.5))
    # xlo = -2 - min(0, 1.5, -2, -0.5) = 0; xhi = 12 - max(0, 1.5, -2, -0.5) = 10.5
    np.testing.assert_allclose(origin, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(cell, [[10.5, 0, 0], [1.5, 10.0, 0], [-2.0, 0.5, 8.0]])


def _three_snapshot_dump(path):
    pos, types, cell = fluorite((1, 1, 1))
    cell = cell.copy()
    cell[1, 0] = 0.4
    write_dump(path, [snapshot(s, pos, types, cell) for s in (0, 100, 200)])
    return path.read_text()


@pytest.mark.parametrize("cut", ["inside_atoms", "mid_line", "inside_header", "after_timestep"])
def test_truncated_last_snapshot_is_dropped_and_flagged(tmp_path, cut):
    full = _three_snapshot_dump(tmp_path / "full.lammpstrj")
    third = full.index("ITEM: TIMESTEP\n200")
    where = {
        "inside_atoms": full.index("ITEM: ATOMS", third) + 200,
        "mid_line": len(full) - 7,
        "inside_header": full.index("ITEM: BOX BOUNDS", third) + 30,
        "after_timestep": third + len("ITEM: TIMESTEP\n200\n"),
    }[cut]
    path = tmp_path / "cut.lammpstrj"
    path.write_text(full[:where])
    reader = DumpReader(path)
    steps = [s.step for s in reader]
    assert steps == [0, 100]
    assert reader.truncated and reader.n_complete == 2


def test_complete_dump_is_not_flagged(tmp_path):
    _three_snapshot_dump(tmp_path / "full.lammpstrj")
    snaps, truncated = read_dump(tmp_path / "full.lammpstrj")
    assert [s.step for s in snaps] == [0, 100, 200] and not truncated
    np.testing.assert_allclose(snaps[1].cell[1, 0], 0.4)


def test_corrupt_middle_snapshot_is_an_error(tmp_path):
    full = _three_snapshot_dump(tmp_path / "full.lammpstrj")
    lines = full.splitlines(keepends=True)
    k = lines.index("ITEM: TIMESTEP\n", 5) + 12  # an atom line of the second snapshot
    lines[k] = "1 1 0.5\n"
    (tmp_path / "bad.lammpstrj").write_text("".join(lines))
    with pytest.raises(ValueError, match="malformed atom line"):
        list(DumpReader(tmp_path / "bad.lammpstrj"))


def test_unsorted_ids_scaled_columns_and_nan(tmp_path):
    text = (
        "ITEM: TIMESTEP\n5\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n"
        "0 10\n0 10\n0 10\nITEM: ATOMS id type xs ys zs fx fy fz\n"
        "2 2 0.5 0.5 0.5 nan 0 0\n1 1 0.1 0.2 0.3 1 2 3\n"
    )
    (tmp_path / "d.lammpstrj").write_text(text)
    (snap,), truncated = read_dump(tmp_path / "d.lammpstrj")
    assert not truncated
    np.testing.assert_array_equal(snap.ids, [1, 2])
    np.testing.assert_allclose(snap.positions, [[1, 2, 3], [5, 5, 5]])
    assert np.isnan(snap.forces[1, 0]) and snap.forces[0, 2] == 3


def test_read_thermo_sorts_and_validates(tmp_path):
    pd.DataFrame({"step": [100, 0, 100], "temp_K": [1250.0, 1200.0, 1260.0]}).to_csv(
        tmp_path / "t.csv", index=False)
    df = read_thermo(tmp_path / "t.csv")
    assert df["step"].tolist() == [0, 100] and df["temp_K"].tolist() == [1200.0, 1260.0]
    pd.DataFrame({"step": [0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="temp_K"):
        read_thermo(tmp_path / "bad.csv")
