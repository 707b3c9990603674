"""Stability index S_index of an MD run (the paper's Eqs. 7-8): the formula and its readings.

Scoring a run from its files is :mod:`.score`; the minimum distances are :mod:`.distances`.

For the snapshots ``n = 1 .. num`` written every ``dump_every`` steps (``num = steps_planned //
dump_every``), the per-snapshot score is

.. math::

    s_n = \\Big(\\frac{N_n}{N_0}\\Big)^{\\alpha}
          \\cdot \\tau(T_n)^{\\beta}
          \\cdot \\prod_{p} \\frac{\\min(r_p^n, r_p^{n-1})}{\\max(r_p^n, r_p^{n-1})}

with ``N`` the atom count, ``T_n`` the instantaneous temperature at the snapshot's step (from
``thermo.csv``), ``r_p^n`` the minimum distance between atoms of species pair ``p`` (every unordered pair of the
material's species, e.g. Hf-Hf, Hf-O, O-O for HfO2) under periodic boundary conditions, and

.. math:: S_\\mathrm{index} = \\frac{1}{num} \\sum_{n=1}^{num} s_n ,

where snapshots never reached (the run crashed first) contribute 0.

Start-up window
---------------
``equil_steps`` (``stability.equil_steps``, default 0: the paper's sum over every snapshot) leaves
the snapshots at steps ``<= equil_steps`` out: ``S = Σ_{n > n_w} s_n / (num − n_w)`` with ``n_w =
equil_steps // dump_every`` (:func:`s_index`). The Langevin start places the atoms at their
minimum-energy sites with velocities at T_set; equipartition halves the kinetic temperature within
a few tens of fs and the thermostat restores it over about a damping time. The literal factor
``(T_set / T_n)^β`` rewards that dip (up to ``2^(1/4) ≈ 1.19``), and the dip weighs more in a run of
20 snapshots than in the paper's 400 (:func:`startup_bias` measures it).

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

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "CRASH_SCORES",
    "TEMP_TERMS",
    "pair_ratio_terms",
    "crash_scored_s_index",
    "s_index",
    "sn_table",
    "startup_bias",
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
    pair_names: Sequence[str],
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
    pair_names
        The species pairs of the ``rmin_<pair>`` columns of ``observables``
        (:attr:`~gnnff_stability.settings.MaterialSettings.pair_names`).
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
        Columns ``n, step, s_n, n_term, t_term, r_term``, ``r_term_<pair>`` per pair,
        ``t_ratio_raw`` (T_set/T_n), ``rmin_<pair>`` per pair, ``temp_K, natoms``: one row per
        reached snapshot, in order of n (pairs in the order of ``pair_names``).
    """
    if dump_every <= 0:
        raise ValueError(f"dump_every must be a positive number of steps, got {dump_every}")
    if steps_planned < dump_every:
        raise ValueError(
            f"steps_planned ({steps_planned}) must be at least dump_every ({dump_every})"
        )
    pair_names = list(pair_names)
    rcols = [f"rmin_{n}" for n in pair_names]
    absent = [c for c in rcols if c not in observables.columns]
    if absent:
        raise ValueError(f"observables lack the minimum-distance column(s) {absent} of pairs {pair_names}; "
                         f"found {list(observables.columns)}")
    obs = observables.drop_duplicates("step", keep="last").set_index("step").sort_index()
    num = steps_planned // dump_every
    on_grid = obs.index[(obs.index % dump_every == 0) & (obs.index <= num * dump_every)]
    off_grid = obs.index.difference(on_grid)
    if len(off_grid):
        logger.info("ignoring %d snapshot(s) off the dump grid: steps %s", len(off_grid),
                    list(off_grid[:5]))
    steps = np.array(sorted(on_grid), dtype=np.int64)
    columns = ["n", "step", "s_n", "n_term", "t_term", "r_term",
               *(f"r_term_{p}" for p in pair_names), "t_ratio_raw", *rcols, "temp_K", "natoms"]
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
            **{f"r_term_{p}": r_terms[:, k] for k, p in enumerate(pair_names)},
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


def s_index(sn: pd.DataFrame, n_planned: int, n_skip: int = 0) -> float:
    """``S_index = (1 / (num − n_skip)) Σ_{n > n_skip} s_n``; snapshots absent from ``sn`` (never
    reached) count as 0.

    Parameters
    ----------
    sn
        Output of :func:`sn_table` (columns ``n``, ``s_n``).
    n_planned
        ``num = steps_planned // dump_every`` (> 0).
    n_skip
        Snapshots ``n = 1 .. n_skip`` left out (the start-up window, ``equil_steps // dump_every``);
        0: the paper's S_index.
    """
    if n_planned <= 0:
        raise ValueError(f"n_planned must be > 0, got {n_planned}")
    if len(sn) > n_planned:
        raise ValueError(f"{len(sn)} scored snapshots exceed the {n_planned} planned ones")
    if not 0 <= int(n_skip) < n_planned:
        raise ValueError(f"the start-up window leaves no snapshot: n_skip {n_skip} of {n_planned} "
                         "planned (stability.equil_steps must end before the run)")
    values = sn["s_n"].to_numpy(dtype=float)
    if n_skip:
        values = values[sn["n"].to_numpy() > int(n_skip)]
    return float(np.nan_to_num(values, nan=0.0).sum() / (n_planned - int(n_skip)))


def startup_bias(sn: pd.DataFrame, n_planned: int, dump_every: int, window_steps: int
                 ) -> dict[str, float | int]:
    """How much the start-up window moves S_index: S over every snapshot and S without the snapshots
    at steps ``<= window_steps``.

    Parameters
    ----------
    sn
        :func:`sn_table` of one run (``sn.csv``).
    n_planned, dump_every
        Planned snapshots and steps between them.
    window_steps
        The window, steps (0.1 ps at 0.25 fs: 400).

    Returns
    -------
    dict
        ``s_all``, ``s_windowed``, ``delta`` (``s_all − s_windowed``: positive when the window
        raised S), ``n_window`` (snapshots in the window), ``t_term_window_mean`` (mean temperature
        factor inside the window) and ``t_term_after_mean`` (after it).
    """
    n_window = int(window_steps) // int(dump_every)
    s_all = s_index(sn, n_planned)
    s_windowed = s_index(sn, n_planned, n_window)
    inside = sn["n"].to_numpy() <= n_window
    t_term = sn["t_term"].to_numpy(dtype=float)
    return {"s_all": s_all, "s_windowed": s_windowed, "delta": s_all - s_windowed,
            "n_window": n_window,
            "t_term_window_mean": float(np.mean(t_term[inside])) if inside.any() else float("nan"),
            "t_term_after_mean": float(np.mean(t_term[~inside])) if (~inside).any() else float("nan")}


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
