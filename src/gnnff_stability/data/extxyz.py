"""Labelled frames from extended XYZ files: the user's own DFT data (``data.source: extxyz``) and SAMD23.

A frame carries an energy (``energy`` or ``free_energy``, eV) and per-atom forces (``forces`` or
``force``, eV/Å), as ase and most DFT converters write them. :func:`extxyz_species` reads only the species
column, so a configuration can be checked against the campaign's species before any job starts.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["extxyz_species", "normalise_frame", "read_labelled_frames"]

_PROPERTIES = re.compile(r"""(?:^|\s)Properties=(?:"([^"]*)"|'([^']*)'|(\S+))""", re.IGNORECASE)


def _species_column(comment: str, where: str) -> int:
    """Column of the species in the atom lines, from the comment line's ``Properties`` (0 without one)."""
    match = _PROPERTIES.search(comment)
    if match is None:
        return 0
    fields = next(g for g in match.groups() if g is not None).split(":")
    if len(fields) % 3:
        raise ValueError(f"{where}: Properties={':'.join(fields)} is not name:type:count triplets")
    column = 0
    for name, _kind, count in zip(fields[0::3], fields[1::3], fields[2::3]):
        if name.lower() in ("species", "element"):
            return column
        column += int(count)
    raise ValueError(f"{where}: Properties={':'.join(fields)} names no species column")


def extxyz_species(path: str | Path) -> dict[str, int]:
    """The species of an (extended) XYZ file, each with the index of the first frame that holds it.

    Only the atom count, the comment line and the species column are read, so a large file is
    scanned in about a second per million atoms.

    Raises
    ------
    ValueError
        For a file that is not XYZ (an atom count that is not an integer, a truncated frame).
    """
    path = Path(path)
    found: dict[str, int] = {}
    with path.open() as fh:
        frame = 0
        for line in fh:
            if not line.strip():
                continue
            where = f"{path} frame {frame}"
            try:
                n_atoms = int(line.split()[0])
            except ValueError:
                raise ValueError(f"{where}: expected an atom count, found {line.strip()[:60]!r}") from None
            column = _species_column(next(fh, ""), where)
            for _ in range(n_atoms):
                atom = next(fh, None)
                if atom is None:
                    raise ValueError(f"{where}: the file ends inside the frame ({n_atoms} atoms announced)")
                symbol = atom.split()[column]
                if symbol not in found:
                    found[symbol] = frame
            frame += 1
    if not found:
        raise ValueError(f"{path} holds no frames")
    return found


def normalise_frame(atoms: Atoms, where: str, species: Collection[str]) -> Atoms:
    """Copy of a frame with ``energy`` (from energy or free_energy) and ``forces`` on a SinglePointCalculator.

    Parameters
    ----------
    atoms
        A frame as ase reads it (labels on its calculator, in ``info`` or in ``arrays``).
    where
        Where the frame comes from, for error messages.
    species
        The species allowed in the frame.
    """
    from ase import Atoms  # noqa: PLC0415
    from ase.calculators.singlepoint import SinglePointCalculator  # noqa: PLC0415

    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    sources = [results, atoms.info, atoms.arrays]
    energy = next((src[k] for k in ("energy", "free_energy") for src in sources if k in src), None)
    forces = next((src[k] for k in ("forces", "force") for src in sources if k in src), None)
    if energy is None or forces is None:
        raise ValueError(
            f"{where}: a frame lacks {'an energy (energy or free_energy)' if energy is None else 'forces'}; "
            f"found calculator results {sorted(results)}, info {sorted(atoms.info)}, arrays {sorted(atoms.arrays)}"
        )
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (len(atoms), 3):
        raise ValueError(f"{where}: forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    unknown = sorted(set(out.get_chemical_symbols()) - set(species))
    if unknown:
        raise ValueError(f"{where}: species {unknown} are not in {list(species)}")
    out.calc = SinglePointCalculator(out, energy=float(energy), forces=forces)
    return out


def read_labelled_frames(path: str | Path, species: Collection[str]) -> list[Atoms]:
    """Every frame of an extended XYZ file, labels normalised by :func:`normalise_frame`."""
    import ase.io  # noqa: PLC0415

    path = Path(path)
    frames = ase.io.read(path, index=":", format="extxyz")
    if not frames:
        raise ValueError(f"{path} holds no frames")
    return [normalise_frame(a, f"{path} frame {i}", species) for i, a in enumerate(frames)]
