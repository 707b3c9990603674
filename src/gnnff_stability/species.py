"""The chemistry and units of the project, written once.

Species order: LAMMPS type 1 is Hf, type 2 is O, in every data file, dump and model type map.
Units are LAMMPS ``metal`` throughout: Å, eV, eV/Å, ps inside LAMMPS (times in the configuration are in
fs and named ``*_fs``), K, amu.
"""

from __future__ import annotations

__all__ = ["MASSES", "PAIRS", "PAIR_LABELS", "PAIR_NAMES", "SPECIES", "TYPE_OF"]

#: Species in LAMMPS type order (type 1 = Hf, type 2 = O).
SPECIES: tuple[str, ...] = ("Hf", "O")
#: LAMMPS type (1-based) of each species.
TYPE_OF: dict[str, int] = {name: index + 1 for index, name in enumerate(SPECIES)}
#: Atomic masses, amu.
MASSES: dict[str, float] = {"Hf": 178.49, "O": 15.999}
#: Species pairs as LAMMPS type pairs, and their names in files and tables (``HfHf``, ``HfO``, ``OO``).
PAIRS: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 2))
PAIR_NAMES: tuple[str, ...] = tuple(f"{SPECIES[a - 1]}{SPECIES[b - 1]}" for a, b in PAIRS)
#: How tables and figures label each pair name (``HfO`` -> ``Hf–O``).
PAIR_LABELS: dict[str, str] = {
    name: f"{SPECIES[a - 1]}–{SPECIES[b - 1]}" for name, (a, b) in zip(PAIR_NAMES, PAIRS, strict=True)
}
