"""What an MD run produced: thermo table from the LAMMPS log, crash/fail/stable classification, outputs.

Shared by both engines, so a run is classified the same way whichever engine ran it.

Classification rules (``md`` settings in brackets)
--------------------------------------------------
crash
    The run ended early or blew up: the engine saw non-finite forces or energy, a model force above
    ``fmax_crash_eV_per_A``, lost atoms, a model error or a LAMMPS error during the run; or the thermo
    output shows a non-finite value or fewer atoms than at step 0. ``crash_step`` is the first step
    at which it was seen.

    Both engines stop a run at the first step that meets a crash condition, with ``fix halt`` on a
    variable that carries a *halt code* (:func:`halt_code`): the sum of :data:`HALT_LOST_ATOMS`
    (fewer atoms than at step 0), :data:`HALT_FORCE` (a model force above ``fmax_crash_eV_per_A``)
    and :data:`HALT_NONFINITE` (a non-finite model force or energy). The embedded engine sets the
    variable from its force callback, the HPC deck computes it in LAMMPS every step; both turn the
    code into the crash reason with :func:`halt_crash`, so a run that loses atoms is a crash at the
    same step, with the same reason, whichever engine ran it.
fail
    The run completed but is unphysical: the mean temperature over all thermo rows exceeds
    ``temp_fail_factor`` x T_set, or two atoms are closer than ``rmin_fail_A`` in any dumped snapshot
    (periodic minimum-image distances from a neighbour list), or a snapshot has non-finite positions.
    Under a moving set point (a temperature ramp) the temperature rule reads the mean temperature
    over a window of thermo rows against ``temp_fail_factor`` x the mean set point over the same rows
    (:func:`gnnff_stability.analysis.metrics.first_hot_window`). ``fail_step`` is the step the
    failure was seen at (``None`` for the whole-run temperature mean).
stable
    Otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnff_stability.analysis.dump import THERMO_COLUMNS, iter_dump
from gnnff_stability.analysis.metrics import first_hot_window

from .protocol import THERMO_KEYWORDS, Thermostat
from gnnff_stability.settings import MDSettings

__all__ = [
    "HALT_FORCE",
    "HALT_LOST_ATOMS",
    "HALT_NONFINITE",
    "CrashInfo",
    "Outcome",
    "PartialOutputs",
    "classify_run",
    "halt_code",
    "halt_crash",
    "min_distance_A",
    "parse_thermo_log",
    "status_record",
    "thermo_to_csv",
    "thermostat_rule",
    "write_json",
]

logger = logging.getLogger(__name__)

_LAMMPS_HEADERS = {"step": "Step", "temp": "Temp", "pe": "PotEng", "ke": "KinEng",
                   "etotal": "TotEng", "atoms": "Atoms", "c_fmax": "c_fmax"}
_HEADER = [_LAMMPS_HEADERS[k] for k in THERMO_KEYWORDS]


@dataclass(frozen=True)
class CrashInfo:
    """A crash seen by an engine while running: the step and a human-readable reason."""

    step: int
    reason: str


#: Halt-code bit: fewer atoms than at step 0 (LAMMPS dropped lost atoms).
HALT_LOST_ATOMS = 1
#: Halt-code bit: the largest model force exceeds ``fmax_crash_eV_per_A``.
HALT_FORCE = 2
#: Halt-code bit: a non-finite model force (or energy).
HALT_NONFINITE = 4


def halt_code(n_atoms: int, n_atoms_initial: int, fmax_eV_per_A: float, fmax_crash_eV_per_A: float,
              finite: bool = True) -> int:
    """The halt code of one step: the sum of the crash conditions it meets (0: keep running).

    The HPC deck evaluates the same expression in LAMMPS
    (:func:`gnnff_stability.md.hpc.render_hpc_deck`).

    Parameters
    ----------
    n_atoms, n_atoms_initial
        Atoms now and at step 0.
    fmax_eV_per_A
        Largest per-atom model force norm, eV/Å (NaN counts as non-finite).
    fmax_crash_eV_per_A
        The crash threshold, eV/Å.
    finite
        ``False`` when the model energy or any force is not finite.
    """
    code = HALT_LOST_ATOMS if int(n_atoms) < int(n_atoms_initial) else 0
    if not finite or not math.isfinite(float(fmax_eV_per_A)):
        code |= HALT_NONFINITE
    elif float(fmax_eV_per_A) > float(fmax_crash_eV_per_A):
        code |= HALT_FORCE
    return code


def halt_crash(
    step: int,
    code: int,
    *,
    n_atoms: int | None,
    n_atoms_initial: int,
    fmax_eV_per_A: float | None,
    fmax_crash_eV_per_A: float,
) -> CrashInfo:
    """The crash a halt code stands for, with the reason both engines write into ``status.json``.

    Parameters
    ----------
    step
        The step the run stopped at.
    code
        Halt code (a sum of the ``HALT_*`` bits, > 0).
    n_atoms, n_atoms_initial
        Atoms left at the halt (``None`` if unknown) and at step 0.
    fmax_eV_per_A
        Largest model force at the halt, eV/Å (``None`` if unknown).
    fmax_crash_eV_per_A
        The crash threshold, eV/Å.
    """
    code = int(code)
    if code <= 0 or code >= 2 * HALT_NONFINITE:
        raise ValueError(f"halt code must be a sum of the HALT_* bits 1, 2, 4, got {code}")
    parts = []
    if code & HALT_LOST_ATOMS:
        left = "?" if n_atoms is None else str(int(n_atoms))
        parts.append(f"lost atoms: {left} of {int(n_atoms_initial)} left")
    if code & HALT_NONFINITE:
        parts.append("non-finite model energy or forces")
    if code & HALT_FORCE:
        value = "?" if fmax_eV_per_A is None else f"{float(fmax_eV_per_A):.6g}"
        parts.append(f"max |F| {value} eV/A above fmax_crash_eV_per_A {float(fmax_crash_eV_per_A):g}")
    return CrashInfo(int(step), "; ".join(parts))


@dataclass(frozen=True)
class Outcome:
    """Classification of one run."""

    classification: str
    reason: str
    crash_step: int | None
    fail_step: int | None = None


def parse_thermo_log(path: str | Path) -> pd.DataFrame:
    """Thermo rows of a LAMMPS log written with the protocol's ``thermo_style``.

    Parameters
    ----------
    path
        ``log.lammps``. A run made of several ``run`` commands prints the first row of each again;
        duplicates keep the last occurrence. Lines between rows (warnings) are skipped.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`gnnff_stability.analysis.dump.THERMO_COLUMNS` (step, temp_K, pe_eV, ke_eV, etotal_eV,
        natoms, fmax_eV_per_A), sorted by step; ``nan``/``inf`` kept as such.
    """
    rows: list[list[float]] = []
    in_block = False
    ncol = len(_HEADER)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            words = line.split()
            if words == _HEADER:
                in_block = True
                continue
            if not in_block:
                continue
            if line.startswith("Loop time"):
                in_block = False
                continue
            if len(words) != ncol:
                continue
            try:
                values = [float(w) for w in words]
            except ValueError:
                continue
            rows.append(values)
    df = pd.DataFrame(rows, columns=list(THERMO_COLUMNS), dtype=float)
    df["step"] = df["step"].astype(np.int64)
    df["natoms"] = df["natoms"].round().astype(np.int64) if len(df) else df["natoms"].astype(np.int64)
    df = df.drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)
    return df


def min_distance_A(
    positions: np.ndarray, cell: np.ndarray, pbc: Iterable[bool], cutoff: float
) -> float:
    """Smallest interatomic distance (Å) below ``cutoff``, periodic images included; ``inf`` if none.

    Parameters
    ----------
    positions
        Shape [N, 3], Å.
    cell
        Lattice vectors as rows, shape [3, 3], Å.
    pbc
        Periodicity per direction.
    cutoff
        Search radius, Å.
    """
    from matscipy.neighbours import neighbour_list  # noqa: PLC0415

    positions = np.ascontiguousarray(positions, dtype=np.float64)
    if positions.shape[0] < 2 or cutoff <= 0:
        return math.inf
    d = neighbour_list("d", positions=positions, cell=np.asarray(cell, dtype=np.float64),
                       pbc=np.asarray(list(pbc), dtype=bool), cutoff=float(cutoff))
    return float(d.min()) if d.size else math.inf


def classify_run(
    thermo: pd.DataFrame,
    dump: str | Path | None,
    temp_K: float,
    settings: MDSettings,
    n_atoms_initial: int,
    crash: CrashInfo | None = None,
    *,
    set_point_K: np.ndarray | None = None,
    window_rows: int = 1,
) -> Outcome:
    """Classify a finished run as ``stable``, ``fail`` or ``crash`` (rules in the module docstring).

    Parameters
    ----------
    thermo
        Thermo table (:func:`parse_thermo_log`).
    dump
        The run's dump file, read for the minimum-distance rule (``None`` skips it).
    temp_K
        Target temperature, K.
    settings
        MD settings with the thresholds.
    n_atoms_initial
        Atoms at step 0.
    crash
        A crash the engine already saw (takes precedence over what the files show).
    set_point_K
        Set point at each thermo row, K, shape [len(thermo)], for a moving set point; ``None``: the
        set point is ``temp_K`` throughout.
    window_rows
        Thermo rows per window of the temperature rule under a moving set point.
    """
    if crash is not None:
        return Outcome("crash", crash.reason, int(crash.step))

    values = thermo[["temp_K", "pe_eV", "ke_eV", "etotal_eV"]].to_numpy(dtype=float)
    bad = ~np.isfinite(values).all(axis=1)
    lost = thermo["natoms"].to_numpy() < n_atoms_initial
    big = thermo["fmax_eV_per_A"].to_numpy(dtype=float) > settings.fmax_crash_eV_per_A
    for mask, what in ((bad, "non-finite thermo value"), (lost, "lost atoms"),
                       (big, "model force above threshold")):
        if mask.any():
            k = int(np.argmax(mask))
            row = thermo.iloc[k]
            detail = (f"{int(row['natoms'])} of {n_atoms_initial} atoms left" if what == "lost atoms"
                      else f"T {row['temp_K']:.6g} K, PE {row['pe_eV']:.6g} eV, "
                           f"max |F| {row['fmax_eV_per_A']:.6g} eV/A")
            return Outcome("crash", f"{what} at step {int(row['step'])} ({detail})", int(row["step"]))

    if len(thermo) and set_point_K is not None:
        hot = first_hot_window(thermo["step"].to_numpy(), thermo["temp_K"].to_numpy(dtype=float),
                               np.asarray(set_point_K, dtype=float), settings.temp_fail_factor,
                               window_rows)
        if hot is not None:
            return Outcome(
                "fail",
                f"mean temperature over {window_rows} thermo rows up to step {hot} exceeds "
                f"{settings.temp_fail_factor:g} x the mean set point",
                None, hot,
            )
    elif len(thermo):
        temp_mean = float(thermo["temp_K"].mean())
        limit = settings.temp_fail_factor * temp_K
        if temp_mean > limit:
            return Outcome(
                "fail",
                f"mean temperature {temp_mean:.1f} K exceeds {settings.temp_fail_factor:g} x "
                f"{temp_K:g} K = {limit:.1f} K",
                None,
            )

    if dump is not None and Path(dump).exists():
        search = max(settings.rmin_fail_A, 1e-6)
        for snap in iter_dump(dump):
            if not np.isfinite(snap.positions).all():
                return Outcome("fail", f"non-finite positions in the snapshot at step {snap.step}",
                               None, int(snap.step))
            if settings.rmin_fail_A <= 0:
                continue  # the rule is off: no distance is below 0
            rmin = min_distance_A(snap.positions, snap.cell, snap.pbc, search)
            if rmin < settings.rmin_fail_A:
                return Outcome(
                    "fail",
                    f"atoms {rmin:.3f} A apart at step {snap.step} (< rmin_fail_A "
                    f"{settings.rmin_fail_A:g} A)",
                    None, int(snap.step),
                )
    return Outcome("stable", "completed; temperature and interatomic distances within bounds", None)


def thermostat_rule(thermostat: Thermostat, thermo: pd.DataFrame, temp_K: float,
                    settings: MDSettings) -> dict[str, Any]:
    """The :func:`classify_run` keywords for a thermostat: for a ramp, the set point at each thermo
    row and the window in rows (``window_steps / thermo_every``, at least 1); else none."""
    set_point = thermostat.set_point_K(thermo["step"].to_numpy(), temp_K, settings.steps)
    if set_point is None:
        return {}
    return {"set_point_K": set_point,
            "window_rows": max(1, int(thermostat.window_steps) // int(settings.thermo_every))}


def status_record(
    outcome: Outcome,
    settings: MDSettings,
    temp_K: float,
    steps_done: int,
    n_atoms_initial: int,
    n_atoms_final: int,
    engine: str,
    wall_s: float,
    md_wall_s: float,
) -> dict[str, Any]:
    """The ``status.json`` record of the contract.

    ``wall_s`` is the whole call (loading, set-up, MD, classification); ``s_per_step`` is the MD loop's
    wall time per step done.
    """
    return {
        "classification": outcome.classification,
        "reason": outcome.reason,
        "crash_step": outcome.crash_step,
        "fail_step": outcome.fail_step,
        "steps_planned": int(settings.steps),
        "steps_done": int(steps_done),
        "dump_every": int(settings.dump_every),
        "temp_K": float(temp_K),
        "n_atoms_initial": int(n_atoms_initial),
        "n_atoms_final": int(n_atoms_final),
        "engine": engine,
        "wall_s": float(wall_s),
        "s_per_step": float(md_wall_s / steps_done) if steps_done > 0 else float("nan"),
    }


def write_json(record: Mapping[str, Any], path: str | Path) -> None:
    """Write a JSON record (indent 2, trailing newline)."""
    Path(path).write_text(json.dumps(record, indent=2, allow_nan=True) + "\n")


class PartialOutputs:
    """Temporary names for a run's outputs, renamed to the real names only when all are written.

    A run killed midway (SIGTERM from Snakemake or SLURM) leaves only ``.<name>.partial`` files, which
    no rule takes as complete; the next attempt overwrites them.

    Parameters
    ----------
    finals
        Output name -> final path (e.g. ``{"dump": ..., "log": ..., "thermo": ..., "status": ...}``).
        The status file is renamed last.
    """

    def __init__(self, finals: Mapping[str, str | Path]) -> None:
        self.finals = {k: Path(v) for k, v in finals.items()}
        self.temps = {k: p.with_name(f".{p.name}.partial") for k, p in self.finals.items()}
        for p in self.finals.values():
            p.parent.mkdir(parents=True, exist_ok=True)
        for p in self.temps.values():
            p.unlink(missing_ok=True)

    def __getitem__(self, key: str) -> Path:
        return self.temps[key]

    def commit(self) -> None:
        """Rename every temporary file to its final name (``status`` last)."""
        order = sorted(self.finals, key=lambda k: k == "status")
        for key in order:
            tmp = self.temps[key]
            if not tmp.exists():
                raise FileNotFoundError(f"output {key!r} was not written (expected {tmp})")
            os.replace(tmp, self.finals[key])

    def discard(self) -> None:
        """Remove the temporary files (after a failure to start)."""
        for p in self.temps.values():
            p.unlink(missing_ok=True)


def thermo_to_csv(thermo: pd.DataFrame, path: str | Path) -> None:
    """Write thermo.csv (columns of the contract, full precision)."""
    thermo.loc[:, list(THERMO_COLUMNS)].to_csv(path, index=False, float_format="%.10g")

