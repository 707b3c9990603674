"""Partial radial distribution functions of a trajectory and their distance to a reference.

The normalisation is the one of LAMMPS ``compute rdf`` (checked against it in the tests): for the
type pair (I, J), with ``n_IJ(r)`` the number of ordered pairs (i of type I, j of type J, periodic
images included) whose distance lies in the bin ``[r_k, r_k + Δr)``,

.. math::

    g_{IJ}(r_k) = \\frac{n_{IJ}(r_k)}{N_I \\,(N_J - \\delta_{IJ})\\, V_k / V},
    \\qquad V_k = \\tfrac{4\\pi}{3}\\big((r_k + \\Delta r)^3 - r_k^3\\big),

evaluated at the bin centres ``r_k + Δr/2``. A trajectory's RDF is the mean of the per-snapshot
RDFs (as ``fix ave/time`` averages ``compute rdf``).

Distances between two RDFs, per pair:

- ``mae``: mean absolute difference of g over the bins (dimensionless);
- ``js``: Jensen-Shannon divergence (base 2, in [0, 1]) between the two g(r) curves normalised to
  unit sum over the bins, i.e. treated as distributions over r with uniform weight per bin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gnnff_stability.settings import MaterialSettings, RDFSettings

from .dump import DumpReader, Snapshot

__all__ = [
    "average_rdf",
    "compute_rdf_comparison",
    "js_divergence",
    "partial_rdf",
    "rdf_distances",
]

logger = logging.getLogger(__name__)


def partial_rdf(
    positions: np.ndarray,
    types: np.ndarray,
    cell: np.ndarray,
    pbc: Sequence[bool] | np.ndarray = (True, True, True),
    *,
    r_max: float,
    n_bins: int,
    pairs: Sequence[tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Partial RDFs of one periodic configuration (LAMMPS ``compute rdf`` normalisation).

    Parameters
    ----------
    positions
        Cartesian positions, shape [N, 3], Å.
    types
        LAMMPS atom types, shape [N], int.
    cell
        Lattice vectors as rows, shape [3, 3], Å.
    pbc
        Periodicity per direction, shape [3].
    r_max
        Outer edge of the last bin, Å (> 0).
    n_bins
        Number of bins (> 0).
    pairs
        LAMMPS type pairs (:attr:`~gnnff_stability.settings.MaterialSettings.pairs`).

    Returns
    -------
    r, g
        Bin centres, shape [n_bins], Å; g, shape [len(pairs), n_bins] (0 for a pair with too few
        atoms).
    """
    from matscipy.neighbours import neighbour_list  # noqa: PLC0415

    if not r_max > 0:
        raise ValueError(f"r_max must be > 0 Å, got {r_max}")
    if int(n_bins) != n_bins or n_bins <= 0:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    n_bins = int(n_bins)
    positions = np.asarray(positions, dtype=float)
    types = np.asarray(types).astype(np.int32)
    cell = np.asarray(cell, dtype=float)
    if positions.ndim != 2 or positions.shape[1] != 3 or types.shape != (positions.shape[0],):
        raise ValueError(
            f"positions [N, 3] and types [N] expected, got {positions.shape} and {types.shape}"
        )
    edges = np.linspace(0.0, r_max, n_bins + 1)
    r = 0.5 * (edges[1:] + edges[:-1])
    g = np.zeros((len(pairs), n_bins))
    volume = abs(float(np.linalg.det(cell)))
    if positions.shape[0] < 2:
        return r, g
    i, j, d = neighbour_list(
        "ijd", positions=positions, cell=cell, pbc=np.asarray(pbc, dtype=bool), cutoff=float(r_max)
    )
    ti, tj = types[i], types[j]
    shell = 4.0 * np.pi / 3.0 * (edges[1:] ** 3 - edges[:-1] ** 3) / volume
    for k, (a, b) in enumerate(pairs):
        n_a = int(np.count_nonzero(types == a))
        n_b = int(np.count_nonzero(types == b)) - (1 if a == b else 0)
        if n_a == 0 or n_b <= 0:
            continue
        sel = d[(ti == a) & (tj == b)]
        hist = np.histogram(sel, bins=edges)[0].astype(float)
        g[k] = hist / (n_a * n_b * shell)
    return r, g


