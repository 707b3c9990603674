"""Start cells of any material: the crystal of ``material.structure``, seeded depletion along
``material.ood``, LAMMPS data and extended XYZ writers.

Every cell is returned in the LAMMPS orientation (a lower-triangular cell matrix: **a** along x, **b** in
the xy plane) with its atoms sorted by the material's species order (type 1 first). The LAMMPS data file
and the extended XYZ file of a cell therefore hold the same coordinates, atom for atom (atom id ``i + 1``
is row ``i`` of the ``Atoms``).

Builders (``material.structure.builder``):

``hfo2``
    An HfO2 polymorph (:mod:`.hfo2`; the paper's monoclinic cell by default).
``bulk``
    ``ase.build.bulk`` of the material's formula (its species joined, e.g. ``SiC``) with ``prototype``
    (e.g. ``zincblende``) and the cubic lattice constant ``a_A``, as its conventional cubic cell.
``file``
    A unit cell read by ``ase.io.read`` from ``file``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from gnnff_stability.settings import CombSettings, CrystalSettings, MaterialSettings, StructureSettings

__all__ = [
    "build_cell",
    "build_crystal",
    "composition",
    "remove_species",
    "sort_by_species",
    "stoichiometric_ratio",
    "supercell_of",
    "to_lammps_frame",
    "unit_cell",
    "write_extxyz",
    "write_lammps_data",
]

logger = logging.getLogger(__name__)


def sort_by_species(atoms: Atoms, species: Sequence[str]) -> Atoms:
    """The atoms reordered by species (in ``species`` order, stable within a species).

    Raises
    ------
    ValueError
        Naming any species of ``atoms`` that is not in ``species``.
    """
    order = {s: i for i, s in enumerate(species)}
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(order))
    if unknown:
        raise ValueError(f"species {unknown} are not in the material's species {list(species)}")
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


def supercell_of(atoms: Atoms, supercell: Sequence[int], species: Sequence[str]) -> Atoms:
    """``atoms`` repeated ``supercell`` times, sorted by ``species``, in the LAMMPS orientation."""
    reps = tuple(int(n) for n in supercell)
    if len(reps) != 3 or any(n < 1 for n in reps) or any(n != s for n, s in zip(reps, supercell)):
        raise ValueError(f"supercell must be three integers >= 1, got {list(supercell)}")
    return to_lammps_frame(sort_by_species(atoms.repeat(reps), species))


def unit_cell(crystal: CrystalSettings, species: Sequence[str]) -> Atoms:
    """The unit cell ``material.structure`` describes (not yet repeated), any orientation.

    Raises
    ------
    ValueError
        For a builder whose required keys are missing, or a cell with a species outside ``species``.
    """
    if crystal.builder == "hfo2":
        from .hfo2 import build_phase  # noqa: PLC0415

        atoms = build_phase(crystal.phase, (1, 1, 1))
    elif crystal.builder == "bulk":
        if crystal.prototype is None or crystal.a_A is None:
            raise ValueError(
                "material.structure: builder 'bulk' needs `prototype` (ase.build.bulk's crystalstructure, e.g. "
                f"zincblende) and `a_A` (Å); got prototype {crystal.prototype!r}, a_A {crystal.a_A!r}"
            )
        from ase.build import bulk  # noqa: PLC0415

        try:
            atoms = bulk("".join(species), crystal.prototype, a=float(crystal.a_A), cubic=True)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ValueError(
                f"material.structure: ase.build.bulk({''.join(species)!r}, {crystal.prototype!r}, "
                f"a={crystal.a_A}, cubic=True) failed: {exc}"
            ) from None
    elif crystal.builder == "file":
        if not crystal.file or not Path(crystal.file).is_file():
            raise ValueError(f"material.structure.file: {crystal.file!r} is not a file (looked in {Path.cwd()})")
        import ase.io  # noqa: PLC0415

        read = ase.io.read(crystal.file)  # the last frame of a multi-frame file
        atoms = read[-1] if isinstance(read, list) else read
    else:  # the schema allows no other value
        raise ValueError(f"material.structure.builder {crystal.builder!r}; allowed: hfo2, bulk, file")
    sort_by_species(atoms, species)  # names a species outside the material
    return atoms


def build_crystal(material: MaterialSettings, supercell: Sequence[int]) -> Atoms:
    """The material's undepleted crystal repeated ``supercell`` times (LAMMPS orientation, sorted)."""
    return supercell_of(unit_cell(material.structure, material.species), supercell, material.species)


def composition(atoms: Atoms) -> dict[str, int]:
    """Atoms per species."""
    symbols = atoms.get_chemical_symbols()
    return {s: symbols.count(s) for s in dict.fromkeys(symbols)}


def stoichiometric_ratio(material: MaterialSettings) -> float:
    """The undepleted crystal's ratio along ``material.ood``: atoms of ``remove`` per atom of ``per``
    (2.0 for HfO2, 1.0 for SiC).

    Raises
    ------
    ValueError
        When the crystal has no atom of ``per`` or of ``remove``.
    """
    counts = composition(unit_cell(material.structure, material.species))
    remove, per = material.ood.remove, material.ood.per
    if counts.get(per, 0) == 0 or counts.get(remove, 0) == 0:
        raise ValueError(
            f"material.ood: the start crystal holds {counts}; it needs atoms of remove={remove!r} and "
            f"per={per!r}"
        )
    return counts[remove] / counts[per]


