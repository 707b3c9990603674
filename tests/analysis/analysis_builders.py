"""Builders of hand-made trajectories with known stability terms (tiny, analytic)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gnnff_stability.analysis.dump import Snapshot
from gnnff_stability.settings import MaterialSettings
from partial_settings import partial

#: HfO2 as a validated configuration's default material gives it (species Hf, O; OOD axis O per Hf).
HFO2: MaterialSettings = partial(MaterialSettings, {})
#: Its type pairs and pair names, for the array functions that take them explicitly.
PAIRS = HFO2.pairs
PAIR_NAMES = HFO2.pair_names

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


def write_dump(path: str | Path, snapshots: Iterable[Snapshot], *, append: bool = False) -> None:
    """Write snapshots in the contract's dump format (``id type x y z [fx fy fz]``).

    For tests and benchmarks: production dumps are written by LAMMPS itself. The cell must
    be a LAMMPS restricted triclinic (lower-triangular rows: **a** along x, **b** in the xy plane);
    an orthogonal cell is written with ``ITEM: BOX BOUNDS pp pp pp``.

    Parameters
    ----------
    path
        Output file.
    snapshots
        Snapshots to write (``origin`` is added back to ``positions``).
    append
        Append to an existing file instead of overwriting it.
    """
    with open(path, "a" if append else "w", encoding="ascii") as fh:
        for snap in snapshots:
            cell = np.asarray(snap.cell, dtype=float)
            if abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) > 1e-12:
                raise ValueError(
                    f"cell must be lower-triangular (LAMMPS restricted triclinic), got {cell.tolist()}"
                )
            xy, xz, yz = cell[1, 0], cell[2, 0], cell[2, 1]
            xlo, ylo, zlo = snap.origin
            xhi, yhi, zhi = xlo + cell[0, 0], ylo + cell[1, 1], zlo + cell[2, 2]
            flags = " ".join("pp" if p else "ff" for p in snap.pbc)
            fh.write(f"ITEM: TIMESTEP\n{snap.step}\nITEM: NUMBER OF ATOMS\n{snap.n_atoms}\n")
            if xy == 0 and xz == 0 and yz == 0:
                fh.write(f"ITEM: BOX BOUNDS {flags}\n")
                fh.write(f"{xlo:.16e} {xhi:.16e}\n{ylo:.16e} {yhi:.16e}\n{zlo:.16e} {zhi:.16e}\n")
            else:
                xlo_b = xlo + min(0.0, xy, xz, xy + xz)
                xhi_b = xhi + max(0.0, xy, xz, xy + xz)
                ylo_b, yhi_b = ylo + min(0.0, yz), yhi + max(0.0, yz)
                fh.write(f"ITEM: BOX BOUNDS xy xz yz {flags}\n")
                fh.write(f"{xlo_b:.16e} {xhi_b:.16e} {xy:.16e}\n{ylo_b:.16e} {yhi_b:.16e} {xz:.16e}\n"
                         f"{zlo:.16e} {zhi:.16e} {yz:.16e}\n")
            pos = np.asarray(snap.positions, dtype=float) + snap.origin
            if snap.forces is not None:
                fh.write("ITEM: ATOMS id type x y z fx fy fz\n")
                table = np.column_stack([pos, snap.forces])
            else:
                fh.write("ITEM: ATOMS id type x y z\n")
                table = pos
            out = np.column_stack([snap.ids, snap.types, table]).astype(float)
            np.savetxt(fh, out, fmt=["%d", "%d"] + ["%.10g"] * table.shape[1])
