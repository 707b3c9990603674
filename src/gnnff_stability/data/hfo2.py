"""HfO2, the paper's material: its polymorph builders and its species (part of HfO2's material definition).

All builders return cells in the LAMMPS orientation (a lower-triangular cell matrix: **a** along x,
**b** in the xy plane), with the Hf atoms first and then the O atoms.

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

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms

from .structures import remove_species, supercell_of

__all__ = ["HFO2_SPECIES", "PHASES", "build_phase", "cubic_hfo2", "monoclinic_hfo2", "remove_oxygen",
           "tetragonal_hfo2"]

#: HfO2's species in LAMMPS type order (the order of the HfO2 material block of the configs).
HFO2_SPECIES: tuple[str, ...] = ("Hf", "O")

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


def _from_spacegroup(
    spacegroup: str | int, lattice: Any, species: Sequence[Any], coords: Sequence[Any]
) -> Atoms:
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
    return supercell_of(_from_spacegroup("P2_1/c", lattice, species, coords), supercell, HFO2_SPECIES)


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
    return supercell_of(conv, supercell, HFO2_SPECIES)


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
    return supercell_of(conv, supercell, HFO2_SPECIES)


_BUILDERS = {"monoclinic": monoclinic_hfo2, "tetragonal": tetragonal_hfo2, "cubic": cubic_hfo2}
#: The polymorphs :func:`build_phase` knows.
PHASES: tuple[str, ...] = tuple(_BUILDERS)


def build_phase(phase: str, supercell: Sequence[int]) -> Atoms:
    """Build an HfO2 polymorph by name (``monoclinic``, ``tetragonal`` or ``cubic``)."""
    if phase not in _BUILDERS:
        raise ValueError(f"unknown HfO2 phase {phase!r}; allowed: {sorted(_BUILDERS)}")
    return _BUILDERS[phase](supercell)


def remove_oxygen(atoms: Atoms, o_per_hf: float, seed: int | np.random.Generator) -> Atoms:
    """Remove randomly chosen O atoms until the cell has ``round(o_per_hf * n_Hf)`` of them.

    For 32 Hf: 1.10 keeps 35 O, 1.55 keeps 50 O, 2.00 keeps all 64. Halves round up.
    :func:`~gnnff_stability.data.structures.remove_species` for HfO2's axis.
    """
    return remove_species(atoms, "O", "Hf", o_per_hf, seed)