def remove_species(atoms: Atoms, remove: str, per: str, ratio: float, seed: int | np.random.Generator) -> Atoms:
    """Remove randomly chosen ``remove`` atoms until the cell has ``round(ratio * n_per)`` of them.

    For HfO2 (remove O, per Hf) with 32 Hf: 1.10 keeps 35 O, 1.55 keeps 50 O, 2.00 keeps all 64. Halves
    round up.

    Parameters
    ----------
    atoms
        The cell.
    remove, per
        Species removed, and the species the ratio counts against.
    ratio
        Target ratio ``n_remove / n_per``. It must keep at least one ``remove`` atom and no more than the
        cell has.
    seed
        Seed (or generator) of ``np.random.default_rng`` that picks the removed atoms.

    Returns
    -------
    ase.Atoms
        A copy without the removed atoms; the kept atoms keep their relative order.

    Raises
    ------
    ValueError
        Naming the ratio and the range the cell allows.
    """
    symbols = np.array(atoms.get_chemical_symbols())
    n_per = int(np.count_nonzero(symbols == per))
    r_idx = np.flatnonzero(symbols == remove)
    n_r = r_idx.size
    if n_per == 0 or n_r == 0:
        raise ValueError(f"the cell needs {per} and {remove} atoms, found {n_per} {per} and {n_r} {remove}")
    try:
        value = float(ratio)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ratio must be a number, got {ratio!r}") from exc
    lo, hi = 0.5 / n_per, n_r / n_per
    allowed = (
        f"allowed: finite values that keep between 1 and {n_r} {remove} atoms for {n_per} {per}, "
        f"i.e. {lo:.4g} <= ratio < {hi + 0.5 / n_per:.4g}"
    )
    if not math.isfinite(value):
        raise ValueError(f"ratio {remove}/{per} = {ratio!r} is not finite; {allowed}")
    n_keep = int(math.floor(value * n_per + 0.5))
    if n_keep < 1 or n_keep > n_r:
        raise ValueError(f"ratio {remove}/{per} = {value:g} asks for {n_keep} {remove} atoms; {allowed}")
    rng = np.random.default_rng(seed)
    removed = rng.choice(r_idx, size=n_r - n_keep, replace=False)
    keep = np.setdiff1d(np.arange(len(atoms)), removed)
    logger.info("removed %d of %d %s atoms (%s/%s %.3f -> %d %s)", removed.size, n_r, remove, remove, per,
                value, n_keep, remove)
    return atoms[keep]


def write_lammps_data(atoms: Atoms, path: str | Path, species: Sequence[str], masses: Mapping[str, float]) -> Path:
    """Write a LAMMPS data file (``atom_style atomic``, type ``i + 1`` = ``species[i]``, with Masses).

    Every species is declared in the header and the Masses section whatever the cell holds. The box is
    triclinic (``xy xz yz`` line) unless the cell is orthogonal. Written by
    ``ase.io.write(format="lammps-data")``; the masses are then set to exactly ``masses`` (amu).

    Parameters
    ----------
    atoms
        The cell, any orientation (ase rotates it into the LAMMPS box).
    path
        Output file.
    species
        Species in LAMMPS type order.
    masses
        Mass of each species, amu.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    import ase.io  # noqa: PLC0415

    path = Path(path)
    sort_by_species(atoms, species)  # checks the species
    path.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(
        path, atoms, format="lammps-data", specorder=list(species), masses=True, atom_style="atomic"
    )
    text = path.read_text()
    # ase writes the masses after a unit conversion (178.48999995...); write the exact values.
    for itype, symbol in enumerate(species, start=1):
        text, n = re.subn(
            rf"(?m)^[ \t]*{itype}[ \t]+\S+([ \t]+#[ \t]*{symbol})[ \t]*$", f"{itype} {masses[symbol]}\\1", text
        )
        if n != 1:
            raise RuntimeError(f"could not find the mass line of type {itype} ({symbol}) in {path}")
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
    ratio: float,
    cell_seed: int,
    settings: StructureSettings,
    material: MaterialSettings,
    data_path: str | Path,
    xyz_path: str | Path,
    comb: CombSettings | None = None,
) -> Atoms:
    """Build an MD start cell: the material's crystal supercell depleted to ``ratio``, both files written.

    Parameters
    ----------
    ratio
        Ratio along ``material.ood`` (HfO2: O per Hf; the undepleted crystal's ratio is the
        in-distribution cell).
    cell_seed
        Seed of the depletion (the grid's ``cell_seed``).
    settings
        The ``structures`` block: supercell of the crystal ((2, 2, 2) of HfO2's monoclinic cell: 96 atoms),
        and whether to relax the cell with the reference potential first.
    material
        The ``material`` block.
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
    atoms = remove_species(build_crystal(material, supercell), material.ood.remove, material.ood.per, ratio, seed)
    atoms.info["ratio"] = float(ratio)
    atoms.info["seed"] = seed
    if settings.relax == "comb":
        if comb is None:
            raise ValueError("structures.relax is 'comb': the data.comb settings are needed")
        from .relax import relax_with_comb  # noqa: PLC0415 (LAMMPS only when asked for)

        atoms, summary = relax_with_comb(atoms, comb, settings.relax_fmax_eV_per_A,
                                         settings.relax_max_steps)
        atoms.info.update({f"relax_{k}": v for k, v in summary.items()})
    write_lammps_data(atoms, data_path, material.species, material.masses)
    write_extxyz(atoms, xyz_path)
    logger.info(
        "built %s cell %s/%s %.2f: %d atoms %s, supercell %s, seed %d, relax %s -> %s, %s",
        material.name, material.ood.remove, material.ood.per, ratio, len(atoms), composition(atoms),
        list(supercell), seed, settings.relax, data_path, xyz_path,
    )
    return atoms
