"""The MD inputs of a run depend on (ratio, cell_seed, temp_K, vseed) only, never on the trained model: every
method and training seed of the grid starts its MD from the same cell with the same LAMMPS seeds."""

from __future__ import annotations

import re
from pathlib import Path

from gnnff_stability import paths
from gnnff_stability.config import validate_config
from gnnff_stability.grid import RUN_KEYS, TRAIN_KEYS, expand_grid
from gnnff_stability.md import lammps_seeds, render_protocol
from gnnff_stability.md.protocol import ProtocolPaths
from gnnff_stability.settings import MaterialSettings, MDSettings

MD_KEYS = ("ratio", "cell_seed", "temp_K", "vseed")
CORR = {"corr": {"features": {"nequip": "edge_0e+1o"}, "scheduler": "fixed", "c_min": 0.1, "c_max": 0.1,
                 "t_cycle": 2, "sample_edges": 64}}


def _runs():
    config = validate_config({
        "grid": {"model": ["tiny"], "layers": {"tiny": [2]}, "method": ["baseline", "corr_fixed"],
                 "seed": [0, 1], "ratio": [2.0, 1.9], "cell_seed": [0, 1], "temp_K": [1200, 1500],
                 "vseed": [0, 1]},
        "models": {"tiny": {"family": "nequip", "r_max": 4.0, "l_max": 1, "num_features": 4}},
        "methods": {"baseline": {}, "corr_fixed": CORR},
    })
    return config, expand_grid(config)


def _md_inputs(run: dict, md: MDSettings, material: MaterialSettings) -> tuple[str, list[str]]:
    """The start cell of a run (as the workflow's ``run_md`` rule names it) and the LAMMPS commands of its
    protocol, with a fixed force block (the model's own lines are the only run-specific ones left out)."""
    cell = paths.fill(paths.STRUCTURE_FILES["data"], {**run, "campaign": "c"})
    commands = render_protocol(ProtocolPaths(Path(cell), Path("dump.lammpstrj")), run["temp_K"], run["vseed"], md,
                               material, ["# forces"], ["# halt"])
    return cell, commands


def test_start_cell_and_velocity_seeds_do_not_depend_on_the_method_or_training_seed():
    config, runs = _runs()
    assert set(RUN_KEYS) == set(TRAIN_KEYS) | set(MD_KEYS)
    # the start cell is named by (ratio, cell) alone; the velocity seed is the run's vseed
    assert set(re.findall(r"{(\w+)}", paths.STRUCTURE_FILES["data"])) == {"campaign", "ratio", "cell"}
    md = MDSettings.from_config(config["md"])
    material = MaterialSettings.from_config(config["material"])
    inputs: dict[tuple, tuple] = {}
    for run in runs.to_dict("records"):
        key = tuple(run[k] for k in MD_KEYS)
        got = _md_inputs(run, md, material)
        assert inputs.setdefault(key, got) == got, f"run {run} starts differently from its pairs"
    # each MD key is shared by all 2 methods x 2 training seeds
    counts = runs.groupby(list(MD_KEYS)).size()
    assert (counts == 4).all()
    # and the inputs do change with each MD key: cells with (ratio, cell_seed), seeds with vseed
    cells = {key: cell for key, (cell, _) in inputs.items()}
    assert len(set(cells.values())) == len({(r, c) for r, c, _, _ in cells})
    for key, (_, commands) in inputs.items():
        velocity_seed, langevin_seed = lammps_seeds(key[3])
        assert f"velocity all create {key[2]} {velocity_seed} dist gaussian mom yes rot yes" in commands
        assert any(line.endswith(f" {langevin_seed}") and "langevin" in line for line in commands)
    assert lammps_seeds(0) != lammps_seeds(1)
