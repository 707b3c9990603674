"""Stability index S_index of an MD run (the paper's Eqs. 7-8) and the physical values of Table A4.

For the snapshots ``n = 1 .. num`` written every ``dump_every`` steps (``num = steps_planned //
dump_every``), the per-snapshot score is

.. math::

    s_n = \\Big(\\frac{N_n}{N_0}\\Big)^{\\alpha}
          \\cdot \\tau(T_n)^{\\beta}
          \\cdot \\prod_{p} \\frac{\\min(r_p^n, r_p^{n-1})}{\\max(r_p^n, r_p^{n-1})}

with ``N`` the atom count, ``T_n`` the instantaneous temperature at the snapshot's step (from
``thermo.csv``), ``r_p^n`` the minimum distance between atoms of species pair ``p`` (Hf-Hf, Hf-O,
O-O) under periodic boundary conditions, and

.. math:: S_\\mathrm{index} = \\frac{1}{num} \\sum_{n=1}^{num} s_n ,

where snapshots never reached (the run crashed first) contribute 0.

Crashed runs
------------
The paper scores every run that crashed or lost atoms ``S_index = 0`` ("S_index = 0, which
indicating system crash because of lost atoms"): its NequIP baseline at 1:1.55 crashed at step 6698
and is 0, and its Allegro "fixed" run at 1:1.10 lost atoms without crashing and is 0 as well. That
is the default here (``crash_score: "zero"``). The sum above, with the credit a run earned before it
crashed, is kept as ``crash_score: "partial"`` (a run that crashed at step 6698 of 40,000 with
s_n ≈ 0.85 before would score about 66/400 × 0.85 ≈ 0.14). ``stability.json`` carries both:
``s_index`` under the configured rule, ``s_index_zero`` and ``s_index_partial``.

Temperature term
----------------
The paper writes the temperature factor as ``(T_set / T_n)^β`` and this project takes it literally
by default (``temp_term: "raw"``)::

    τ(T_n) = T_set / T_n

The paper's own numbers follow this form. Its in-distribution (1:2) values fit
``S = K · (1200 / T)^(1/4)`` with one constant ``K = 0.8597 ± 0.0001`` (NequIP 1262 K 0.8490,
Allegro 1259 K 0.8494 and 1266 K 0.8484, GemNet-T 1258 K 0.8496). With the literal factor and
Gaussian fluctuations of the instantaneous temperature (``sqrt(2 / 3N)`` ≈ 8 % for 96 atoms), the
mean of ``τ^β`` is ``(T_set / T_mean)^β`` times a constant, so K comes out the same at every mean
temperature; the symmetric reading below would let K drift by about 7e-4 between 1258 K and 1266 K,
several times the spread of the paper's values. The literal factor exceeds 1 for a snapshot colder
than the set point (about 30 % of a stable run's snapshots), so ``s_n`` and ``S_index`` are not
bounded by 1 under it.

The other readings are kept as options: ``"symmetric"`` (``min(T_set / T_n, T_n / T_set)``, which
keeps ``s_n`` in [0, 1] and penalises a run that freezes as well as one that overheats) and
``"clip"`` (``min(1, T_set / T_n)``). ``sn.csv`` stores the raw ratio ``T_set / T_n`` and every factor
separately, so another reading can be recomputed without rerunning the analysis.

Conventions for degenerate values (all make ``s_n`` smaller, never larger):
a non-finite or non-positive temperature gives ``τ = 0``; a non-finite or zero minimum distance
gives a pair factor of 0; a pair whose species is absent in both snapshots gives 1, absent in only
one of them 0.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnff_stability.settings import StabilitySettings
from gnnff_stability.species import PAIR_NAMES, PAIRS

from .dump import DumpReader, Snapshot, read_thermo

__all__ = [
    "CRASH_SCORES",
    "TEMP_TERMS",
    "min_pair_distances",
    "pair_ratio_terms",
    "read_data_atom_count",
    "crash_scored_s_index",
    "s_index",
    "score_run",
    "sn_table",
    "snapshot_observables",
    "temperature_term",
    "ttf_arena_fraction",
    "ttf_legato_steps",
]

logger = logging.getLogger(__name__)


#: Readings of the temperature factor (see the module docstring).
TEMP_TERMS: tuple[str, ...] = ("raw", "symmetric", "clip")
"""Readings of the temperature factor; the first (the paper's literal factor) is the default."""
#: How a run that crashed or lost atoms is scored (see the module docstring); the first is the default.
CRASH_SCORES: tuple[str, ...] = ("zero", "partial")
TTF_BAND_FRACTION = 0.75
"""Default half-width of the time-to-failure temperature band, as a fraction of T_set."""

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
    pairs: Sequence[tuple[int, int]] = PAIRS,
    start_cutoff_A: Sequence[float] | None = None,
    growth: float = 1.5,
) -> np.ndarray:
    """Minimum interatomic distance of each species pair under periodic boundary conditions.

    A cell-list neighbour search (matscipy, O(N)) with a per-pair cutoff; a pair that has no
    neighbour within its cutoff is searched again with the cutoff multiplied by ``growth`` until
    found. Periodic images count, including an atom's own image (the only O-O distance of a cell
    with one O atom). Works for triclinic cells and for 10^5 atoms.

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
        Type pairs ``(a, b)``; default Hf-Hf, Hf-O, O-O.
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
    span = float(np.ptp(positions, axis=0).max()) if positions.shape[0] else 0.0
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


def snapshot_observables(snapshots: Iterable[Snapshot]) -> pd.DataFrame:
    """Per-snapshot quantities needed by the stability index, streaming over a trajectory.

    Parameters
    ----------
    snapshots
        Snapshots in step order (e.g. a :class:`~gnnff_stability.analysis.dump.DumpReader`).

    Returns
    -------
    pandas.DataFrame
        One row per snapshot: ``step``, ``natoms``, ``rmin_HfHf``, ``rmin_HfO``, ``rmin_OO`` (Å),
        ``fmax_eV_per_A`` (largest per-atom force norm, NaN without forces), ``finite`` (all
        positions finite).
    """
    rows = []
    hint: np.ndarray | None = None
    for snap in snapshots:
        start = None if hint is None else 1.15 * hint + 0.05
        rmin = min_pair_distances(snap.positions, snap.types, snap.cell, snap.pbc,
                                  start_cutoff_A=start)
        if np.all(np.isfinite(rmin)):
            hint = rmin
        fmax = np.nan
        if snap.forces is not None and snap.n_atoms:
            with np.errstate(over="ignore", invalid="ignore"):
                norms = np.linalg.norm(snap.forces, axis=1)
            fmax = float(np.inf) if not np.all(np.isfinite(norms)) else float(norms.max())
        row = {"step": snap.step, "natoms": snap.n_atoms}
        row.update({f"rmin_{name}": float(r) for name, r in zip(PAIR_NAMES, rmin)})
        row["fmax_eV_per_A"] = fmax
        row["finite"] = bool(np.all(np.isfinite(snap.positions)))
        rows.append(row)
        logger.debug("snapshot step %d: rmin %s", snap.step, rmin)
    columns = ["step", "natoms", *(f"rmin_{n}" for n in PAIR_NAMES), "fmax_eV_per_A", "finite"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------
# Terms of s_n
# --------------------------------------------------------------------------------------------
def temperature_term(
    temp_K: np.ndarray | float, temp_set_K: float, beta: float, mode: str = "raw"
) -> np.ndarray:
    """Temperature factor of s_n, ``τ(T)^β`` (see the module docstring for ``mode``).

    Parameters
    ----------
    temp_K
        Instantaneous temperatures, any shape, K.
    temp_set_K
        Thermostat set point, K (> 0).
    beta
        Exponent β (the paper: 1/4).
    mode
        ``"raw"`` (default, the paper's ``T_set / T``), ``"symmetric"`` or ``"clip"``.

    Returns
    -------
    numpy.ndarray
        Same shape as ``temp_K``; 0 where the temperature is non-finite or ≤ 0.
    """
    if mode not in TEMP_TERMS:
        raise ValueError(f"temp_term must be one of {TEMP_TERMS}, got {mode!r}")
    if not temp_set_K > 0:
        raise ValueError(f"temp_set_K must be > 0, got {temp_set_K}")
    t = np.asarray(temp_K, dtype=float)
    good = np.isfinite(t) & (t > 0)
    safe = np.where(good, t, 1.0)
    ratio = temp_set_K / safe
    if mode == "symmetric":
        ratio = np.minimum(ratio, 1.0 / ratio)
    elif mode == "clip":
        ratio = np.minimum(ratio, 1.0)
    return np.where(good, ratio**beta, 0.0)


def pair_ratio_terms(r_now: np.ndarray, r_prev: np.ndarray) -> np.ndarray:
    """Per-pair factors ``min(r^n, r^{n-1}) / max(r^n, r^{n-1})``.

    Parameters
    ----------
    r_now, r_prev
        Minimum distances, shape [..., n_pairs], Å; NaN where a pair is absent or not finite.

    Returns
    -------
    numpy.ndarray
        Same shape; 1 where the pair is absent (NaN) in both, 0 where only one is NaN or a
        distance is ≤ 0.
    """
    a = np.asarray(r_now, dtype=float)
    b = np.asarray(r_prev, dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    good = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    lo = np.where(good, np.minimum(a, b), 0.0)
    hi = np.where(good, np.maximum(a, b), 1.0)
    return np.where(both_nan, 1.0, np.where(good, lo / hi, 0.0))


def sn_table(
    observables: pd.DataFrame,
    thermo: pd.DataFrame | None,
    *,
    temp_set_K: float,
    dump_every: int,
    steps_planned: int,
    n_atoms_initial: int | None = None,
    alpha: float,
    beta: float,
    temp_term: str,
) -> pd.DataFrame:
    """Per-snapshot score s_n and its factors, for the snapshots ``n = 1 .. num`` that were reached.

    Parameters
    ----------
    observables
        Output of :func:`snapshot_observables` (``step``, ``natoms``, ``rmin_*``); step 0 is the
        reference snapshot ``n = 0``.
    thermo
        ``thermo.csv`` as read by :func:`~gnnff_stability.analysis.dump.read_thermo`; the temperature of
        snapshot n is the thermo row at the same step (the nearest row within ``dump_every``
        steps if there is none, with a warning). ``None``: the temperature factor is 0.
    temp_set_K
        Thermostat set point, K.
    dump_every
        Steps between snapshots.
    steps_planned
        Steps the run should have made; ``num = steps_planned // dump_every``.
    n_atoms_initial
        ``N_0``; default the atom count of the step-0 snapshot.
    alpha, beta
        Exponents of the atom-count and temperature factors (paper: 1 and 1/4).
    temp_term
        Reading of the temperature factor, one of :data:`TEMP_TERMS`.

    Returns
    -------
    pandas.DataFrame
        Columns ``n, step, s_n, n_term, t_term, r_term, r_term_HfHf, r_term_HfO, r_term_OO,
        t_ratio_raw (T_set/T_n), rmin_HfHf, rmin_HfO, rmin_OO, temp_K, natoms``: one row per
        reached snapshot, in order of n.
    """
    if dump_every <= 0:
        raise ValueError(f"dump_every must be a positive number of steps, got {dump_every}")
    if steps_planned < dump_every:
        raise ValueError(
            f"steps_planned ({steps_planned}) must be at least dump_every ({dump_every})"
        )
    rcols = [f"rmin_{n}" for n in PAIR_NAMES]
    obs = observables.drop_duplicates("step", keep="last").set_index("step").sort_index()
    num = steps_planned // dump_every
    on_grid = obs.index[(obs.index % dump_every == 0) & (obs.index <= num * dump_every)]
    off_grid = obs.index.difference(on_grid)
    if len(off_grid):
        logger.info("ignoring %d snapshot(s) off the dump grid: steps %s", len(off_grid),
                    list(off_grid[:5]))
    steps = np.array(sorted(on_grid), dtype=np.int64)
    columns = ["n", "step", "s_n", "n_term", "t_term", "r_term",
               *(f"r_term_{p}" for p in PAIR_NAMES), "t_ratio_raw", *rcols, "temp_K", "natoms"]
    if steps.size == 0:
        return pd.DataFrame(columns=columns)
    if steps[0] != 0:
        raise ValueError(f"the dump has no step-0 snapshot (first on-grid step {steps[0]})")
    if n_atoms_initial is None:
        n_atoms_initial = int(obs.loc[0, "natoms"])
    if n_atoms_initial <= 0:
        raise ValueError(f"n_atoms_initial must be > 0, got {n_atoms_initial}")

    rmin = obs.loc[steps, rcols].to_numpy(dtype=float)
    natoms = obs.loc[steps, "natoms"].to_numpy(dtype=float)
    temps = _temperatures_at(thermo, steps[1:], dump_every)

    r_terms = pair_ratio_terms(rmin[1:], rmin[:-1])
    n_term = (natoms[1:] / n_atoms_initial) ** alpha
    t_term = temperature_term(temps, temp_set_K, beta, temp_term)
    r_term = np.prod(r_terms, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_raw = np.where(np.isfinite(temps) & (temps > 0), temp_set_K / temps, np.nan)
    table = pd.DataFrame(
        {
            "n": steps[1:] // dump_every,
            "step": steps[1:],
            "s_n": n_term * t_term * r_term,
            "n_term": n_term,
            "t_term": t_term,
            "r_term": r_term,
            **{f"r_term_{p}": r_terms[:, k] for k, p in enumerate(PAIR_NAMES)},
            "t_ratio_raw": t_raw,
            **{c: rmin[1:, k] for k, c in enumerate(rcols)},
            "temp_K": temps,
            "natoms": natoms[1:].astype(np.int64),
        },
        columns=columns,
    )
    n_reached = table["n"].to_numpy()
    gaps = np.setdiff1d(np.arange(1, int(n_reached.max(initial=0)) + 1), n_reached)
    if gaps.size:
        logger.warning("snapshots missing inside the run (n = %s); they score 0", gaps[:10])
    return table


def _temperatures_at(thermo: pd.DataFrame | None, steps: np.ndarray, dump_every: int) -> np.ndarray:
    if thermo is None or len(thermo) == 0 or steps.size == 0:
        return np.full(steps.shape, np.nan)
    tsteps = thermo["step"].to_numpy(dtype=np.int64)
    temps = thermo["temp_K"].to_numpy(dtype=float)
    pos = np.searchsorted(tsteps, steps)
    out = np.full(steps.shape, np.nan)
    n_near = n_missing = 0
    for k, (s, p) in enumerate(zip(steps, pos)):
        if p < tsteps.size and tsteps[p] == s:
            out[k] = temps[p]
            continue
        cands = [q for q in (p - 1, p) if 0 <= q < tsteps.size]
        best = min(cands, key=lambda q: abs(tsteps[q] - s)) if cands else None
        if best is not None and abs(tsteps[best] - s) <= dump_every:
            out[k] = temps[best]
            n_near += 1
        else:
            n_missing += 1
    if n_near:
        logger.warning("%d snapshot step(s) have no thermo row; used the nearest row", n_near)
    if n_missing:
        logger.warning("%d snapshot(s) without a temperature: their temperature factor is 0",
                       n_missing)
    return out


def s_index(sn: pd.DataFrame, n_planned: int) -> float:
    """``S_index = (1 / num) Σ_n s_n``; snapshots absent from ``sn`` (never reached) count as 0.

    Parameters
    ----------
    sn
        Output of :func:`sn_table` (column ``s_n``).
    n_planned
        ``num = steps_planned // dump_every`` (> 0).
    """
    if n_planned <= 0:
        raise ValueError(f"n_planned must be > 0, got {n_planned}")
    if len(sn) > n_planned:
        raise ValueError(f"{len(sn)} scored snapshots exceed the {n_planned} planned ones")
    values = sn["s_n"].to_numpy(dtype=float)
    return float(np.nan_to_num(values, nan=0.0).sum() / n_planned)


def crash_scored_s_index(s_partial: float, crashed: bool, atoms_lost: bool,
                         crash_score: str) -> float:
    """S_index of a run under a crash rule.

    Parameters
    ----------
    s_partial
        ``(1 / num) Σ s_n`` over the snapshots reached (:func:`s_index`).
    crashed, atoms_lost
        Whether the run crashed, and whether it lost atoms.
    crash_score
        ``"zero"`` (the paper: 0 for a run that crashed or lost atoms) or ``"partial"`` (keep
        ``s_partial``).
    """
    if crash_score not in CRASH_SCORES:
        raise ValueError(f"crash_score must be one of {CRASH_SCORES}, got {crash_score!r}")
    if crash_score == "zero" and (crashed or atoms_lost):
        return 0.0
    return float(s_partial)


# --------------------------------------------------------------------------------------------
# Metrics beyond the paper
# --------------------------------------------------------------------------------------------
def ttf_legato_steps(
    thermo: pd.DataFrame | None, temp_set_K: float, band_K: float, steps_done: int
) -> int:
    """Time to failure as Allegro-Legato defines it: steps until the temperature leaves the band.

    The first thermo step after step 0 whose temperature lies outside ``T_set ± band_K`` (or is
    not finite); ``steps_done`` if the temperature never leaves the band before the run ended.

    Parameters
    ----------
    thermo
        ``thermo.csv`` table (``step``, ``temp_K``); ``None`` gives 0.
    temp_set_K, band_K
        Set point and half-width of the band, K.
    steps_done
        Steps the run made (its last step).
    """
    if band_K <= 0:
        raise ValueError(f"ttf_band_K must be > 0, got {band_K}")
    if thermo is None or len(thermo) == 0:
        return 0
    t = thermo[(thermo["step"] > 0) & (thermo["step"] <= steps_done)]
    temps = t["temp_K"].to_numpy(dtype=float)
    out = ~np.isfinite(temps) | (np.abs(temps - temp_set_K) > band_K)
    if out.any():
        return int(t["step"].to_numpy()[np.argmax(out)])
    return int(steps_done)


def ttf_arena_fraction(steps_done: int, steps_planned: int) -> float:
    """MLIP Arena's stability measure: the fraction of the target steps the run completed."""
    if steps_planned <= 0:
        raise ValueError(f"steps_planned must be > 0, got {steps_planned}")
    return float(min(max(steps_done, 0), steps_planned) / steps_planned)


# --------------------------------------------------------------------------------------------
# One run, from files
# --------------------------------------------------------------------------------------------
def read_data_atom_count(path: str | Path) -> int:
    """Number of atoms declared in the header of a LAMMPS data file (``<N> atoms``)."""
    with open(path, encoding="ascii", errors="replace") as fh:
        next(fh, None)  # the first line is a comment
        for line in fh:
            words = line.split("#")[0].split()
            if len(words) == 2 and words[1] == "atoms":
                return int(words[0])
            if words and words[0][0].isalpha() and words[0] not in ("atoms",):
                break  # first section keyword: header is over
    raise ValueError(f"{path}: no '<N> atoms' line in the LAMMPS data file header")


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def score_run(
    dump: str | Path,
    thermo: str | Path,
    status: str | Path,
    cell: str | Path | None,
    settings: StabilitySettings,
    score_out: str | Path,
    sn_out: str | Path,
    *,
    temp_K: float | None = None,
) -> dict[str, Any]:
    """Score one MD run: write ``stability.json`` and ``sn.csv``, return the stability record.

    Parameters
    ----------
    dump
        ``dump.lammpstrj`` of the run (may end inside a snapshot after a crash).
    thermo
        ``thermo.csv`` of the run (temperatures at the dump steps).
    status
        ``status.json`` of the run (classification, crash_step, steps_planned, steps_done,
        dump_every, temp_K, n_atoms_initial, n_atoms_final).
    cell
        The start cell's LAMMPS data file (``N_0`` if the dump lacks step 0); may be ``None``.
    settings
        The ``stability`` block (``ttf_band_K`` ``None``: :data:`TTF_BAND_FRACTION` × T_set; ``crash_score``
        one of :data:`CRASH_SCORES`).
    score_out, sn_out
        Paths of ``stability.json`` and ``sn.csv``.
    temp_K
        Set-point temperature, K; default ``status["temp_K"]``.

    Returns
    -------
    dict
        The record written to ``stability.json`` (non-finite values written as ``null``).
    """
    settings = StabilitySettings.coerce(settings)
    alpha, beta, mode = float(settings.alpha), float(settings.beta), settings.temp_term
    crash_score = settings.crash_score

    stat = json.loads(Path(status).read_text())
    for key in ("steps_planned", "dump_every"):
        if key not in stat:
            raise ValueError(f"{status}: status.json lacks '{key}'")
    steps_planned = int(stat["steps_planned"])
    dump_every = int(stat["dump_every"])
    if temp_K is None and stat.get("temp_K") is None:
        raise ValueError(f"no set-point temperature: pass temp_K or give 'temp_K' in {status}")
    temp_set = float(temp_K if temp_K is not None else stat["temp_K"])
    band_setting = settings.ttf_band_K
    band = float(band_setting) if band_setting is not None else TTF_BAND_FRACTION * temp_set
    n_planned = steps_planned // dump_every

    reader = DumpReader(dump) if Path(dump).exists() else []
    if not Path(dump).exists():
        logger.warning("dump %s does not exist: no snapshot reached", dump)
    obs = snapshot_observables(reader)
    truncated = bool(getattr(reader, "truncated", False))
    th = read_thermo(thermo) if Path(thermo).exists() else None
    if th is None:
        logger.warning("thermo file %s does not exist: temperature factors are 0", thermo)

    n0 = None
    if len(obs) and (obs["step"] == 0).any():
        n0 = int(obs.loc[obs["step"] == 0, "natoms"].iloc[0])
    if cell is not None and Path(cell).exists():
        n_cell = read_data_atom_count(cell)
        if n0 is not None and n0 != n_cell:
            logger.warning("step-0 snapshot has %d atoms but the cell file %s has %d", n0, cell,
                           n_cell)
        n0 = n0 if n0 is not None else n_cell
    if n0 is None and stat.get("n_atoms_initial"):
        n0 = int(stat["n_atoms_initial"])

    sn = sn_table(obs, th, temp_set_K=temp_set, dump_every=dump_every,
                  steps_planned=steps_planned, n_atoms_initial=n0, alpha=alpha, beta=beta,
                  temp_term=mode)
    s_partial = s_index(sn, n_planned)

    steps_done = int(stat.get("steps_done", obs["step"].max() if len(obs) else 0))
    classification = stat.get("classification")
    if classification is None:
        classification = "stable" if steps_done >= steps_planned else "crash"
    crashed = classification == "crash"
    n_final = stat.get("n_atoms_final")
    if n_final is None and len(obs):
        n_final = int(obs["natoms"].iloc[-1])
    atoms_lost = bool(
        (n_final is not None and n0 is not None and int(n_final) < n0)
        or (len(obs) and n0 is not None and int(obs["natoms"].min()) < n0)
    )

    sidx = crash_scored_s_index(s_partial, crashed, atoms_lost, crash_score)

    tsel = th[th["step"] <= steps_done] if th is not None else None
    temps = tsel["temp_K"].to_numpy(dtype=float) if tsel is not None else np.array([])
    finite_t = temps[np.isfinite(temps)]
    ttf = ttf_legato_steps(th, temp_set, band, steps_done)
    record: dict[str, Any] = {
        "s_index": sidx,
        "s_index_zero": crash_scored_s_index(s_partial, crashed, atoms_lost, "zero"),
        "s_index_partial": s_partial,
        "crash_score": crash_score,
        "classification": classification,
        "crash_step": stat.get("crash_step"),
        "atoms_lost": atoms_lost,
        "crashed": crashed,
        "temp_mean_K": float(np.nanmean(temps)) if (~np.isnan(temps)).any() else None,
        "temp_max_K": float(np.max(finite_t)) if finite_t.size else None,
        "temp_last_K": float(temps[-1]) if temps.size else None,
        "fmax_eV_per_A": float(obs["fmax_eV_per_A"].max()) if len(obs) else None,
        "thermo_fmax_eV_per_A": (
            float(np.nanmax(tsel["fmax_eV_per_A"].to_numpy(dtype=float)))
            if tsel is not None and "fmax_eV_per_A" in tsel and tsel["fmax_eV_per_A"].notna().any()
            else None
        ),
        **{f"rmin_{p}_A": (float(obs[f"rmin_{p}"].min()) if len(obs) else None)
           for p in PAIR_NAMES},
        "n_snapshots": int(len(sn)),
        "n_planned": int(n_planned),
        "sn_mean_reached": float(sn["s_n"].mean()) if len(sn) else None,
        "sn_min": float(sn["s_n"].min()) if len(sn) else None,
        "ttf_legato_steps": ttf,
        "ttf_legato_fraction": ttf / steps_planned,
        "ttf_arena_fraction": ttf_arena_fraction(steps_done, steps_planned),
        "steps_done": steps_done,
        "steps_planned": steps_planned,
        "dump_every": dump_every,
        "temp_set_K": temp_set,
        "n_atoms_initial": n0,
        "n_atoms_final": None if n_final is None else int(n_final),
        "dump_truncated": truncated,
        "alpha": alpha,
        "beta": beta,
        "temp_term": mode,
        "ttf_band_K": band,
        "engine": stat.get("engine"),
    }
    record = {k: _finite_or_none(v) for k, v in record.items()}
    Path(score_out).parent.mkdir(parents=True, exist_ok=True)
    Path(sn_out).parent.mkdir(parents=True, exist_ok=True)
    Path(score_out).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    sn.to_csv(sn_out, index=False)
    logger.info(
        "S_index %.4f (crash_score %s; partial credit %.4f; %d of %d snapshots reached, "
        "classification %s, atoms lost %s, T mean %s K)",
        sidx, crash_score, s_partial, len(sn), n_planned, classification, atoms_lost,
        record["temp_mean_K"],
    )
    return record
