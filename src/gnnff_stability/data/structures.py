"""HfO2 start cells: polymorph builders, seeded oxygen removal, LAMMPS data and extended XYZ writers.

All builders return cells in the LAMMPS orientation (a lower-triangular cell matrix: **a** along x,
**b** in the xy plane), with the Hf atoms first and then the O atoms. The LAMMPS data file and the
extended XYZ file of a cell therefore hold the same coordinates, atom for atom (atom id ``i + 1`` is
row ``i`` of the ``Atoms``).

Sizes of the default supercells (all 96 atoms, 32 Hf + 64 O, the size of the paper's cells):

=============  ========================  ==================  =====================
phase          space group               cell built on        supercell for 96 atoms
=============  ========================  ==================  =====================
monoclinic     P2_1/c (No. 14)           12-atom primitive    (2, 2, 2)
tetragonal     P4_2/nmc (No. 137)        12-atom √2×√2×1      (2, 2, 2)
cubic          Fm-3m (No. 225, fluorite) 12-atom conventional (2, 2, 2)
=============  ========================  ==================  =====================

The tetragonal cell is built on the √2×√2×1 supercell of its 6-atom primitive cell, which is the
pseudo-fluorite cell (a ≈ 5.06 Å), so every phase uses the same 12-atom building block.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from gnnff_stability.settings import CombSettings, StructureSettings
from gnnff_stability.species import MASSES, SPECIES

__all__ = [
    "build_cell",
    "build_phase",
    "cubic_hfo2",
    "monoclinic_hfo2",
    "remove_oxygen",
    "tetragonal_hfo2",
    "to_lammps_frame",
    "write_extxyz",
    "write_lammps_data",
]

logger = logging.getLogger(__name__)


# Monoclinic HfO2, P2_1/c: lattice of the project brief; Wyckoff 4e positions of Ruh & Corfield,
# J. Am. Ceram. Soc. 53, 126 (1970). Hf is 7-fold coordinated (Hf-O 2.04-2.27 Å).
_MONO_LATTICE_A = (5.117, 5.175, 5.291)
_MONO_BETA_DEG = 99.22
_MONO_SITES = (
    ("Hf", (0.2758, 0.0404, 0.2089)),
    ("O", (0.0703, 0.3359, 0.3406)),
    ("O", (0.4423, 0.7549, 0.4789)),
)
# Tetragonal HfO2, P4_2/nmc in origin choice 1 (pymatgen's setting): Hf 2a (0, 0, 0),
# O 4d (0, 1/2, z) with z = 1/4 - dz; dz = 0.046 gives the 4 + 4 Hf-O coordination (2.08 / 2.36 Å).
_TET_A, _TET_C, _TET_DZ = 3.58, 5.20, 0.046
# Cubic (fluorite) HfO2, Fm-3m: Hf 4a, O 8c.
_CUBIC_A = 5.08


def _sorted_by_species(atoms: Atoms) -> Atoms:
    order = {s: i for i, s in enumerate(SPECIES)}
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(order))
    if unknown:
        raise ValueError(f"species {unknown} are not in the project's species {list(SPECIES)}")
    idx = np.argsort([order[s] for s in symbols], kind="stable")
    return atoms[idx]


def to_lammps_frame(atoms: Atoms) -> Atoms:
    """Return a copy rotated so that the cell is lower triangular (the LAMMPS box orientation).

    Fractional coordinates are kept and wrapped into [0, 1); tilt factors below 1e-10 Å are set to
    exactly zero, so that orthogonal cells stay orthogonal.

    Parameters
    ----------
    atoms
        Periodic cell, any orientation.

    Returns
    -------
    ase.Atoms
        Same structure with ``cell`` lower triangular, shape [3, 3], Å.
    """
    out = atoms.copy()
    out.calc = None
    rcell, _ = out.cell.standard_form()
    matrix = np.array(rcell)
    matrix[np.abs(matrix) < 1e-10] = 0.0
    frac = out.get_scaled_positions(wrap=True)
    out.set_cell(matrix, scale_atoms=False)
    out.set_scaled_positions(frac)
    out.pbc = True
    return out


def _supercell(atoms: Atoms, supercell: Sequence[int]) -> Atoms:
    reps = tuple(int(n) for n in supercell)
    if len(reps) != 3 or any(n < 1 for n in reps) or any(n != s for n, s in zip(reps, supercell)):
        raise ValueError(f"supercell must be three integers >= 1, got {list(supercell)}")
    return to_lammps_frame(_sorted_by_species(atoms.repeat(reps)))


def _from_spacegroup(spacegroup, lattice, species, coords) -> Atoms:
    from pymatgen.core import Structure  # noqa: PLC0415
    from pymatgen.io.ase import AseAtomsAdaptor  # noqa: PLC0415

    structure = Structure.from_spacegroup(spacegroup, lattice, list(species), [list(c) for c in coords])
    return AseAtomsAdaptor.get_atoms(structure)


def monoclinic_hfo2(supercell: Sequence[int]) -> Atoms:
    """Monoclinic (P2_1/c) HfO2, the ground-state polymorph and the paper's start cell.

    Lattice a 5.117, b 5.175, c 5.291 Å, β 99.22°; Hf, O1 and O2 on Wyckoff 4e sites. The 12-atom
    cell repeated ``supercell`` times; (2, 2, 2) gives 96 atoms (32 Hf, 64 O).

    Parameters
    ----------
    supercell
        Repetitions along a, b, c.

    Returns
    -------
    ase.Atoms
        Hf atoms first, then O; cell lower triangular (LAMMPS orientation), Å.
    """
    from pymatgen.core import Lattice  # noqa: PLC0415

    lattice = Lattice.monoclinic(*_MONO_LATTICE_A, _MONO_BETA_DEG)
    species, coords = zip(*_MONO_SITES)
    return _supercell(_from_spacegroup("P2_1/c", lattice, species, coords), supercell)


def tetragonal_hfo2(supercell: Sequence[int]) -> Atoms:
    """Tetragonal (P4_2/nmc) HfO2, built on its 12-atom pseudo-fluorite cell.

    Primitive cell a 3.58, c 5.20 Å with the O sublattice shifted by ±0.046 c along z, turned into
    the √2×√2×1 cell (a ≈ 5.06 Å, 12 atoms) and repeated ``supercell`` times; (2, 2, 2) gives 96
    atoms.

    Parameters
    ----------
    supercell
        Repetitions of the 12-atom cell.

    Returns
    -------
    ase.Atoms
        Hf atoms first, then O; cell lower triangular (here orthogonal), Å.
    """
    from pymatgen.core import Lattice  # noqa: PLC0415

    lattice = Lattice.tetragonal(_TET_A, _TET_C)
    prim = _from_spacegroup(137, lattice, ("Hf", "O"), ((0.0, 0.0, 0.0), (0.0, 0.5, 0.25 - _TET_DZ)))
    from ase.build import make_supercell  # noqa: PLC0415

    conv = make_supercell(prim, [[1, 1, 0], [-1, 1, 0], [0, 0, 1]])
    return _supercell(conv, supercell)


def cubic_hfo2(supercell: Sequence[int]) -> Atoms:
    """Cubic (fluorite, Fm-3m) HfO2: a = 5.08 Å, 12-atom conventional cell; (2, 2, 2) gives 96 atoms.

    Parameters
    ----------
    supercell
        Repetitions of the conventional cell.

    Returns
    -------
    ase.Atoms
        Hf atoms first, then O; orthogonal cell, Å.
    """
    from pymatgen.core import Lattice  # noqa: PLC0415

    lattice = Lattice.cubic(_CUBIC_A)
    conv = _from_spacegroup(225, lattice, ("Hf", "O"), ((0.0, 0.0, 0.0), (0.25, 0.25, 0.25)))
    return _supercell(conv, supercell)


_BUILDERS = {"monoclinic": monoclinic_hfo2, "tetragonal": tetragonal_hfo2, "cubic": cubic_hfo2}


def build_phase(phase: str, supercell: Sequence[int]) -> Atoms:
    """Build an HfO2 polymorph by name (``monoclinic``, ``tetragonal`` or ``cubic``)."""
    if phase not in _BUILDERS:
        raise ValueError(f"unknown HfO2 phase {phase!r}; allowed: {sorted(_BUILDERS)}")
    return _BUILDERS[phase](supercell)


def remove_oxygen(atoms: Atoms, o_per_hf: float, seed: int | np.random.Generator) -> Atoms:
    """Remove randomly chosen O atoms until the cell has ``round(o_per_hf * n_Hf)`` of them.

    For 32 Hf: 1.10 keeps 35 O, 1.55 keeps 50 O, 2.00 keeps all 64. Halves round up.

    Parameters
    ----------
    atoms
        Cell with Hf and O atoms.
    o_per_hf
        Target O-per-Hf ratio (the x of Hf:O = 1:x). It must give at least one O atom and no more
        O atoms than the cell has.
    seed
        Seed (or generator) of ``np.random.default_rng`` that picks the removed O atoms.

    Returns
    -------
    ase.Atoms
        A copy without the removed atoms; the kept atoms keep their relative order.
    """
    symbols = np.array(atoms.get_chemical_symbols())
    n_hf = int(np.count_nonzero(symbols == "Hf"))
    o_idx = np.flatnonzero(symbols == "O")
    n_o = o_idx.size
    if n_hf == 0 or n_o == 0:
        raise ValueError(f"the cell needs Hf and O atoms, found {n_hf} Hf and {n_o} O")
    try:
        ratio = float(o_per_hf)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"o_per_hf must be a number, got {o_per_hf!r}") from exc
    lo, hi = 0.5 / n_hf, n_o / n_hf
    allowed = (
        f"allowed: finite values that keep between 1 and {n_o} O atoms for {n_hf} Hf, "
        f"i.e. {lo:.4g} <= o_per_hf < {hi + 0.5 / n_hf:.4g}"
    )
    if not math.isfinite(ratio):
        raise ValueError(f"o_per_hf = {o_per_hf!r} is not finite; {allowed}")
    n_keep = int(math.floor(ratio * n_hf + 0.5))
    if n_keep < 1 or n_keep > n_o:
        raise ValueError(f"o_per_hf = {ratio:g} asks for {n_keep} O atoms; {allowed}")
    rng = np.random.default_rng(seed)
    removed = rng.choice(o_idx, size=n_o - n_keep, replace=False)
    keep = np.setdiff1d(np.arange(len(atoms)), removed)
    logger.info("removed %d of %d O atoms (O/Hf %.3f -> %d O)", removed.size, n_o, ratio, n_keep)
    return atoms[keep]


def write_lammps_data(atoms: Atoms, path: str | Path) -> Path:
    """Write a LAMMPS data file (``atom_style atomic``, type 1 = Hf, type 2 = O, with Masses).

    Both atom types are declared in the header and the Masses section whatever the cell holds. The
    box is triclinic (``xy xz yz`` line) unless the cell is orthogonal. Written by
    ``ase.io.write(format="lammps-data")``; the masses are then set to exactly 178.49 and 15.999.

    Parameters
    ----------
    atoms
        Cell of Hf and O atoms, any orientation (ase rotates it into the LAMMPS box).
    path
        Output file.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    import ase.io  # noqa: PLC0415

    path = Path(path)
    _sorted_by_species(atoms)  # checks the species
    path.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(
        path, atoms, format="lammps-data", specorder=list(SPECIES), masses=True, atom_style="atomic"
    )
    text = path.read_text()
    # ase writes the masses after a unit conversion (178.48999995...); write the exact values.
    for itype, species in enumerate(SPECIES, start=1):
        text, n = re.subn(
            rf"(?m)^[ \t]*{itype}[ \t]+\S+([ \t]+#[ \t]*{species})[ \t]*$", f"{itype} {MASSES[species]}\\1", text
        )
        if n != 1:
            raise RuntimeError(f"could not find the mass line of type {itype} ({species}) in {path}")
    path.write_text(text)
    return path


