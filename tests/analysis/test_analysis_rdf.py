"""Partial RDFs agree with LAMMPS ``compute rdf``; distances between RDFs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from analysis_builders import HFO2, PAIR_NAMES, PAIRS, fluorite, snapshot, write_dump

from gnnff_stability.analysis.rdf import compute_rdf_comparison, js_divergence, partial_rdf, rdf_distances
from gnnff_stability.settings import RDFSettings
from partial_settings import partial


def _lammps_rdf(data_file, n_bins, r_max):
    from gnnff_stability._lammps import import_lammps

    lammps = import_lammps()
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none"])
    try:
        lmp.commands_string(f"""
            units metal
            atom_style atomic
            boundary p p p
            read_data {data_file}
            pair_style zero {r_max + 0.5}
            pair_coeff * *
            compute r all rdf {n_bins} 1 1 1 2 2 2 cutoff {r_max}
            fix f all ave/time 1 1 1 c_r[*] mode vector
            run 0
        """)
        return np.array(lmp.numpy.extract_compute("r", lammps.LMP_STYLE_GLOBAL,
                                                  lammps.LMP_TYPE_ARRAY))
    finally:
        lmp.close()


@pytest.mark.parametrize("triclinic", [False, True])
def test_partial_rdf_matches_lammps_compute_rdf(tmp_path, triclinic):
    import ase.io
    from ase import Atoms

    pos, types, cell = fluorite()
    frac = np.linalg.solve(cell.T, pos.T).T
    if triclinic:
        cell = cell.copy()
        cell[1, 0], cell[2, 0], cell[2, 1] = 1.3, -0.7, 0.9
    atoms = Atoms(["Hf" if t == 1 else "O" for t in types], scaled_positions=frac, cell=cell,
                  pbc=True)
    atoms.rattle(0.15, seed=3)
    data = tmp_path / "cell.data"
    ase.io.write(data, atoms, format="lammps-data", specorder=["Hf", "O"], masses=True,
                 atom_style="atomic")
    ref = _lammps_rdf(data, n_bins=60, r_max=6.0)
    r, g = partial_rdf(atoms.positions, types, atoms.cell.array, r_max=6.0, n_bins=60, pairs=PAIRS)
    np.testing.assert_allclose(r, ref[:, 0], atol=1e-12)
    for k in range(3):
        np.testing.assert_allclose(g[k], ref[:, 1 + 2 * k], rtol=1e-10, atol=1e-10)
    assert g.max() > 1.0


def test_ideal_gas_rdf_tends_to_one():
    rng = np.random.default_rng(0)
    n = 3000
    cell = np.eye(3) * 30.0
    r, g = partial_rdf(rng.uniform(0, 30, (n, 3)), rng.integers(1, 3, n), cell, r_max=6.0,
                       n_bins=12, pairs=PAIRS)
    np.testing.assert_allclose(g[:, 4:], 1.0, atol=0.08)


def test_js_and_mae():
    p = np.array([0.0, 1.0, 3.0, 1.0])
    assert js_divergence(p, 2 * p) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    assert np.isnan(js_divergence([0.0, 0.0], [1.0, 1.0]))
    g = np.ones((3, 4))
    d = rdf_distances(g, g + 0.5, pair_names=PAIR_NAMES)
    assert d["mae_HfO"] == pytest.approx(0.5) and d["js_mean"] == pytest.approx(0.0)


def test_comparison_files_use_the_stable_part_only(tmp_path):
    pos, types, cell = fluorite()
    rng = np.random.default_rng(1)
    run = [snapshot(s, pos + rng.normal(0, 0.05, pos.shape), types, cell) for s in (0, 100, 200)]
    blown = snapshot(300, pos * 0.2, types, cell)  # garbage written at the crash step
    write_dump(tmp_path / "run.lammpstrj", [*run, blown])
    write_dump(tmp_path / "ref.lammpstrj", run)
    (tmp_path / "status.json").write_text(json.dumps({"crash_step": 300}))
    metrics = compute_rdf_comparison(tmp_path / "run.lammpstrj", tmp_path / "ref.lammpstrj",
                                     tmp_path / "rdf.csv", tmp_path / "m.json",
                                     partial(RDFSettings, {"r_max": 5.0, "n_bins": 50}),
                                     status=tmp_path / "status.json", material=HFO2)
    table = pd.read_csv(tmp_path / "rdf.csv")
    assert list(table.columns) == ["r_A", "g_HfHf", "g_HfO", "g_OO", "g_HfHf_ref", "g_HfO_ref",
                                   "g_OO_ref"]
    assert metrics["n_snapshots"] == 3 and metrics["js_mean"] == pytest.approx(0.0, abs=1e-12)
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text)["mae_mean"] == pytest.approx(0.0)
    assert text == json.dumps(metrics, indent=2) + "\n"  # indented two spaces, one record per file
