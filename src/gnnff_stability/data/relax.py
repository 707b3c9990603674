"""Relaxing an MD start cell with the reference potential before MD (``structures.relax: comb``).

An oxygen-deficient cell made by removing atoms from the crystal is far from a minimum: its first
picoseconds of MD are an exothermic transient. With ``relax: comb`` the positions (the cell is fixed) are
relaxed by FIRE on the COMB forces at converged charges (:meth:`.comb.CombSession.label`, the labels'
variant and tolerance) until every force is below ``relax_fmax_eV_per_A``. FIRE uses forces only, so the
COMB energy that is not the potential of its forces (see :mod:`.comb`) plays no part.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from gnnff_stability.settings import CombSettings

from .comb import CombSession, comb_ffield, initial_charges, write_comb_data
from .hfo2 import HFO2_SPECIES
from .structures import to_lammps_frame

__all__ = ["relax_with_comb"]

logger = logging.getLogger(__name__)


class _CombForces(Calculator):
    """COMB forces at converged charges of one open :class:`CombSession` (charges carried over)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, session: CombSession, qeq_tol: float, charges: np.ndarray):
        super().__init__()
        self.session, self.qeq_tol, self.charges = session, qeq_tol, charges
        self.n_calls = 0

    def calculate(self, atoms=None, properties=("forces",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        label = self.session.label(self.atoms.positions, self.charges, self.qeq_tol)
        self.charges = label.charges
        self.n_calls += 1
        self.results = {"energy": label.energy, "forces": label.forces}


def relax_with_comb(
    atoms: Atoms, comb: CombSettings, fmax_eV_per_A: float, max_steps: int
) -> tuple[Atoms, dict[str, Any]]:
    """Relax the positions of a Hf-O cell with COMB (fixed cell), by FIRE.

    Parameters
    ----------
    atoms
        Periodic Hf-O cell.
    comb
        The ``data.comb`` block: the COMB variant (``over_coordination``) and the charge tolerance
        (``label_qeq_tol``) of the reference labels.
    fmax_eV_per_A
        Stop when every atom's force is below this, eV/Å.
    max_steps
        Most FIRE steps.

    Returns
    -------
    atoms, summary
        The relaxed cell (LAMMPS orientation) and ``fmax_start_eV_per_A``, ``fmax_end_eV_per_A``,
        ``steps``, ``converged``, ``max_displacement_A``.
    """
    from ase.optimize import FIRE  # noqa: PLC0415

    framed = to_lammps_frame(atoms)
    with tempfile.TemporaryDirectory(prefix="relax_") as tmp:
        data = write_comb_data(framed, Path(tmp) / "cell.data")
        with CombSession(data, comb_ffield(tmp, comb.over_coordination), HFO2_SPECIES) as session:
            work = Atoms(session.symbols, positions=session.positions, cell=session.cell, pbc=True)
            start = work.positions.copy()
            work.calc = _CombForces(session, comb.label_qeq_tol, initial_charges(session.symbols))
            fmax_start = float(np.linalg.norm(work.get_forces(), axis=1).max())
            optimizer = FIRE(work, logfile=None)
            converged = bool(optimizer.run(fmax=fmax_eV_per_A, steps=max_steps))
            fmax_end = float(np.linalg.norm(work.get_forces(), axis=1).max())
            moved = work.positions - start
            moved -= np.round(moved @ np.linalg.inv(work.cell)) @ work.cell
            summary = {
                "fmax_start_eV_per_A": fmax_start,
                "fmax_end_eV_per_A": fmax_end,
                "steps": int(optimizer.nsteps),
                "converged": converged,
                "max_displacement_A": float(np.linalg.norm(moved, axis=1).max()),
            }
    relaxed = Atoms(work.get_chemical_symbols(), positions=work.positions, cell=work.cell, pbc=True)
    relaxed.info.update(atoms.info)
    logger.info(
        "COMB relaxation: max |F| %.3f -> %.3f eV/A in %d FIRE steps (converged %s), largest move %.3f A",
        fmax_start, fmax_end, summary["steps"], converged, summary["max_displacement_A"],
    )
    return relaxed, summary
