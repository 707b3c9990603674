"""Active learning from failed runs: frame selection, committee filter, COMB labels, merging, settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from analysis.analysis_builders import fluorite, snapshot, write_run
from partial_settings import partial

from gnnff_stability.config import ConfigError, validate_config
from gnnff_stability.data.active import (
    committee_mask,
    force_deviation,
    harvest_frames,
    label_harvest,
    merge_training,
    select_snapshots,
)
from gnnff_stability.grid import method_presets
from gnnff_stability.settings import ActiveSettings, CombSettings


def _config(active: dict | None = None, **grid) -> dict:
    return {
        "grid": {"model": ["nequip"], "layers": {"nequip": [1]}, "method": ["baseline", "al"], **grid},
        "models": {"nequip": {"family": "nequip"}},
        "methods": {"baseline": {}, "al": {"active": active if active is not None else {}}},
    }


def _active(active: dict | None = None, **grid) -> ActiveSettings:
    settings = method_presets(validate_config(_config(active, **grid)))["al"].active
    assert settings is not None
    return settings


def _run(tmp_path: Path, name: str, steps: list[int], classification: str, *, crash_step=None, fail_step=None,
         truncated: bool = False) -> dict:
    """A hand-made run of the 12-atom fluorite cell, every snapshot displaced by its step / 1000 Å."""
    positions, types, cell = fluorite((1, 1, 1))
    snaps = [snapshot(s, positions + s / 1000.0, types, cell) for s in steps]
    files = write_run(tmp_path / name, snaps, {s: 1200.0 for s in steps}, classification=classification,
                      crash_step=crash_step, steps_planned=100, dump_every=10,
                      steps_done=crash_step if crash_step is not None else 100)
    status = json.loads(files["status"].read_text())
    status["fail_step"] = fail_step
    files["status"].write_text(json.dumps(status))
    if truncated:  # a crash can cut the last snapshot short
        with open(files["dump"], "a") as fh:
            fh.write(f"ITEM: TIMESTEP\n{steps[-1] + 10}\nITEM: NUMBER OF ATOMS\n12\nITEM: BOX BOUNDS pp pp pp\n0 5\n")
    return {"run": name, **{k: str(v) for k, v in files.items()}}


def test_selection_is_the_window_before_the_crash_and_the_last_complete_snapshot(tmp_path, hfo2):
    # dump every 10 steps up to 40, then a truncated snapshot; crash at step 47; window 20 steps:
    # 27 <= step < 47 gives 30 and 40, and 40 is also the last complete snapshot at or before 47
    crash = _run(tmp_path, "crash", [0, 10, 20, 30, 40], "crash", crash_step=47, truncated=True)
    assert [s.step for s in select_snapshots(crash["dump"], 47, 20)] == [30, 40]
    # a fail at the snapshot of step 50 (too-close atoms), the run went on to 100: 25 <= step < 50 gives
    # 30 and 40, the last complete snapshot at or before 50 is 50 itself
    fail = _run(tmp_path, "fail", list(range(0, 101, 10)), "fail", fail_step=50)
    assert [s.step for s in select_snapshots(fail["dump"], 50, 25)] == [30, 40, 50]
    # a window of 0 steps keeps only the last complete snapshot
    assert [s.step for s in select_snapshots(crash["dump"], 47, 0)] == [40]

    settings = _active({"harvest": {"window_steps": 20, "max_frames": None}}).harvest
    stable = _run(tmp_path, "stable", list(range(0, 101, 10)), "stable")
    frames, summary = harvest_frames([crash, stable, fail], settings, hfo2.species, al_round=0)
    assert [(a.info["source_run"], a.info["source_step"]) for a in frames] == [
        ("crash", 30), ("crash", 40), ("fail", 30), ("fail", 40), ("fail", 50)]
    assert summary["outcomes"] == {"crash": 1, "stable": 1, "fail": 1} and summary["n_selected"] == 5
    assert all(a.info["failure_step"] == {"crash": 47, "fail": 50}[a.info["source_run"]] for a in frames)
    # the positions are the snapshot's (step / 1000 Å off the crystal), wrapped into the cell
    positions, _, cell = fluorite((1, 1, 1))
    expected = (positions + 0.040) % np.diag(cell)
    np.testing.assert_allclose(frames[1].positions % np.diag(cell), expected, atol=1e-9)

    # the cap keeps the frames nearest their failure: crash 40 (7 steps), fail 50 (0), fail 40 (10)
    capped = _active({"harvest": {"window_steps": 20, "max_frames": 3}}).harvest
    frames, summary = harvest_frames([crash, stable, fail], capped, hfo2.species)
    assert [(a.info["source_run"], a.info["source_step"]) for a in frames] == [
        ("crash", 40), ("fail", 40), ("fail", 50)]
    assert summary["n_candidates"] == 5
    # only crashes when asked
    only_crash = _active({"harvest": {"window_steps": 20, "outcomes": ["crash"]}}).harvest
    assert {a.info["source_run"] for a in harvest_frames([crash, fail], only_crash, hfo2.species)[0]} == {"crash"}
    # every run stable: nothing harvested
    assert harvest_frames([stable], settings, hfo2.species)[0] == []


def test_committee_keeps_exactly_the_frames_between_the_trust_levels():
    # two models; the second differs on atom 0 by 2 d along x: the spread of that atom is d, the others 0
    d = np.array([0.05, 0.1, 0.3, 0.4999, 0.5, 0.7])
    forces = np.zeros((len(d), 2, 4, 3))
    forces[:, 1, 0, 0] = 2 * d
    forces[:, :, 1, 1] = 3.0  # equal in both models: no spread
    np.testing.assert_allclose(force_deviation(forces), d, rtol=1e-12)
    assert committee_mask(force_deviation(forces), 0.1, 0.5).tolist() == [False, True, True, True, False, False]
    # three models: spread sqrt(mean |F - <F>|^2) by hand
    three = np.zeros((1, 3, 2, 3))
    three[0, :, 1, 2] = [0.0, 0.3, 0.9]
    assert force_deviation(three)[0] == pytest.approx(np.sqrt(((np.array([0, 0.3, 0.9]) - 0.4) ** 2).mean()))
    with pytest.raises(ValueError, match="trust_lo"):
        committee_mask(d, 0.5, 0.1)


def test_comb_labels_equal_an_independent_comb_single_point(tmp_path, mono96, hfo2):
    from gnnff_stability.data.comb import comb_single_point, force_consistent_energy
    from gnnff_stability.data.structures import to_lammps_frame, write_lammps_data

    start = to_lammps_frame(mono96)
    cell_data = write_lammps_data(start, tmp_path / "cell.data", hfo2.species, hfo2.masses)
    frame = start.copy()
    frame.positions += np.random.default_rng(0).normal(0.0, 0.05, frame.positions.shape)
    frame.info.update(source_run="run0", source_step=40, failure_step=47, source_outcome="crash", al_round=0)
    comb = partial(CombSettings)
    labelled, summary = label_harvest([frame], "comb", comb, hfo2, {"run0": cell_data})
    assert summary["reference_calls"] == 1 and summary["label"] == "comb"
    (atoms,) = labelled
    assert {k: atoms.info[k] for k in ("source_run", "source_step")} == {"source_run": "run0", "source_step": 40}
    single = comb_single_point(frame, comb.label_qeq_tol, comb.over_coordination)
    np.testing.assert_allclose(atoms.get_forces(), single.forces, atol=2e-3)
    assert atoms.info["comb_energy_reported"] == pytest.approx(single.energy, abs=1e-3)
    # the energy is the potential of the forces relative to the start cell, as data.source comb labels it
    fce = force_consistent_energy(start, frame, comb.label_qeq_tol, comb.over_coordination)
    assert atoms.get_potential_energy() == pytest.approx(fce.energy, abs=1e-3)

    merged = merge_training([start], labelled)
    assert len(merged) == 2 and merged[1] is atoms
    with pytest.raises(ValueError, match="label it first"):
        merge_training([start], [frame])


def test_active_settings_and_the_no_leakage_rule():
    settings = _active({})
    assert (settings.rounds, settings.base, settings.label, settings.retrain.mode) == (1, "baseline", "comb", "finetune")
    assert settings.harvest.committee is None
    committee = _active({"harvest": {"committee": {"seeds": [0, 1]}}}, seed=[0, 1]).harvest.committee
    assert committee is not None and committee.seeds == (0, 1) and committee.trust_lo < committee.trust_hi
    assert method_presets(validate_config(_config({})))["al"].stabilisers == ("active",)
    with pytest.raises(ConfigError, match=r"harvest\.cell_seed: \[3\] are also in grid\.cell_seed"):
        validate_config(_config({"harvest": {"cell_seed": [3]}}, cell_seed=[0, 3]))
    with pytest.raises(ConfigError, match=r"harvest\.vseed: \[0\]"):
        validate_config(_config({"harvest": {"vseed": [0, 7]}}))
    with pytest.raises(ConfigError, match="'nothing' is not in grid.method"):
        validate_config(_config({"base": "nothing"}))
    with pytest.raises(ConfigError, match="trust_lo"):
        validate_config(_config({"harvest": {"committee": {"seeds": [0, 1], "trust_lo": 1.0, "trust_hi": 0.5}}},
                                seed=[0, 1]))
    with pytest.raises(ConfigError, match="must be training seeds of the grid"):
        validate_config(_config({"harvest": {"committee": {"seeds": [0, 1]}}}))
    with pytest.raises(ConfigError, match="finetune keeps the architecture"):
        config = _config({})
        config["methods"]["al"]["prior"] = "zbl"
        validate_config(config)
    with pytest.raises(ConfigError, match="methods.al.active.label"):
        validate_config(_config({"label": "dft please"}))
    assert _active({"label": "command:mylabel --in {input} --out {output}"}).label.startswith("command:")


def test_harvest_runs_are_marked_and_disjoint_from_the_evaluation_cells_and_seeds():
    from gnnff_stability.grid import expand_grid, harvest_runs

    config = validate_config(_config({"rounds": 2, "harvest": {"cell_seed": [5, 6], "vseed": [9]}},
                                     ratio=[1.55, 2.0], cell_seed=[0, 1], vseed=[0, 1], temp_K=[1200, 1800]))
    runs = expand_grid(config)
    harvest = harvest_runs(config, runs)
    assert harvest["harvest"].all() and set(harvest["method"]) == {"al"} and set(harvest["base"]) == {"baseline"}
    # 2 rounds x (1.55: 2 cells, 2.00: 1 cell) x 2 temperatures x 1 velocity seed
    assert len(harvest) == 2 * 3 * 2
    assert set(harvest["round"]) == {0, 1}
    assert set(harvest["cell_seed"]).isdisjoint(runs["cell_seed"]) and set(harvest["vseed"]).isdisjoint(runs["vseed"])
    cells = {(r, c) for r, c in zip(runs["ratio"], runs["cell_seed"], strict=True)}
    assert cells.isdisjoint(zip(harvest["ratio"], harvest["cell_seed"], strict=True))
    # the evaluation grid has the active method's rows, with its column set; the harvest runs are not among them
    assert "harvest" not in runs.columns and runs.loc[runs["method"] == "al", "active"].all()
    assert set(runs.loc[runs["method"] == "al", "stabilisers"]) == {"active"}


def test_a_labeller_command_reads_and_writes_extended_xyz(tmp_path, hfo2):
    # the worked example of docs/stabilisers.md: a script that labels with an ASE calculator (Lennard-Jones here)
    script = tmp_path / "label_lj.py"
    script.write_text(
        "import sys\nimport ase.io\nfrom ase.calculators.lj import LennardJones\n"
        "frames = ase.io.read(sys.argv[1], index=':')\n"
        "for atoms in frames:\n    atoms.calc = LennardJones(sigma=2.0, epsilon=0.01, rc=4.0)\n    atoms.get_forces()\n"
        "ase.io.write(sys.argv[2], frames)\n"
    )
    positions, _, cell = fluorite((1, 1, 1))
    from ase import Atoms

    frames = [Atoms("Hf4O8", positions=positions + 0.01 * k, cell=cell, pbc=True) for k in range(2)]
    for k, atoms in enumerate(frames):
        atoms.info.update(source_run="r", source_step=10 * k)
    spec = f"command:{sys.executable} {script} {{input}} {{output}}"
    labelled, summary = label_harvest(frames, spec, partial(CombSettings), hfo2)
    assert summary["reference_calls"] == 2
    from ase.calculators.lj import LennardJones

    for atoms, new in zip(frames, labelled, strict=True):
        atoms.calc = LennardJones(sigma=2.0, epsilon=0.01, rc=4.0)
        assert new.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(new.get_forces(), atoms.get_forces(), atol=1e-6)
        assert new.info["source_step"] == atoms.info["source_step"] and new.info["label"] == spec


def test_reference_labels_of_a_pair_style_material(sic):
    """``active.label: reference`` labels harvested SiC frames with the material's pair style, provenance kept."""
    from gnnff_stability.data.pair_potential import pair_style_single_point
    from gnnff_stability.data.structures import build_crystal

    frame = build_crystal(sic, (1, 1, 1))
    frame.positions += np.random.default_rng(3).normal(0.0, 0.05, frame.positions.shape)
    frame.info.update(source_run="r", source_step=20, failure_step=25, source_outcome="fail", al_round=0)
    labelled, summary = label_harvest([frame], "reference", partial(CombSettings), sic)
    assert summary["reference_calls"] == 1 and summary["label"] == "reference"
    assert summary["weights_file"].endswith("SiC.tersoff")
    energy, forces = pair_style_single_point(frame, sic)
    assert labelled[0].get_potential_energy() == pytest.approx(energy, abs=1e-8)
    np.testing.assert_allclose(labelled[0].get_forces(), forces, atol=1e-8)
    assert labelled[0].info["source_step"] == 20 and labelled[0].info["label"] == "reference"
