"""The MD runs behind the benchmark stability metrics (:mod:`gnnff_stability.analysis.metrics`).

Each is the campaign's protocol (:mod:`.protocol`) with another thermostat, run by whichever engine
``md.engine`` names and classified by the same rules (:mod:`.outcome`):

- :func:`run_nve_metric`: Langevin at ``metrics.nve.temp_K`` for ``equil_steps``, then ``unfix`` of
  the thermostat and ``steps`` of plain NVE (``equil_steps`` 0: NVE from the velocities drawn at
  ``temp_K``, LAMBench's Maxwell-Boltzmann start);
- :func:`run_ramp_metric`: Langevin with the set point ramped linearly from ``t_start_K`` to
  ``t_stop_K`` over ``steps`` (or at ``rate_K_per_ps``), with the ramp's own damping.

Both write ``dump.lammpstrj``, ``log.lammps``, ``thermo.csv`` and ``status.json`` like a campaign run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gnnff_stability.settings import MaterialSettings, MDSettings, NVEMetricSettings, RampMetricSettings

from . import run_md
from .files import MDRunFiles
from .protocol import Thermostat

__all__ = ["nve_md_settings", "ramp_md_settings", "run_nve_metric", "run_ramp_metric"]


def nve_md_settings(md: MDSettings, nve: NVEMetricSettings) -> MDSettings:
    """The ``md`` settings of the NVE run: ``steps`` = equilibration + NVE steps, at the NVE run's
    timestep (``metrics.nve.dt_fs``, else ``md.dt_fs``)."""
    return dataclasses.replace(md, steps=int(nve.equil_steps) + int(nve.steps),
                               dt_fs=nve.timestep_fs(md.dt_fs))


def ramp_md_settings(md: MDSettings, ramp: RampMetricSettings) -> MDSettings:
    """The ``md`` settings of the ramp: its steps (``steps`` or the length ``rate_K_per_ps`` sets) and
    its Langevin damping (``metrics.ramp.damp_fs``, else ``md.damp_fs``)."""
    return dataclasses.replace(md, steps=ramp.ramp_steps(md.dt_fs), damp_fs=ramp.damping_fs(md.damp_fs))


def run_nve_metric(model_path: str | Path, cell_path: str | Path, md: MDSettings,
                   nve: NVEMetricSettings, material: MaterialSettings, files: MDRunFiles, *, threads: int = 1,
                   family: str | None = None) -> dict[str, Any]:
    """Equilibrate with Langevin, remove the thermostat, run NVE (the ``run_nve_md`` rule).

    Parameters
    ----------
    model_path, cell_path
        The deployed model and the in-distribution cell's LAMMPS data file.
    md, nve
        The ``md`` block (timestep, damping, cadence, thresholds, engine) and ``metrics.nve``.
    material
        The ``material`` block (masses and species of the LAMMPS types).
    files, threads, family
        As :func:`gnnff_stability.md.run_md`.

    Returns
    -------
    dict
        The ``status.json`` record (a crash is a result, not an error).
    """
    return run_md(model_path, cell_path, nve.temp_K, nve.vseed, nve_md_settings(md, nve), material, files,
                  threads=threads, family=family,
                  thermostat=Thermostat("nve", equil_steps=int(nve.equil_steps)))


def run_ramp_metric(model_path: str | Path, cell_path: str | Path, md: MDSettings,
                    ramp: RampMetricSettings, material: MaterialSettings, files: MDRunFiles, *,
                    threads: int = 1, family: str | None = None) -> dict[str, Any]:
    """Langevin with a linearly ramped set point (the ``run_ramp_md`` rule).

    Parameters are those of :func:`run_nve_metric`, with ``metrics.ramp`` in place of ``metrics.nve``.
    """
    return run_md(model_path, cell_path, ramp.t_start_K, ramp.vseed, ramp_md_settings(md, ramp), material,
                  files, threads=threads, family=family,
                  thermostat=Thermostat("ramp", t_stop_K=float(ramp.t_stop_K),
                                        window_steps=int(ramp.window_steps)))
