"""Minimum interatomic distances per species pair under periodic boundaries (the paper's r_p^n of
Eq. 8 and the minimum-distance columns of Table A4), per snapshot of a trajectory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .dump import Snapshot

__all__ = ["min_pair_distances", "snapshot_observables"]

logger = logging.getLogger(__name__)

_INITIAL_CUTOFF_FACTOR = 1.2
_MIN_CUTOFF_A = 0.5


# --------------------------------------------------------------------------------------------
# Minimum distances
# --------------------------------------------------------------------------------------------
def min_pair_distances(
    positions: np.ndarray,
    types: np.ndarray,
    cell: np.ndarray,
    pbc: Sequence[bool] | np.ndarray = (True, True, True),
    *,
    pairs: Sequence[tuple[int, int]],
    start_cutoff_A: Sequence[float] | None = None,
    growth: float = 1.5,
) -> np.ndarray:
    """Minimum interatomic distance of each species pair under periodic boundary conditions.

    A cell-list neighbour search (matscipy, O(N)) with a per-pair cutoff; a pair that has no
    neighbour within its cutoff is searched again with the cutoff multiplied by ``growth`` until
    found. Periodic images count, including an atom's own image (the only same-species distance of a
    cell with one atom of that species). Works for triclinic cells and for 10^5 atoms.

    Parameters
    ----------
    positions
        Cartesian positions, shape [N, 3], Å. Atoms outside the cell are wrapped along periodic
        directions.
    types
        LAMMPS atom types, shape [N], int.
    cell
        Lattice vectors as rows, shape [3, 3], Å.
    pbc
        Periodicity per direction, shape [3].
    pairs
        LAMMPS type pairs ``(a, b)`` (:attr:`~gnnff_stability.settings.MaterialSettings.pairs`).
    start_cutoff_A
        First search radius per pair, Å (e.g. 1.15 × the previous snapshot's minima). Default:
        1.2 × ``(V / max(N_a, N_b))^(1/3)``, the mean spacing of the more numerous species.
    growth
        Factor applied to the radius of a pair not yet found (> 1).

    Returns
    -------
    numpy.ndarray
        Minimum distances, shape [len(pairs)], Å. NaN for a pair with an absent species, or for
        every pair when a position is not finite.
    """
    from matscipy.neighbours import neighbour_list  # noqa: PLC0415

    positions = np.asarray(positions, dtype=float)
    types = np.asarray(types)
    cell = np.asarray(cell, dtype=float)
    pbc = np.asarray(pbc, dtype=bool)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape [N, 3], got {positions.shape}")
    if types.shape != (positions.shape[0],):
        raise ValueError(f"types must have shape [{positions.shape[0]}], got {types.shape}")
    if cell.shape != (3, 3):
        raise ValueError(f"cell must have shape [3, 3], got {cell.shape}")
    if pbc.shape != (3,):
        raise ValueError(f"pbc must have 3 entries, got {pbc.shape}")
    if growth <= 1.0:
        raise ValueError(f"growth must be > 1, got {growth}")
    result = np.full(len(pairs), np.nan)
    if not np.all(np.isfinite(positions)):
        return result
    volume = abs(float(np.linalg.det(cell)))
    if not np.isfinite(volume) or volume <= 0.0:
        raise ValueError(f"cell has zero or non-finite volume {volume}: {cell.tolist()}")

    # Wrap along periodic directions (matscipy does as well; doing it here keeps huge
    # coordinates of a blown-up run from reaching the cell lists).
    frac = np.linalg.solve(cell.T, positions.T).T
    frac[:, pbc] -= np.floor(frac[:, pbc])
    positions = frac @ cell

    counts = {int(t): int(c) for t, c in zip(*np.unique(types, return_counts=True))}
    lengths = np.linalg.norm(cell, axis=1)
    # the diagonal of the atoms' bounding box: no two atoms are farther apart along open directions
    span = float(np.linalg.norm(np.ptp(positions, axis=0))) if positions.shape[0] else 0.0
    bound = float(lengths.sum()) * 1.01 + (span if not pbc.all() else 0.0) + 1e-6

    numbers = types.astype(np.int32)
    for k, (a, b) in enumerate(pairs):
        na, nb = counts.get(a, 0), counts.get(b, 0)
        if na == 0 or nb == 0 or (a == b and na == 1 and not pbc.any()):
            continue
        if start_cutoff_A is not None and np.isfinite(start_cutoff_A[k]) and start_cutoff_A[k] > 0:
            cut = float(start_cutoff_A[k])
        else:
            n_ref = na if a == b else na + nb
            cut = _INITIAL_CUTOFF_FACTOR * (volume / n_ref) ** (1.0 / 3.0)
        cut = max(min(cut, bound), _MIN_CUTOFF_A)
        # Same species: search the subset of that species only (cheaper cell lists).
        sub = positions[numbers == a] if a == b else positions
        while True:
            if a == b:
                d = neighbour_list("d", positions=sub, cell=cell, pbc=pbc, cutoff=cut)
            else:
                d = neighbour_list("d", positions=sub, cell=cell, pbc=pbc, numbers=numbers,
                                   cutoff={(a, b): cut})
            if d.size:
                result[k] = float(d.min())
                break
            if cut >= bound:
                logger.warning("no %s pair found within %.1f Å; reporting NaN", pairs[k], bound)
                break
            cut = min(cut * growth, bound)
    return result


def snapshot_observables(snapshots: Iterable[Snapshot], *, pairs: Sequence[tuple[int, int]],
                         pair_names: Sequence[str]) -> pd.DataFrame:
    """Per-snapshot quantities needed by the stability index, streaming over a trajectory.

    Parameters
    ----------
    snapshots
        Snapshots in step order (e.g. a :class:`~gnnff_stability.analysis.dump.DumpReader`).
    pairs, pair_names
        LAMMPS type pairs and their names in the columns, in the same order
        (:attr:`~gnnff_stability.settings.MaterialSettings.pairs` and ``.pair_names``).

    Returns
    -------
    pandas.DataFrame
        One row per snapshot: ``step``, ``natoms``, ``rmin_<pair>`` per name of ``pair_names`` (Å),
        ``fmax_eV_per_A`` (largest per-atom force norm, NaN without forces), ``finite`` (all
        positions finite).
    """
    pairs = [(int(a), int(b)) for a, b in pairs]
    pair_names = list(pair_names)
    if len(pairs) != len(pair_names):
        raise ValueError(f"pairs {pairs} and pair_names {pair_names} must have the same length")
    rows = []
    hint: np.ndarray | None = None
    for snap in snapshots:
        start = None if hint is None else 1.15 * hint + 0.05
        rmin = min_pair_distances(snap.positions, snap.types, snap.cell, snap.pbc, pairs=pairs,
                                  start_cutoff_A=start)
        if np.all(np.isfinite(rmin)):
            hint = rmin
        fmax = np.nan
        if snap.forces is not None and snap.n_atoms:
            with np.errstate(over="ignore", invalid="ignore"):
                norms = np.linalg.norm(snap.forces, axis=1)
            fmax = float(np.inf) if not np.all(np.isfinite(norms)) else float(norms.max())
        row = {"step": snap.step, "natoms": snap.n_atoms}
        row.update({f"rmin_{name}": float(r) for name, r in zip(pair_names, rmin)})
        row["fmax_eV_per_A"] = fmax
        row["finite"] = bool(np.all(np.isfinite(snap.positions)))
        rows.append(row)
        logger.debug("snapshot step %d: rmin %s", snap.step, rmin)
    columns = ["step", "natoms", *(f"rmin_{n}" for n in pair_names), "fmax_eV_per_A", "finite"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------
# Terms of s_n
