"""Builders of hand-made trajectories with known stability terms (tiny, analytic)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gnnff_stability.analysis.dump import Snapshot, write_dump

A_FLUORITE = 5.08  # Å; cubic HfO2: Hf-O a√3/4 = 2.200, O-O a/2 = 2.540, Hf-Hf a/√2 = 3.592


def fluorite(reps: Sequence[int] = (2, 2, 2), a: float = A_FLUORITE):
    """Cubic fluorite HfO2 (12 atoms per cell; 2x2x2 = 96 atoms, Hf:O = 1:2).

    Returns positions [N, 3] Å, LAMMPS types [N] (1 Hf, 2 O) and the cell [3, 3] Å.
    """
    hf = np.array([(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)])
    o = np.array([(x, y, z) for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)])
    frac, types = [], []
    for i in range(reps[0]):
        for j in range(reps[1]):
            for k in range(reps[2]):
                shift = np.array([i, j, k])
                frac += list(hf + shift) + list(o + shift)
                types += [1] * len(hf) + [2] * len(o)
    cell = np.diag(np.asarray(reps, dtype=float) * a)
    positions = np.asarray(frac) * a
    return positions, np.asarray(types), cell


FLUORITE_RMIN = {
    "HfHf": A_FLUORITE / np.sqrt(2),
    "HfO": A_FLUORITE * np.sqrt(3) / 4,
    "OO": A_FLUORITE / 2,
}


def snapshot(step, positions, types, cell, forces=None, pbc=(True, True, True)) -> Snapshot:
    positions = np.asarray(positions, dtype=float)
    n = positions.shape[0]
    return Snapshot(
        step=int(step),
        cell=np.asarray(cell, dtype=float),
        origin=np.zeros(3),
        pbc=np.asarray(pbc, dtype=bool),
        ids=np.arange(1, n + 1),
        types=np.asarray(types),
        positions=positions,
        forces=np.zeros((n, 3)) if forces is None else np.asarray(forces, dtype=float),
    )


def write_run(
    directory: Path,
    snapshots: Sequence[Snapshot],
    temps: dict[int, float],
    *,
    temp_K: float = 1200.0,
    steps_planned: int = 1000,
    dump_every: int = 100,
    classification: str = "stable",
    crash_step: int | None = None,
    steps_done: int | None = None,
) -> dict[str, Path]:
    """Write dump.lammpstrj, thermo.csv and status.json of a hand-made run."""
    directory.mkdir(parents=True, exist_ok=True)
    write_dump(directory / "dump.lammpstrj", snapshots)
    thermo = pd.DataFrame(
        {
            "step": list(temps),
            "temp_K": list(temps.values()),
            "pe_eV": 0.0,
            "ke_eV": 0.0,
            "etotal_eV": 0.0,
            "natoms": snapshots[0].n_atoms,
            "fmax_eV_per_A": 1.0,
        }
    )
    thermo.to_csv(directory / "thermo.csv", index=False)
    status = {
        "classification": classification,
        "reason": "test",
        "crash_step": crash_step,
        "steps_planned": steps_planned,
        "steps_done": steps_planned if steps_done is None else steps_done,
        "dump_every": dump_every,
        "temp_K": temp_K,
        "n_atoms_initial": snapshots[0].n_atoms,
        "n_atoms_final": snapshots[-1].n_atoms,
        "engine": "embedded",
        "wall_s": 1.0,
        "s_per_step": 0.001,
    }
    (directory / "status.json").write_text(json.dumps(status))
    return {
        "dump": directory / "dump.lammpstrj",
        "thermo": directory / "thermo.csv",
        "status": directory / "status.json",
    }
