"""Known answers of the HfO2 cell builders, oxygen removal and the LAMMPS data writer (SiC: test_data_sic.py)."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from gnnff_stability._lammps import import_lammps
from gnnff_stability.data.hfo2 import build_phase, cubic_hfo2, monoclinic_hfo2, remove_oxygen, tetragonal_hfo2
from gnnff_stability.data.structures import build_cell, write_lammps_data
from gnnff_stability.settings import StructureSettings
from partial_settings import partial


def _counts(atoms):
    s = atoms.get_chemical_symbols()
    return s.count("Hf"), s.count("O")


def test_monoclinic_cell_geometry(mono96):
    assert len(mono96) == 96 and _counts(mono96) == (32, 64)
    a, b, c, alpha, beta, gamma = mono96.cell.cellpar()
    np.testing.assert_allclose([a, b, c], [2 * 5.117, 2 * 5.175, 2 * 5.291], atol=1e-9)
    np.testing.assert_allclose([alpha, beta, gamma], [90, 99.22, 90], atol=1e-9)
    # LAMMPS orientation: lower-triangular cell, Hf first
    assert np.allclose(np.triu(mono96.cell.array, 1), 0)
    assert mono96.get_chemical_symbols()[:32] == ["Hf"] * 32
    # baddeleyite: every Hf has 7 O neighbours within 2.5 A, nothing closer than 2.0 A
    i, j, d = neighbor_list("ijd", mono96, 2.5)
    assert d.min() > 2.0
    hf_neigh = np.bincount(i, minlength=96)[:32]
    assert set(hf_neigh.tolist()) == {7}


@pytest.mark.parametrize(
    ("builder", "lengths"),
    [(tetragonal_hfo2, (2 * 3.58 * 2**0.5, 2 * 3.58 * 2**0.5, 2 * 5.20)), (cubic_hfo2, (10.16,) * 3)],
)
def test_tetragonal_and_cubic_have_96_atoms(builder, lengths):
    atoms = builder((2, 2, 2))
    assert _counts(atoms) == (32, 64)
    np.testing.assert_allclose(atoms.cell.lengths(), lengths, atol=1e-9)
    np.testing.assert_allclose(atoms.cell.angles(), 90.0, atol=1e-9)
    # fluorite-like: 8 O around each Hf within 2.6 A
    i = neighbor_list("i", atoms, 2.6)
    assert set(np.bincount(i, minlength=96)[:32].tolist()) == {8}


def test_build_phase_rejects_unknown_phase():
    with pytest.raises(ValueError, match="orthorhombic.*allowed"):
        build_phase("orthorhombic", (2, 2, 2))


@pytest.mark.parametrize(("ratio", "n_o"), [(1.10, 35), (1.55, 50), (2.00, 64)])
def test_remove_oxygen_counts(mono96, ratio, n_o):
    atoms = remove_oxygen(mono96, ratio, seed=0)
    assert _counts(atoms) == (32, n_o)
    assert len(mono96) == 96  # input untouched


def test_remove_oxygen_is_seeded(mono96):
    a = remove_oxygen(mono96, 1.55, seed=3)
    b = remove_oxygen(mono96, 1.55, seed=3)
    c = remove_oxygen(mono96, 1.55, seed=4)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.array_equal(a.positions, c.positions)


@pytest.mark.parametrize("bad", [0.0, 0.01, 2.2, float("nan"), float("inf"), -1.0])
def test_remove_oxygen_refuses_bad_ratios(mono96, bad):
    with pytest.raises(ValueError, match=r"ratio O/Hf.*allowed") as info:
        remove_oxygen(mono96, bad, seed=0)
    assert str(bad) in str(info.value) or f"{bad:g}" in str(info.value)


def test_lammps_data_reads_back_in_lammps(tmp_path, hfo2):
    atoms = remove_oxygen(monoclinic_hfo2((2, 2, 2)), 1.10, seed=0)
    path = write_lammps_data(atoms, tmp_path / "cell.data", hfo2.species, hfo2.masses)
    text = path.read_text()
    assert "2 atom types" in text and "1 178.49 # Hf" in text and "2 15.999 # O" in text
    lmp = import_lammps().lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    try:
        lmp.commands_string(f"units metal\natom_style atomic\natom_modify map array\nread_data {path}")
        assert lmp.get_natoms() == 67
        assert lmp.extract_global("ntypes") == 2
        masses = lmp.numpy.extract_atom("mass")
        np.testing.assert_allclose(masses[1:3], [178.49, 15.999])
        n = lmp.get_natoms()
        x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3), shape=(3 * n,)).reshape(n, 3)
        types = np.ctypeslib.as_array(lmp.gather_atoms("type", 0, 1), shape=(n,))
        boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
        assert lmp.extract_global("triclinic") == 1
        np.testing.assert_allclose(np.subtract(boxhi, boxlo), [10.234, 10.35, 10.445284749113242])
        np.testing.assert_allclose([xy, xz, yz], [0.0, -1.6955089235808687, 0.0], atol=1e-9)
    finally:
        lmp.close()
    np.testing.assert_allclose(x, atoms.positions, atol=1e-9)
    assert types.tolist() == [1] * 32 + [2] * 35


def test_build_cell_writes_matching_files(tmp_path, hfo2):
    atoms = build_cell(1.55, 0, partial(StructureSettings, {"supercell": [2, 2, 2]}), hfo2,
                       tmp_path / "s" / "cell.data", tmp_path / "s" / "cell.xyz")
    from_xyz = ase.io.read(tmp_path / "s" / "cell.xyz")
    from_data = ase.io.read(tmp_path / "s" / "cell.data", format="lammps-data", atom_style="atomic",
                            Z_of_type={1: 72, 2: 8})
    assert _counts(from_xyz) == _counts(from_data) == (32, 50)
    np.testing.assert_allclose(from_xyz.positions, atoms.positions, atol=1e-7)
    np.testing.assert_allclose(from_data.positions, atoms.positions, atol=1e-9)
    np.testing.assert_allclose(from_data.cell.array, from_xyz.cell.array, atol=1e-9)


@pytest.mark.slow
def test_comb_relaxation_reaches_its_force_threshold(tmp_path, hfo2):
    """A small oxygen-deficient cell relaxed with COMB; its forces checked by an independent single point."""
    from gnnff_stability.data.comb import comb_single_point
    from gnnff_stability.settings import CombSettings

    comb = partial(CombSettings, {"label_qeq_tol": 1e-5})
    atoms = build_cell(1.5, 0, partial(StructureSettings, {"supercell": [1, 1, 1], "relax": "comb", "relax_fmax_eV_per_A": 0.1,
                                "relax_max_steps": 200}), hfo2,
                       tmp_path / "cell.data", tmp_path / "cell.xyz", comb=partial(CombSettings, comb))
    assert atoms.info["relax_fmax_start_eV_per_A"] > 0.5  # removing O leaves a strained cell
    assert atoms.info["relax_converged"] and atoms.info["relax_fmax_end_eV_per_A"] <= 0.1
    check = comb_single_point(atoms, label_qeq_tol=1e-5, over_coordination=False)
    assert np.linalg.norm(check.forces, axis=1).max() <= 0.1 + 0.02
    unrelaxed = build_cell(1.5, 0, partial(StructureSettings, {"supercell": [1, 1, 1]}), hfo2, tmp_path / "u.data",
                           tmp_path / "u.xyz")
    np.testing.assert_allclose(atoms.cell.array, unrelaxed.cell.array, atol=1e-9)  # positions only
    assert len(atoms) == len(unrelaxed) == 10