def average_rdf(
    snapshots: Iterable[Snapshot],
    *,
    pairs: Sequence[tuple[int, int]],
    r_max: float,
    n_bins: int,
    start_step: int = 0,
    stop_step: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean partial RDFs over the snapshots of a trajectory, streaming.

    Parameters
    ----------
    snapshots
        Snapshots in step order.
    pairs
        LAMMPS type pairs (:attr:`~gnnff_stability.settings.MaterialSettings.pairs`).
    r_max, n_bins
        Histogram range (Å) and bin count.
    start_step
        First step to include (to skip equilibration).
    stop_step
        Steps ``>= stop_step`` are excluded (the crash step: the stable part only). ``None``: all.

    Returns
    -------
    r, g, n
        Bin centres [n_bins] (Å), mean g [len(pairs), n_bins] (NaN when no snapshot was used), and the
        number of snapshots used. Snapshots with non-finite positions are skipped.
    """
    total = None
    r = None
    n = 0
    for snap in snapshots:
        if snap.step < start_step:
            continue
        if stop_step is not None and snap.step >= stop_step:
            break
        if not np.all(np.isfinite(snap.positions)):
            logger.info("skipping snapshot at step %d: non-finite positions", snap.step)
            continue
        r, g = partial_rdf(snap.positions, snap.types, snap.cell, snap.pbc, r_max=r_max,
                           n_bins=n_bins, pairs=pairs)
        total = g if total is None else total + g
        n += 1
    if total is None:
        edges = np.linspace(0.0, r_max, int(n_bins) + 1)
        return 0.5 * (edges[1:] + edges[:-1]), np.full((len(pairs), int(n_bins)), np.nan), 0
    return r, total / n, n


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2) of two non-negative histograms, each normalised to 1.

    Returns NaN if either histogram is empty, not finite or has zero sum.
    """
    p = np.clip(np.asarray(p, dtype=float), 0.0, None)
    q = np.clip(np.asarray(q, dtype=float), 0.0, None)
    if p.shape != q.shape:
        raise ValueError(f"histograms must have the same shape, got {p.shape} and {q.shape}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))) or p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def _kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(np.clip(0.5 * _kl(p) + 0.5 * _kl(q), 0.0, 1.0))


def rdf_distances(g_run: np.ndarray, g_ref: np.ndarray, pair_names: Sequence[str]) -> dict[str, float]:
    """Per-pair ``js`` and ``mae`` between two sets of partial RDFs on the same bins.

    Parameters
    ----------
    g_run, g_ref
        Shape [len(pair_names), n_bins], one row per pair in the order of ``pair_names``.
    pair_names
        Names of the pairs in the keys (:attr:`~gnnff_stability.settings.MaterialSettings.pair_names`).

    Returns
    -------
    dict
        ``js_<pair>`` for every pair, then ``mae_<pair>`` for every pair, then ``js_mean``,
        ``mae_mean`` (NaN where a curve is missing).
    """
    pair_names = list(pair_names)
    g_run = np.asarray(g_run, dtype=float)
    g_ref = np.asarray(g_ref, dtype=float)
    if g_run.shape != g_ref.shape or g_run.ndim != 2 or g_run.shape[0] != len(pair_names):
        raise ValueError(f"RDF arrays must both be [{len(pair_names)}, n_bins] (one row per pair of "
                         f"{pair_names}), got {g_run.shape}, {g_ref.shape}")
    out: dict[str, float] = {}
    for k, name in enumerate(pair_names):
        out[f"js_{name}"] = js_divergence(g_run[k], g_ref[k])
    for k, name in enumerate(pair_names):
        diff = np.abs(g_run[k] - g_ref[k])
        out[f"mae_{name}"] = float(diff.mean()) if np.all(np.isfinite(diff)) else float("nan")
    for key in ("js", "mae"):
        vals = np.array([out[f"{key}_{n}"] for n in pair_names])
        out[f"{key}_mean"] = float(vals.mean()) if np.all(np.isfinite(vals)) else float("nan")
    return out


def compute_rdf_comparison(
    dump: str | Path,
    ref_dump: str | Path,
    rdf_out: str | Path,
    metrics_out: str | Path,
    settings: RDFSettings,
    *,
    material: MaterialSettings,
    status: str | Path | None = None,
    start_step: int = 0,
) -> dict[str, float]:
    """RDFs of a run and of its reference MD, written side by side, and their distances.

    Parameters
    ----------
    dump
        The run's ``dump.lammpstrj``.
    ref_dump
        Reference-potential MD of the same cell and temperature.
    rdf_out
        CSV with columns ``r_A``, ``g_<pair>`` for every pair, then ``g_<pair>_ref`` for every pair
        (pairs in the order of ``material.pair_names``).
    metrics_out
        JSON with ``js_<pair>``, ``mae_<pair>``, ``js_mean``, ``mae_mean`` plus ``n_snapshots``,
        ``n_snapshots_ref``, ``r_max_A``, ``n_bins``, ``stop_step`` (non-finite values as null).
    settings
        The ``rdf`` block: histogram range (Å) and bin count.
    material
        The species: the type pairs and their names in the columns and keys.
    status
        The run's ``status.json``; if it names a ``crash_step``, only snapshots before it are used.
    start_step
        First step used in both trajectories.

    Returns
    -------
    dict
        The metrics record.
    """
    stop = None
    if status is not None and Path(status).exists():
        crash = json.loads(Path(status).read_text()).get("crash_step")
        stop = None if crash is None else int(crash)
    pairs, pair_names = material.pairs, material.pair_names
    r, g_run, n_run = average_rdf(DumpReader(dump), pairs=pairs, r_max=settings.r_max,
                                  n_bins=settings.n_bins, start_step=start_step, stop_step=stop)
    _, g_ref, n_ref = average_rdf(DumpReader(ref_dump), pairs=pairs, r_max=settings.r_max,
                                  n_bins=settings.n_bins, start_step=start_step)
    table = pd.DataFrame({"r_A": r})
    for k, name in enumerate(pair_names):
        table[f"g_{name}"] = g_run[k]
    for k, name in enumerate(pair_names):
        table[f"g_{name}_ref"] = g_ref[k]
    metrics: dict[str, float | int | None] = dict(rdf_distances(g_run, g_ref, pair_names))
    metrics.update(n_snapshots=n_run, n_snapshots_ref=n_ref, r_max_A=float(settings.r_max),
                   n_bins=int(settings.n_bins), stop_step=stop)
    clean = {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
             for k, v in metrics.items()}
    Path(rdf_out).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(rdf_out, index=False)
    Path(metrics_out).write_text(json.dumps(clean, indent=2, allow_nan=False) + "\n")
    logger.info("RDF over %d run / %d reference snapshots: JS mean %s, MAE mean %s",
                n_run, n_ref, clean["js_mean"], clean["mae_mean"])
    return clean
