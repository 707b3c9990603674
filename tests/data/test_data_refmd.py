"""Reference MD: contract dump and thermo.csv; COMB with converged forces from step 0, and a pair style (SiC)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.analysis.dump import THERMO_COLUMNS, DumpReader
from gnnff_stability.md.refmd import run_reference_md
from gnnff_stability.data.structures import write_lammps_data
from gnnff_stability.settings import RefMDSettings
from partial_settings import partial


def read_dump(path):
    """The whole dump in memory: its complete snapshots, and whether it ended inside one."""
    reader = DumpReader(path)
    return list(reader), reader.truncated


SETTINGS = {"steps": 40, "dt_fs": 0.5, "damp_fs": 100.0, "dump_every": 20, "thermo_every": 10,
            "qeq_every": 10, "enabled": True}
COMB_VARIANT = False  # over-coordination correction off, as the reference data


def test_reference_md_writes_contract_files(tmp_path, mono96, mono96_label, hfo2):
    cell = write_lammps_data(mono96, tmp_path / "cell.data", hfo2.species, hfo2.masses)
    summary = run_reference_md(cell, 1200.0, 0, partial(RefMDSettings, SETTINGS), hfo2, COMB_VARIANT,
                               tmp_path / "r" / "dump.lammpstrj", tmp_path / "r" / "thermo.csv")
    thermo = pd.read_csv(tmp_path / "r" / "thermo.csv")
    assert list(thermo.columns) == list(THERMO_COLUMNS)
    assert thermo["step"].tolist() == [0, 10, 20, 30, 40]
    assert (thermo["natoms"] == 96).all()
    assert thermo["temp_K"].iloc[0] == pytest.approx(1200.0, rel=1e-6)
    # the start charges are converged: step 0 is the single point of the ideal cell
    assert thermo["pe_eV"].iloc[0] == pytest.approx(mono96_label.energy, abs=1e-3)
    snaps, truncated = read_dump(tmp_path / "r" / "dump.lammpstrj")
    assert not truncated and [s.step for s in snaps] == [0, 20, 40]
    np.testing.assert_allclose(snaps[0].positions, mono96.positions, atol=1e-6)
    np.testing.assert_allclose(snaps[0].forces, mono96_label.forces, atol=1e-3)
    fmax0 = np.linalg.norm(mono96_label.forces, axis=1).max()
    assert thermo["fmax_eV_per_A"].iloc[0] == pytest.approx(fmax0, abs=1e-3)
    assert summary["steps"] == 40 and summary["n_thermo_rows"] == 5


def test_reference_md_checks_settings(tmp_path, mono96, hfo2):
    cell = write_lammps_data(mono96, tmp_path / "cell.data", hfo2.species, hfo2.masses)
    with pytest.raises(ValueError, match="refmd.qeq_every"):
        run_reference_md(cell, 1200.0, 0, partial(RefMDSettings, {**SETTINGS, "qeq_every": 0}), hfo2, COMB_VARIANT,
                         tmp_path / "d", tmp_path / "t")
    with pytest.raises(ValueError, match="temp_K"):
        run_reference_md(cell, -5.0, 0, partial(RefMDSettings, SETTINGS), hfo2, COMB_VARIANT, tmp_path / "d",
                         tmp_path / "t")


def test_pair_style_reference_md(tmp_path, sic):
    """Tersoff MD of the 64-atom SiC cell: step 0 is the single point of the ideal cell, types follow the species."""
    from gnnff_stability.data.pair_potential import pair_style_single_point
    from gnnff_stability.data.structures import build_crystal

    atoms = build_crystal(sic, (2, 2, 2))
    cell = write_lammps_data(atoms, tmp_path / "cell.data", sic.species, sic.masses)
    summary = run_reference_md(cell, 1500.0, 0, partial(RefMDSettings, SETTINGS), sic, COMB_VARIANT,
                               tmp_path / "r" / "dump.lammpstrj", tmp_path / "r" / "thermo.csv")
    thermo = pd.read_csv(tmp_path / "r" / "thermo.csv")
    assert thermo["step"].tolist() == [0, 10, 20, 30, 40] and (thermo["natoms"] == 64).all()
    energy, forces = pair_style_single_point(atoms, sic)
    assert thermo["pe_eV"].iloc[0] == pytest.approx(energy, abs=1e-6)
    snaps, truncated = read_dump(tmp_path / "r" / "dump.lammpstrj")
    assert not truncated and [s.step for s in snaps] == [0, 20, 40]
    assert snaps[0].types.tolist() == [1] * 32 + [2] * 32
    np.testing.assert_allclose(snaps[0].forces, forces, atol=1e-6)
    assert np.isfinite(thermo[["temp_K", "pe_eV"]].to_numpy()).all() and summary["n_thermo_rows"] == 5