def write_extxyz(atoms: Atoms, path: str | Path) -> Path:
    """Write one cell as extended XYZ (lattice, pbc, species, positions in Å)."""
    import ase.io  # noqa: PLC0415

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(path, atoms, format="extxyz")
    return path


def build_cell(
    o_per_hf: float,
    cell_seed: int,
    settings: StructureSettings,
    data_path: str | Path,
    xyz_path: str | Path,
    comb: CombSettings | None = None,
) -> Atoms:
    """Build an MD start cell: monoclinic HfO2 supercell, O removed to ``o_per_hf``, both files written.

    Parameters
    ----------
    o_per_hf
        O-per-Hf ratio of the cell (2.0 is stoichiometric HfO2, the in-distribution cell).
    cell_seed
        Seed of the oxygen removal (the grid's ``cell_seed``).
    settings
        The ``structures`` block: supercell of the 12-atom monoclinic cell ((2, 2, 2): 96 atoms at
        1:2), and whether to relax the cell with the reference potential first.
    data_path, xyz_path
        LAMMPS data file and extended XYZ file to write (same coordinates, same atom order).
    comb
        The ``data.comb`` block, needed by ``relax: comb`` (its COMB variant and charge tolerance).

    Returns
    -------
    ase.Atoms
        The cell, in the LAMMPS orientation.
    """
    supercell, seed = settings.supercell, int(cell_seed)
    atoms = remove_oxygen(monoclinic_hfo2(supercell), o_per_hf, seed)
    atoms.info["o_per_hf"] = float(o_per_hf)
    atoms.info["seed"] = seed
    if settings.relax == "comb":
        if comb is None:
            raise ValueError("structures.relax is 'comb': the data.comb settings are needed")
        from .relax import relax_with_comb  # noqa: PLC0415 (LAMMPS only when asked for)

        atoms, summary = relax_with_comb(atoms, comb, settings.relax_fmax_eV_per_A,
                                         settings.relax_max_steps)
        atoms.info.update({f"relax_{k}": v for k, v in summary.items()})
    write_lammps_data(atoms, data_path)
    write_extxyz(atoms, xyz_path)
    n_hf = atoms.get_chemical_symbols().count("Hf")
    logger.info(
        "built cell O/Hf %.2f: %d atoms (%d Hf, %d O), supercell %s, seed %d, relax %s -> %s, %s",
        o_per_hf, len(atoms), n_hf, len(atoms) - n_hf, list(supercell), seed, settings.relax, data_path,
        xyz_path,
    )
    return atoms
