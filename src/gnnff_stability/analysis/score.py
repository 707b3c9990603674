"""Scoring one MD run: ``stability.json`` (S_index under the configured readings, the physical values of
Table A4, times to failure) and ``sn.csv`` (every factor of every snapshot), from the run's files.

The formula is in :mod:`.stability`, the distances in :mod:`.distances`.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from gnnff_stability.settings import MaterialSettings, StabilitySettings

from .distances import snapshot_observables
from .dump import DumpReader, read_thermo
from .stability import (
    TTF_BAND_FRACTION,
    crash_scored_s_index,
    s_index,
    sn_table,
    ttf_arena_fraction,
    ttf_legato_steps,
)

__all__ = ["read_data_atom_count", "score_run"]

logger = logging.getLogger(__name__)


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
    material: MaterialSettings,
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
    material
        The species: the pairs of the minimum distances (``rmin_<pair>`` columns and keys).
    temp_K
        Set-point temperature, K; default ``status["temp_K"]``.

    Returns
    -------
    dict
        The record written to ``stability.json`` (non-finite values written as ``null``).
    """
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
    obs = snapshot_observables(reader, pairs=material.pairs, pair_names=material.pair_names)
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

    sn = sn_table(obs, th, pair_names=material.pair_names, temp_set_K=temp_set,
                  dump_every=dump_every, steps_planned=steps_planned, n_atoms_initial=n0, alpha=alpha,
                  beta=beta, temp_term=mode)
    n_skip = int(settings.equil_steps) // dump_every
    s_partial = s_index(sn, n_planned, n_skip)
    s_all = s_index(sn, n_planned)

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
        # the paper's S_index over every snapshot, and without the start-up window
        "s_index_all_snapshots": crash_scored_s_index(s_all, crashed, atoms_lost, crash_score),
        "equil_steps": int(settings.equil_steps),
        "crash_score": crash_score,
        "classification": classification,
        "crash_step": stat.get("crash_step"),
        "fail_step": stat.get("fail_step"),
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
           for p in material.pair_names},
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
