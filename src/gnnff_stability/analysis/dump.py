"""Streaming reader for LAMMPS ``dump custom`` trajectories and the MD engines' ``thermo.csv``.

The dump format is the one both MD engines write (see the project contract)::

    dump d all custom <N> dump.lammpstrj id type x y z fx fy fz
    dump_modify d sort id format float %.10g

Orthogonal boxes (``ITEM: BOX BOUNDS pp pp pp``), restricted triclinic boxes
(``ITEM: BOX BOUNDS xy xz yz pp pp pp``) and general triclinic boxes
(``ITEM: BOX BOUNDS abc origin pp pp pp``) are understood. Positions may be given as wrapped
(``x y z``), unwrapped (``xu yu zu``) or scaled (``xs ys zs`` / ``xsu ysu zsu``) columns.

A trajectory of a crashed MD run can end in the middle of a snapshot. :class:`DumpReader` yields
every complete snapshot and then sets :attr:`DumpReader.truncated`; a malformed snapshot that is
*not* the last one is an error.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

__all__ = [
    "THERMO_COLUMNS",
    "DumpReader",
    "Snapshot",
    "iter_dump",
    "lammps_box_to_cell",
    "read_thermo",
]

logger = logging.getLogger(__name__)


#: Columns of ``thermo.csv`` written by the MD engines.
THERMO_COLUMNS: tuple[str, ...] = (
    "step",
    "temp_K",
    "pe_eV",
    "ke_eV",
    "etotal_eV",
    "natoms",
    "fmax_eV_per_A",
)

_POSITION_COLUMNS: tuple[tuple[tuple[str, str, str], bool], ...] = (
    (("x", "y", "z"), False),
    (("xu", "yu", "zu"), False),
    (("xs", "ys", "zs"), True),
    (("xsu", "ysu", "zsu"), True),
)


@dataclass(frozen=True)
class Snapshot:
    """One frame of a LAMMPS dump, sorted by atom id.

    Attributes
    ----------
    step
        MD step number (``ITEM: TIMESTEP``).
    cell
        Lattice vectors as rows, shape [3, 3], Å (ase convention: ``cell[0]`` is **a**).
    origin
        Lower corner of the LAMMPS box, shape [3], Å. ``positions`` are relative to it.
    pbc
        Periodicity per direction, shape [3] (``pp`` is periodic, ``ff``/``fs``/``sm``... are not).
    ids
        LAMMPS atom ids, shape [N], int.
    types
        LAMMPS atom types (1-based, type ``t`` is the material's ``species[t - 1]``), shape [N], int.
    positions
        Cartesian positions relative to ``origin``, shape [N, 3], Å. Not wrapped: atoms may lie
        outside the cell, and may be non-finite in a crashed run.
    forces
        Forces, shape [N, 3], eV/Å, or ``None`` when the dump has no ``fx fy fz`` columns.
    velocities
        Velocities, shape [N, 3], Å/ps, or ``None`` when the dump has no ``vx vy vz`` columns.
    """

    step: int
    cell: np.ndarray
    origin: np.ndarray
    pbc: np.ndarray
    ids: np.ndarray
    types: np.ndarray
    positions: np.ndarray
    forces: np.ndarray | None = None
    velocities: np.ndarray | None = None

    @property
    def n_atoms(self) -> int:
        """Number of atoms in the snapshot."""
        return int(self.ids.shape[0])

    def symbols(self, species: Sequence[str]) -> list[str]:
        """Chemical symbols from LAMMPS types (type ``t`` is ``species[t - 1]``)."""
        if self.types.size and (self.types.min() < 1 or self.types.max() > len(species)):
            raise ValueError(
                f"atom types {sorted(set(self.types.tolist()))} do not fit species {list(species)} "
                f"(type t maps to species[t-1])"
            )
        return [species[t - 1] for t in self.types]

    def to_atoms(self, species: Sequence[str]):
        """Return an :class:`ase.Atoms` with positions, cell, pbc and (if present) forces; type ``t`` is
        ``species[t - 1]`` (:attr:`~gnnff_stability.settings.MaterialSettings.species`)."""
        from ase import Atoms  # noqa: PLC0415
        from ase.calculators.singlepoint import SinglePointCalculator  # noqa: PLC0415

        atoms = Atoms(
            symbols=self.symbols(species),
            positions=self.positions,
            cell=self.cell,
            pbc=self.pbc,
        )
        if self.forces is not None:
            atoms.calc = SinglePointCalculator(atoms, forces=self.forces)
        return atoms


def lammps_box_to_cell(
    bounds: np.ndarray, tilts: tuple[float, float, float] = (0.0, 0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Convert the bounding box LAMMPS writes in a dump to lattice vectors and origin.

    Parameters
    ----------
    bounds
        ``[[xlo_bound, xhi_bound], [ylo_bound, yhi_bound], [zlo_bound, zhi_bound]]``, shape [3, 2], Å.
        For a triclinic box these are the *bounding* box bounds LAMMPS writes, not xlo/xhi.
    tilts
        ``(xy, xz, yz)`` tilt factors, Å (zero for an orthogonal box).

    Returns
    -------
    cell, origin
        Lattice vectors as rows, shape [3, 3], and the box origin ``(xlo, ylo, zlo)``, shape [3], Å.
    """
    bounds = np.asarray(bounds, dtype=float)
    if bounds.shape != (3, 2):
        raise ValueError(f"bounds must have shape (3, 2), got {bounds.shape}")
    xy, xz, yz = (float(t) for t in tilts)
    xlo = bounds[0, 0] - min(0.0, xy, xz, xy + xz)
    xhi = bounds[0, 1] - max(0.0, xy, xz, xy + xz)
    ylo = bounds[1, 0] - min(0.0, yz)
    yhi = bounds[1, 1] - max(0.0, yz)
    zlo, zhi = bounds[2]
    cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])
    return cell, np.array([xlo, ylo, zlo])


