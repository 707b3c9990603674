"""Two stability metrics the MLIP benchmarks report, computed from a run's thermo table.

- **NVE energy drift** (LAMBench, MLIPAudit): after a Langevin equilibration the thermostat is removed
  and the total energy of plain NVE is followed. The drift is the slope of a least-squares line
  through E_total(t) after a warm-up, per atom, in meV/atom/ps (:func:`nve_drift`); MLIPAudit's
  normalised drift is |fitted slope| × duration of the NVE part divided by the standard deviation of
  the kinetic energy over it (the line fitted through all of the NVE part, as MLIPAudit fits its
  whole trajectory).
- **Temperature ramp** (MLIP Arena's stability task): Langevin with a set point ramped linearly from
  T_start to T_stop; the result is the set-point temperature at which the run first crashes or fails,
  the kinetic temperature there (the mean over the last window before the failure) and the fraction
  of the planned steps it completed (:func:`ramp_failure`). The kinetic temperature trails the set
  point: for dT/dt = (2/τ)(T_set − T) (the Langevin relaxation of the kinetic energy alone) under
  T_set = T_0 + r t, T(0) = T_0, the lag is (r τ / 2)(1 − exp(−2t/τ)), r τ / 2 once settled
  (:func:`ramp_lag_K`); a harmonic solid, whose potential energy takes up as much heat as its kinetic
  energy, relaxes at half that rate and trails by r τ.

A moving set point needs a windowed reading of the campaign's temperature rule ("mean temperature
above ``temp_fail_factor`` x T_set"): :func:`first_hot_window` is that reading, shared with the run
classification (:func:`gnnff_stability.md.outcome.classify_run`), so the ramp's status and its
failure temperature agree.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnff_stability.settings import MDSettings, NVEMetricSettings, RampMetricSettings

__all__ = [
    "first_hot_window",
    "nve_drift",
    "ramp_failure",
    "ramp_lag_K",
    "ramp_set_point_K",
    "write_nve_drift",
    "write_ramp_failure",
]

logger = logging.getLogger(__name__)

#: Fewest thermo rows a drift line is fitted through.
MIN_FIT_POINTS = 3


def ramp_set_point_K(step: np.ndarray | float, t_start_K: float, t_stop_K: float,
                     steps: int) -> np.ndarray:
    """Set point of ``fix langevin T_start T_stop`` over a run of ``steps`` steps from step 0, K.

    LAMMPS interpolates linearly in the step: T(step) = T_start + (step / steps) (T_stop - T_start).

    Parameters
    ----------
    step
        Step number(s), any shape.
    t_start_K, t_stop_K
        Set point at step 0 and at step ``steps``, K.
    steps
        Length of the ramp, steps (> 0).
    """
    if int(steps) <= 0:
        raise ValueError(f"steps must be > 0, got {steps!r}")
    frac = np.asarray(step, dtype=float) / float(steps)
    return float(t_start_K) + frac * (float(t_stop_K) - float(t_start_K))


def ramp_lag_K(t_ps: np.ndarray | float, rate_K_per_ps: float, damp_ps: float,
               heat_capacity_ratio: float = 1.0) -> np.ndarray:
    """Lag of the temperature behind a linearly ramped Langevin set point, K.

    The solution of dT/dt = (2 / (g τ)) (T_set − T), T_set = T_0 + r t, T(0) = T_0:
    ``g r τ / 2 (1 − exp(−2 t / (g τ)))``, with ``g`` the heat capacity over its kinetic part (1 for
    an ideal gas, 2 for a harmonic solid). The friction of ``fix langevin`` relaxes the kinetic energy
    towards its set-point value at the rate 2 / τ.

    Parameters
    ----------
    t_ps
        Time since the ramp started, ps (any shape).
    rate_K_per_ps
        ``r``, K/ps.
    damp_ps
        ``τ``, the Langevin damping time, ps.
    heat_capacity_ratio
        ``g`` (>= 1).
    """
    if not damp_ps > 0 or not heat_capacity_ratio > 0:
        raise ValueError(f"damp_ps and heat_capacity_ratio must be > 0, got {damp_ps!r}, "
                         f"{heat_capacity_ratio!r}")
    tau = float(heat_capacity_ratio) * float(damp_ps)
    t = np.asarray(t_ps, dtype=float)
    return float(rate_K_per_ps) * tau / 2.0 * (1.0 - np.exp(-2.0 * t / tau))


def first_hot_window(step: np.ndarray, temp_K: np.ndarray, set_point_K: np.ndarray,
                     factor: float, window_rows: int) -> int | None:
    """First step at which the mean temperature over a window exceeds ``factor`` x the mean set point.

    The window is ``window_rows`` consecutive thermo rows ending at the returned row; a run shorter
    than one window is read as one window.

    Parameters
    ----------
    step, temp_K, set_point_K
        Thermo rows: step numbers, temperature (K) and the set point at each row (K), shape [n].
    factor
        ``md.temp_fail_factor``.
    window_rows
        Rows per window (>= 1).

    Returns
    -------
    int or None
        The step of the last row of the first hot window, or ``None`` if no window is hot.
    """
    if int(window_rows) < 1:
        raise ValueError(f"window_rows must be >= 1, got {window_rows!r}")
    step = np.asarray(step)
    temp = np.asarray(temp_K, dtype=float)
    setp = np.asarray(set_point_K, dtype=float)
    if not (step.shape == temp.shape == setp.shape) or temp.ndim != 1:
        raise ValueError(f"step, temp_K and set_point_K must be equal-length 1-D arrays, got shapes "
                         f"{step.shape}, {temp.shape}, {setp.shape}")
    n = temp.size
    if n == 0:
        return None
    w = min(int(window_rows), n)
    kernel = np.ones(w) / w
    t_mean = np.convolve(temp, kernel, mode="valid")
    s_mean = np.convolve(setp, kernel, mode="valid")
    hot = t_mean > float(factor) * s_mean
    if not hot.any():
        return None
    return int(step[int(np.argmax(hot)) + w - 1])


def nve_drift(thermo: pd.DataFrame, n_atoms: int, dt_fs: float, *, equil_steps: int,
              warmup_fraction: float) -> dict[str, float | int]:
    """Energy drift of the NVE part of a run (steps >= ``equil_steps``).

    Parameters
    ----------
    thermo
        Thermo table with columns ``step``, ``etotal_eV`` and ``ke_eV`` (thermo.csv).
    n_atoms
        Atoms of the cell.
    dt_fs
        Timestep, fs.
    equil_steps
        Steps of Langevin equilibration before the thermostat was removed.
    warmup_fraction
        Fraction of the NVE part's duration (from its first to its last row) discarded before the fit,
        in [0, 1).

    Returns
    -------
    dict
        ``drift_meV_per_atom_per_ps`` (signed slope of the fitted line, per atom), ``drift_abs_...``
        (its magnitude), ``normalised_drift`` (MLIPAudit: |slope of a line fitted through all NVE
        rows| x ``nve_ps`` / std of KE over them, dimensionless), ``fit_delta_etotal_eV`` (that
        slope x ``nve_ps``), ``delta_etotal_eV`` (|E_total(last) - E_total(first)|, for reference),
        ``ke_std_eV``, ``n_fit`` (rows in the drift fit), ``nve_ps`` (duration of the NVE rows). NaN
        where fewer than :data:`MIN_FIT_POINTS` rows remain or a value is not finite.
    """
    if int(n_atoms) < 1:
        raise ValueError(f"n_atoms must be >= 1, got {n_atoms!r}")
    if not dt_fs > 0:
        raise ValueError(f"dt_fs must be > 0, got {dt_fs!r}")
    if not 0.0 <= float(warmup_fraction) < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
    if int(equil_steps) < 0:
        raise ValueError(f"equil_steps must be >= 0, got {equil_steps!r}")
    missing = {"step", "etotal_eV", "ke_eV"} - set(thermo.columns)
    if missing:
        raise ValueError(f"thermo lacks column(s) {sorted(missing)}")
    nve = thermo[thermo["step"] >= int(equil_steps)].sort_values("step")
    t_ps = nve["step"].to_numpy(dtype=float) * float(dt_fs) / 1000.0
    etot = nve["etotal_eV"].to_numpy(dtype=float)
    ke = nve["ke_eV"].to_numpy(dtype=float)
    finite = np.isfinite(etot) & np.isfinite(ke)
    t_ps, etot, ke = t_ps[finite], etot[finite], ke[finite]
    out: dict[str, float | int] = {
        "drift_meV_per_atom_per_ps": math.nan, "drift_abs_meV_per_atom_per_ps": math.nan,
        "normalised_drift": math.nan, "fit_delta_etotal_eV": math.nan, "delta_etotal_eV": math.nan,
        "ke_std_eV": math.nan, "n_fit": 0, "nve_ps": float(t_ps[-1] - t_ps[0]) if t_ps.size else 0.0,
    }
    if t_ps.size < MIN_FIT_POINTS:
        return out
    keep = t_ps >= t_ps[0] + float(warmup_fraction) * (t_ps[-1] - t_ps[0])
    if int(keep.sum()) >= MIN_FIT_POINTS:
        slope_eV_per_ps = float(np.polyfit(t_ps[keep], etot[keep], 1)[0])
        drift = 1000.0 * slope_eV_per_ps / int(n_atoms)
        out.update(drift_meV_per_atom_per_ps=drift, drift_abs_meV_per_atom_per_ps=abs(drift),
                   n_fit=int(keep.sum()))
    fit_delta = abs(float(np.polyfit(t_ps, etot, 1)[0])) * float(t_ps[-1] - t_ps[0])
    ke_std = float(np.std(ke))
    out.update(fit_delta_etotal_eV=fit_delta, delta_etotal_eV=float(abs(etot[-1] - etot[0])),
               ke_std_eV=ke_std, normalised_drift=fit_delta / ke_std if ke_std > 0 else math.nan)
    return out


def ramp_failure(thermo: pd.DataFrame, *, t_start_K: float, t_stop_K: float, steps: int,
                 temp_fail_factor: float, window_rows: int, crash_step: int | None = None,
                 fail_step: int | None = None, steps_done: int | None = None
                 ) -> dict[str, Any]:
    """Where a temperature ramp first crashed or failed.

    The failure step is the earliest of: the crash step, the last row of the first window whose mean
    temperature exceeds ``temp_fail_factor`` x the mean set point (:func:`first_hot_window`), and the
    step at which the run's classification found a failure (``fail_step`` of ``status.json``: the hot
    window again, or the first snapshot with atoms closer than ``rmin_fail_A``).

    Parameters
    ----------
    thermo
        Thermo table (``step``, ``temp_K``).
    t_start_K, t_stop_K, steps
        The ramp (K, K, steps).
    temp_fail_factor
        ``md.temp_fail_factor``.
    window_rows
        Thermo rows per temperature window.
    crash_step, fail_step
        Step of a crash, and of the failure the classification found (``None`` if none).
    steps_done
        Steps the run completed (default: the last thermo step).

    Returns
    -------
    dict
        ``failure_step`` (int or None), ``failure_set_point_K`` (the set point there, K; NaN if the ramp
        survived), ``failure_kinetic_K`` (the mean temperature of the ``window_rows`` finite thermo rows
        before the failure step, K: what the atoms had when the run failed; NaN if it survived or no
        row precedes the failure), ``failure_kind`` (``crash``, ``fail`` or ``""``),
        ``completed_fraction`` (steps done / steps), ``survived`` (bool), ``max_set_point_K``.
    """
    hot = first_hot_window(thermo["step"].to_numpy(),
                           thermo["temp_K"].to_numpy(dtype=float),
                           ramp_set_point_K(thermo["step"].to_numpy(), t_start_K, t_stop_K, steps),
                           temp_fail_factor, window_rows)
    candidates = [(s, kind) for s, kind in ((crash_step, "crash"), (hot, "fail"), (fail_step, "fail"))
                  if s is not None]
    if steps_done is None:
        steps_done = int(thermo["step"].iloc[-1]) if len(thermo) else 0
    out: dict[str, Any] = {
        "failure_step": None, "failure_set_point_K": math.nan, "failure_kinetic_K": math.nan,
        "failure_kind": "",
        "completed_fraction": min(1.0, max(0.0, int(steps_done) / int(steps))),
        "survived": not candidates, "max_set_point_K": float(max(t_start_K, t_stop_K)),
    }
    if candidates:
        step, kind = min(candidates, key=lambda c: int(c[0]))
        out.update(failure_step=int(step), failure_kind=kind,
                   failure_set_point_K=float(ramp_set_point_K(int(step), t_start_K, t_stop_K, steps)),
                   failure_kinetic_K=_mean_before(thermo, int(step), int(window_rows)))
    return out


def _mean_before(thermo: pd.DataFrame, step: int, window_rows: int) -> float:
    """Mean ``temp_K`` of the last ``window_rows`` finite rows with a step below ``step``."""
    temp = thermo.loc[thermo["step"] < step].sort_values("step")["temp_K"].to_numpy(dtype=float)
    temp = temp[np.isfinite(temp)][-max(1, window_rows):]
    return float(temp.mean()) if temp.size else math.nan


def _read_status(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _write(record: Mapping[str, Any], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(dict(record), indent=2, allow_nan=True) + "\n")


def write_nve_drift(thermo_csv: str | Path, status_json: str | Path, out_json: str | Path,
                    md: MDSettings, nve: NVEMetricSettings) -> dict[str, Any]:
    """The NVE metric of one run's files (the ``nve_drift`` rule): :func:`nve_drift` with the NVE run's
    timestep and the ``metrics.nve`` block, plus the run's classification and its protocol label
    (``lambench`` for LAMBench's protocol, else ``short window``), written to ``out_json``."""
    status = _read_status(status_json)
    equil_steps = int(nve.equil_steps)
    dt_fs = nve.timestep_fs(md.dt_fs)
    record: dict[str, Any] = nve_drift(pd.read_csv(thermo_csv), int(status["n_atoms_initial"]),
                                       dt_fs, equil_steps=equil_steps,
                                       warmup_fraction=nve.warmup_fraction)
    record.update(classification=status["classification"], reason=status["reason"],
                  crash_step=status["crash_step"], steps_done=status["steps_done"],
                  steps_planned=status["steps_planned"], equil_steps=int(equil_steps),
                  dt_fs=dt_fs, protocol="lambench" if nve.is_lambench else "short window")
    _write(record, out_json)
    logger.info("NVE drift %.4g meV/atom/ps, normalised %.4g (%s)",
                record["drift_meV_per_atom_per_ps"], record["normalised_drift"],
                record["classification"])
    return record


def write_ramp_failure(thermo_csv: str | Path, status_json: str | Path, out_json: str | Path,
                       md: MDSettings, ramp: RampMetricSettings) -> dict[str, Any]:
    """The ramp metric of one run's files (the ``ramp_failure`` rule): :func:`ramp_failure` with the
    ``metrics.ramp`` block and the ``md`` fail factor (window: ``window_steps / md.thermo_every``
    rows, as the run's classification reads it), plus the classification, the ramp's rate (K/ps), its
    damping (fs) and the settled lag of the kinetic form, ``rate x damp / 2`` (``steady_lag_K``),
    written to ``out_json``."""
    t_start_K, t_stop_K = float(ramp.t_start_K), float(ramp.t_stop_K)
    status = _read_status(status_json)
    steps = int(status["steps_planned"])
    rate = (t_stop_K - t_start_K) / (steps * md.dt_ps)
    damp_fs = ramp.damping_fs(md.damp_fs)
    record = ramp_failure(pd.read_csv(thermo_csv), t_start_K=t_start_K, t_stop_K=t_stop_K,
                          steps=int(status["steps_planned"]), temp_fail_factor=md.temp_fail_factor,
                          window_rows=max(1, int(ramp.window_steps) // int(md.thermo_every)),
                          crash_step=status["crash_step"],
                          fail_step=status.get("fail_step"), steps_done=int(status["steps_done"]))
    record.update(classification=status["classification"], reason=status["reason"],
                  t_start_K=float(t_start_K), t_stop_K=float(t_stop_K), rate_K_per_ps=float(rate),
                  damp_fs=damp_fs, steady_lag_K=float(rate * damp_fs / 1000.0 / 2.0))
    _write(record, out_json)
    logger.info("ramp %g->%g K at %.0f K/ps: %s at set point %.0f K (kinetic %.0f K), %.0f %% of the "
                "steps", t_start_K, t_stop_K, rate, record["failure_kind"] or "survived",
                record["failure_set_point_K"], record["failure_kinetic_K"],
                100 * record["completed_fraction"])
    return record
