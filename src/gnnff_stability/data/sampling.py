"""Reference frames from the COMB potential: Langevin MD of HfO2 polymorphs, each sampled frame
labelled by a converged COMB single point with its force-consistent energy (:mod:`.comb`).

Trajectories run in worker processes (one serial LAMMPS each, ``spawn`` start).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import math
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from gnnff_stability._lammps import gather_atoms
from gnnff_stability.settings import CombSettings

from .comb import (
    LABEL_ENERGY_TOL_EV,
    LABEL_FORCE_TOL_EV_PER_A,
    MD_QEQ_TOL,
    PATH_TOL_EV,
    CombSession,
    comb_ffield,
    initial_charges,
    write_comb_data,
)
from .hfo2 import HFO2_SPECIES, build_phase, remove_oxygen

__all__ = ["generate_comb_frames", "run_trajectories", "sample_frames", "spread_frames"]

logger = logging.getLogger(__name__)


def _task_settings(settings: CombSettings) -> dict[str, Any]:
    """The generator settings as plain values for the worker processes (temperatures and ratios as
    floats, supercell as ints)."""
    out = settings.as_dict()
    out.update(
        temps_K=[float(t) for t in settings.temps_K],
        phases=list(settings.phases),
        extra_ratios=[float(r) for r in settings.extra_ratios],
        supercell=[int(n) for n in settings.supercell],
    )
    return out


def spread_frames(n_frames: int, n_trajectories: int, seed: int, block: str) -> tuple[list[int], np.ndarray]:
    """Frames per trajectory (as even as possible, the first ones one more) and each trajectory's LAMMPS
    velocity and Langevin seeds, shape [n_trajectories, 2], drawn from ``seed``.

    Raises
    ------
    ValueError
        When ``n_frames`` (of the config block ``block``) leaves a trajectory without a frame.
    """
    if n_frames < n_trajectories:
        raise ValueError(
            f"{block}.n_frames = {n_frames} is fewer than the {n_trajectories} (cell, temperature) "
            "trajectories; every trajectory needs at least one frame"
        )
    base, rest = divmod(int(n_frames), n_trajectories)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(2)[0])
    lmp_seeds = rng.integers(1, 900_000_000, size=(n_trajectories, 2))  # Marsaglia RNG limit
    return [base + (1 if i < rest else 0) for i in range(n_trajectories)], lmp_seeds


def _comb_tasks(settings: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """One MD trajectory per (cell, temperature); frames spread evenly over them."""
    cells: list[tuple[str, float]] = [(p, 2.0) for p in settings["phases"]]
    cells += [("monoclinic", r) for r in settings["extra_ratios"]]
    combos = [(phase, ratio, temp) for phase, ratio in cells for temp in settings["temps_K"]]
    counts, lmp_seeds = spread_frames(settings["n_frames"], len(combos), seed, "data.comb")
    return [
        {
            "index": i,
            "phase": phase,
            "o_per_hf": ratio,
            "temp_K": temp,
            "n_samples": counts[i],
            "velocity_seed": int(lmp_seeds[i, 0]),
            "langevin_seed": int(lmp_seeds[i, 1]),
            "removal_seed": int(seed),
            "settings": settings,
        }
        for i, (phase, ratio, temp) in enumerate(combos)
    ]


def sample_frames(
    lmp: Any,
    equil_steps: int,
    sample_every: int,
    n_samples: int,
    label: Callable[[np.ndarray], dict[str, Any]] | None,
    what: str,
) -> tuple[list[dict[str, Any]], int, list[float], float, float]:
    """Run a prepared LAMMPS trajectory and take its frames: ``equil_steps`` first, then ``n_samples`` frames
    every ``sample_every`` steps, each labelled by ``label(positions)`` (extra keys of the frame) if given.

    Returns
    -------
    tuple
        The frames (``positions`` [N, 3] Å, ``md_step``, and the label's keys), the MD steps run, the
        instantaneous temperature at each frame (K), the MD wall time without the labelling (s) and the
        labelling's wall time (s).

    Raises
    ------
    RuntimeError
        When the trajectory (``what``, e.g. "COMB MD of cubic ratio 2 at 1200 K") becomes non-finite.
    """
    t_md = time.perf_counter()
    md_steps = 0
    if equil_steps > 0:
        lmp.command(f"run {equil_steps} post no")
        md_steps += equil_steps
    t_label = 0.0
    temps: list[float] = []
    frames: list[dict[str, Any]] = []
    for _ in range(n_samples):
        lmp.command(f"run {sample_every} post no")
        md_steps += sample_every
        temps.append(float(lmp.get_thermo("temp")))
        positions = gather_atoms(lmp, "x", 3)
        if not np.all(np.isfinite(positions)) or not math.isfinite(temps[-1]):
            raise RuntimeError(f"{what} became non-finite at step {md_steps}")
        frame: dict[str, Any] = {"positions": positions, "md_step": md_steps}
        if label is not None:
            tl = time.perf_counter()
            frame.update(label(positions))
            t_label += time.perf_counter() - tl
        frames.append(frame)
    return frames, md_steps, temps, time.perf_counter() - t_md - t_label, t_label


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
        data_path = write_comb_data(atoms, Path(tmp) / "cell.data")
        ffield = comb_ffield(tmp, s["over_coordination"])
        with contextlib.ExitStack() as stack:
            md = stack.enter_context(CombSession(data_path, ffield, HFO2_SPECIES))
            # no COMB labeller when another labeller labels the frames (data.label)
            labeller = stack.enter_context(CombSession(data_path, ffield, HFO2_SPECIES)) if task["label"] else None
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

            def comb_label(positions: np.ndarray) -> dict[str, Any]:
                assert labeller is not None  # only called with a labeller
                label = labeller.label(positions, gather_atoms(md.lmp, "q", 1), s["label_qeq_tol"])
                fce = labeller.force_consistent_energy(reference, positions, label.charges, label.energy)
                return {"energy": fce.energy, "reported_energy": label.energy, "forces": label.forces,
                        "n_iter": label.n_iter, "energy_change": label.energy_change,
                        "force_change": label.force_change, "path_error": fce.path_error,
                        "path_intervals": fce.n_intervals}

            frames, md_steps, temps, wall_md, t_label = sample_frames(
                md.lmp, s["equil_steps"], s["sample_every"], task["n_samples"],
                None if labeller is None else comb_label,
                f"COMB MD of {task['phase']} ratio {task['o_per_hf']:g} at {temp:g} K",
            )
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


def run_trajectories(
    worker: Callable[[dict[str, Any]], dict[str, Any]],
    tasks: Sequence[dict[str, Any]],
    workers: int,
    done: Callable[[dict[str, Any]], None],
) -> None:
    """Run ``worker`` on every task, in this process (``workers`` 1) or in ``workers`` spawned processes.

    ``done`` gets each result as it arrives (in completion order with several workers). ``worker`` must be
    a module-level function and the tasks picklable: ``spawn`` starts fresh interpreters, so no
    LAMMPS/MPI state is inherited from this process.
    """
    if workers == 1:
        for task in tasks:
            done(worker(task))
        return
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(worker, t) for t in tasks]
        for fut in concurrent.futures.as_completed(futures):
            done(fut.result())


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
        )
        if "energy" in fr:
            atoms.info.update(comb_energy_reported=float(fr["reported_energy"]))
            atoms.calc = SinglePointCalculator(atoms, energy=fr["energy"], forces=fr["forces"])
        out.append(atoms)
    return out


def generate_comb_frames(
    settings: CombSettings, seed: int, threads: int = 1, label: bool = True
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
        The ``data.comb`` block.
    seed
        Seed of the LAMMPS velocity and thermostat seeds (and of the O removal of extra ratios).
    threads
        Trajectories run in this many worker processes (one serial LAMMPS each, ``spawn`` start:
        a script calling this must guard its body with ``if __name__ == "__main__":``).
    label
        Label the frames with COMB. False: sample only (the frames carry no calculator; another
        labeller of :mod:`.labellers` labels them). The sampled positions are the same either way.

    Returns
    -------
    frames
        Labelled frames (energy, forces on a ``SinglePointCalculator``; info: phase, o_per_hf,
        temp_K, md_step, comb_energy_reported), ordered by trajectory.
    summary
        Per-trajectory timings, label convergence and force-integral errors.
    """
    s = _task_settings(settings)
    tasks = [t | {"label": bool(label)} for t in _comb_tasks(s, seed)]
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
        e = [f.get("energy", math.nan) for f in res["frames"]]
        logger.info(
            "trajectory %d/%d %s ratio %.2f %g K: %d frames, %d MD steps at %.1f steps/s "
            "(mean T %.0f K), %.2f s per label, U %.2f..%.2f eV (ideal cell %.2f), %.1f s wall, %.1f s CPU",
            len(results), len(tasks), res["phase"], res["o_per_hf"], res["temp_K"], len(res["frames"]),
            res["md_steps"], res["md_steps_per_s"], res["md_temp_mean_K"], res["label_s_per_frame"],
            min(e), max(e), res["start_energy"], res["wall_s"], res["cpu_s"],
        )

    run_trajectories(_run_comb_trajectory, tasks, workers, _done)
    results.sort(key=lambda r: r["index"])
    frames = [a for r in results for a in _frames_to_atoms(r)]
    all_fr = [f for r in results for f in r["frames"]]
    keys = ("phase", "o_per_hf", "temp_K", "md_steps", "md_temp_mean_K", "md_steps_per_s",
            "label_s_per_frame", "wall_s", "cpu_s", "start_energy")
    summary = {
        "trajectories": [{k: r[k] for k in keys} | {"n_frames": len(r["frames"])} for r in results],
        "over_coordination": s["over_coordination"],
        "workers": workers,
        "cpu_s": float(sum(r["cpu_s"] for r in results)),
        "settings": s,
    }
    if not label:
        summary["label"] = "not labelled by COMB (sampled only)"
        return frames, summary
    summary |= {
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
    }
    return frames, summary