class _Truncated(Exception):
    """Raised internally when the file ends inside a snapshot."""


class DumpReader:
    """Iterate over the complete snapshots of a LAMMPS dump file, streaming.

    Parameters
    ----------
    path
        The ``dump.lammpstrj`` file.

    Attributes
    ----------
    truncated
        ``True`` once iteration found an incomplete last snapshot (set after iteration ends).
    n_complete
        Number of complete snapshots yielded so far.

    Examples
    --------
    >>> reader = DumpReader("dump.lammpstrj")  # doctest: +SKIP
    >>> steps = [snap.step for snap in reader]  # doctest: +SKIP
    >>> reader.truncated  # doctest: +SKIP
    False
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.truncated = False
        self.n_complete = 0

    def __iter__(self) -> Iterator[Snapshot]:
        self.truncated = False
        self.n_complete = 0
        with open(self.path, encoding="ascii", errors="replace") as fh:
            while True:
                try:
                    snap = _read_snapshot(fh)
                except _Truncated as exc:
                    self.truncated = True
                    logger.warning(
                        "%s ends inside a snapshot (%s); kept %d complete snapshot(s)",
                        self.path,
                        exc,
                        self.n_complete,
                    )
                    return
                if snap is None:
                    return
                self.n_complete += 1
                yield snap


def iter_dump(path: str | Path) -> Iterator[Snapshot]:
    """Yield the complete snapshots of a dump (a truncated last snapshot is logged and skipped).

    Use :class:`DumpReader` directly to learn whether the file was truncated.
    """
    yield from DumpReader(path)


def _next_line(fh: IO[str], what: str) -> str:
    line = fh.readline()
    if not line:
        raise _Truncated(f"end of file while reading {what}")
    if not line.endswith("\n"):
        raise _Truncated(f"incomplete last line while reading {what}")
    return line


def _read_snapshot(fh: IO[str]) -> Snapshot | None:
    # Skip blank lines between snapshots; a clean end of file returns None.
    while True:
        line = fh.readline()
        if not line:
            return None
        if line.strip():
            break
    if not line.endswith("\n"):
        raise _Truncated("incomplete header line")
    if not line.startswith("ITEM: TIMESTEP"):
        raise ValueError(f"expected 'ITEM: TIMESTEP' at the start of a snapshot, found {line!r}")
    try:
        step = int(_next_line(fh, "the timestep").split()[0])
    except (IndexError, ValueError) as exc:
        raise ValueError("malformed timestep line in dump") from exc

    header = _next_line(fh, "the atom-count header")
    if not header.startswith("ITEM: NUMBER OF ATOMS"):
        raise ValueError(f"expected 'ITEM: NUMBER OF ATOMS', found {header!r}")
    n_atoms = int(_next_line(fh, "the atom count").split()[0])

    box_header = _next_line(fh, "the box header")
    if not box_header.startswith("ITEM: BOX BOUNDS"):
        raise ValueError(f"expected 'ITEM: BOX BOUNDS', found {box_header!r}")
    words = box_header.split()[3:]
    flags = [w for w in words if w not in ("xy", "xz", "yz", "abc", "origin")]
    pbc = np.array([f == "pp" for f in flags[:3]] + [True] * (3 - len(flags[:3])), dtype=bool)
    rows = np.array(
        [[float(v) for v in _next_line(fh, "the box bounds").split()] for _ in range(3)]
    )
    if "abc" in words:  # general triclinic: rows are (ax ay az ox), (bx by bz oy), (cx cy cz oz)
        cell = rows[:, :3].copy()
        origin = rows[:, 3].copy()
    elif "xy" in words:
        cell, origin = lammps_box_to_cell(rows[:, :2], (rows[0, 2], rows[1, 2], rows[2, 2]))
    else:
        cell, origin = lammps_box_to_cell(rows[:, :2])

    atoms_header = _next_line(fh, "the atoms header")
    if not atoms_header.startswith("ITEM: ATOMS"):
        raise ValueError(f"expected 'ITEM: ATOMS', found {atoms_header!r}")
    columns = atoms_header.split()[2:]

    lines = list(itertools.islice(fh, n_atoms))
    if len(lines) < n_atoms:
        raise _Truncated(f"step {step}: {len(lines)} of {n_atoms} atom lines")
    if n_atoms and not lines[-1].endswith("\n"):
        raise _Truncated(f"step {step}: incomplete last atom line")
    try:
        table = np.loadtxt(lines, ndmin=2) if n_atoms else np.zeros((0, len(columns)))
    except ValueError as exc:
        # A malformed line is tolerated only at the very end of the file.
        if not fh.read(1):
            raise _Truncated(f"step {step}: malformed atom line at end of file") from exc
        raise ValueError(f"malformed atom line in dump at step {step}") from exc
    if table.shape[1] != len(columns):
        raise ValueError(
            f"step {step}: atom lines have {table.shape[1]} values but the header names "
            f"{len(columns)} columns {columns}"
        )
    return _build_snapshot(step, cell, origin, pbc, columns, table)


def _build_snapshot(
    step: int,
    cell: np.ndarray,
    origin: np.ndarray,
    pbc: np.ndarray,
    columns: list[str],
    table: np.ndarray,
) -> Snapshot:
    index = {name: k for k, name in enumerate(columns)}
    for required in ("id", "type"):
        if required not in index:
            raise ValueError(f"dump has no '{required}' column (columns: {columns})")
    ids = table[:, index["id"]].astype(np.int64)
    order = np.argsort(ids, kind="stable")
    table = table[order]
    ids = ids[order]
    types = table[:, index["type"]].astype(np.int64)

    positions = None
    for names, scaled in _POSITION_COLUMNS:
        if all(n in index for n in names):
            xyz = table[:, [index[n] for n in names]]
            positions = xyz @ cell if scaled else xyz - origin
            break
    if positions is None:
        raise ValueError(f"dump has no position columns (x y z, xu yu zu, xs ys zs); got {columns}")

    def _vec(names: tuple[str, str, str]) -> np.ndarray | None:
        if all(n in index for n in names):
            return np.ascontiguousarray(table[:, [index[n] for n in names]])
        return None

    return Snapshot(
        step=step,
        cell=cell,
        origin=origin,
        pbc=pbc,
        ids=ids,
        types=types,
        positions=np.ascontiguousarray(positions),
        forces=_vec(("fx", "fy", "fz")),
        velocities=_vec(("vx", "vy", "vz")),
    )


def read_thermo(path: str | Path) -> pd.DataFrame:
    """Read an MD engine's ``thermo.csv``.

    Parameters
    ----------
    path
        CSV with the columns :data:`THERMO_COLUMNS` (step, temp_K, pe_eV, ke_eV, etotal_eV, natoms,
        fmax_eV_per_A); one row per thermo output, step 0 included.

    Returns
    -------
    pandas.DataFrame
        Rows sorted by step (duplicate steps keep the last row), ``step`` and ``natoms`` as int,
        the rest as float (non-finite values kept, e.g. ``inf`` temperatures of a crash).
    """
    df = pd.read_csv(path)
    missing = [c for c in ("step", "temp_K") if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: thermo.csv lacks column(s) {missing}; expected {list(THERMO_COLUMNS)}, "
            f"found {list(df.columns)}"
        )
    for col in df.columns:
        if col != "step":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["step"] = pd.to_numeric(df["step"], errors="raise").astype(np.int64)
    df = df.drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)
    return df
