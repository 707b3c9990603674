"""The LAMMPS input both MD engines run, written once.

Both engines execute the same command list; only the block that supplies the forces differs
(``fix external pf/callback`` in the embedded engine, ``pair_style nequip|allegro`` on HPC) and the
condition that halts a blowing-up run. The protocol is the paper's: ``units metal``, velocities drawn at
T, a Langevin thermostat at T on top of ``fix nve``, snapshots every ``dump_every`` steps.
The stability metrics swap the thermostat (:class:`Thermostat`): Langevin then ``unfix`` and plain
NVE, or a Langevin set point ramped linearly over the run.

Forces in the dump and in the thermo ``fmax`` column are the **model's** forces: ``fix store/force`` is
defined after the force source and before ``fix langevin``, so it records the forces before the
thermostat adds its friction and random kicks (those reach ~10 eV/Å for Hf at 0.25 fs, 100 fs damping,
1200 K and would otherwise swamp the model's forces). The dump names those columns ``fx fy fz``.

Spatial atom sorting is off (``atom_modify sort 0 0.0``). ``fix langevin`` draws its random forces in
local atom order, and LAMMPS's default sort bins are half the neighbour cutoff, which differs between
the engines (``pair_style zero 1.0`` beside ``fix external`` versus the model's ``r_max``); with
sorting on, the same seed gave the two engines different thermostat kicks from step 1. With it off,
the same model, cell and seed give the same trajectory in both engines (96 atoms gain nothing from
sorting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gnnff_stability.settings import MaterialSettings, MDSettings, RefMDSettings

__all__ = [
    "THERMO_KEYWORDS",
    "ProtocolPaths",
    "Thermostat",
    "lammps_seeds",
    "render_protocol",
]

#: ``thermo_style custom`` keywords, in the column order of thermo.csv.
THERMO_KEYWORDS: tuple[str, ...] = ("step", "temp", "pe", "ke", "etotal", "atoms", "c_fmax")

#: Largest seed LAMMPS's Marsaglia generator (``fix langevin``) accepts.
MARSAGLIA_SEED_MAX = 900_000_000

#: Fix/compute/variable ids used by the protocol.
FIX_EXTERNAL = "gnnff_ext"
FIX_STORE = "gnnff_fstore"
FIX_LANGEVIN = "gnnff_langevin"
HALT_VARIABLE = "gnnff_halt"

THERMOSTAT_KINDS = ("langevin", "nve", "ramp")


@dataclass(frozen=True)
class Thermostat:
    """What holds the temperature during a run.

    ``langevin``
        Langevin at the run's temperature throughout (the campaign's protocol).
    ``nve``
        Langevin at the run's temperature for ``equil_steps``, then ``unfix`` of the thermostat and
        plain NVE for the rest of the run (``equil_steps = 0``: NVE from the start).
    ``ramp``
        Langevin whose set point moves linearly from the run's temperature at step 0 to ``t_stop_K``
        at the last step (``fix langevin T_start T_stop``; the embedded engine's chunks pass
        ``start 0 stop <steps>`` so the ramp spans them). ``window_steps`` is the window of the
        temperature-fail rule against the moving set point.
    """

    kind: str = "langevin"
    equil_steps: int = 0
    t_stop_K: float | None = None
    window_steps: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in THERMOSTAT_KINDS:
            raise ValueError(f"thermostat kind must be one of {THERMOSTAT_KINDS}, got {self.kind!r}")
        if isinstance(self.equil_steps, bool) or int(self.equil_steps) < 0:
            raise ValueError(f"equil_steps must be an integer >= 0, got {self.equil_steps!r}")
        if self.kind != "nve" and self.equil_steps:
            raise ValueError(f"equil_steps applies to the 'nve' thermostat only, got {self!r}")
        if self.kind == "ramp":
            if self.t_stop_K is None or not self.t_stop_K > 0:
                raise ValueError(f"a ramp needs t_stop_K > 0, got {self.t_stop_K!r}")
            if self.window_steps is None or int(self.window_steps) < 1:
                raise ValueError(f"a ramp needs window_steps >= 1, got {self.window_steps!r}")
        elif self.t_stop_K is not None or self.window_steps is not None:
            raise ValueError(
                f"t_stop_K and window_steps apply to the 'ramp' thermostat only, got {self!r}")

    def segments(self, steps: int) -> list[tuple[int, list[str]]]:
        """The run as ``(steps, commands issued before them)`` pieces: the ``unfix`` of ``nve``."""
        if self.kind == "nve" and 0 < self.equil_steps:
            if self.equil_steps >= steps:
                raise ValueError(f"equil_steps {self.equil_steps} must be below the run's {steps} steps")
            return [(self.equil_steps, []), (steps - self.equil_steps, [f"unfix {FIX_LANGEVIN}"])]
        return [(steps, [])]

    def set_point_K(self, step: np.ndarray, temp_K: float, steps: int) -> np.ndarray | None:
        """Set point at each step of a ramp, K (``None`` for a constant set point or none)."""
        if self.kind != "ramp":
            return None
        from gnnff_stability.analysis.metrics import ramp_set_point_K  # noqa: PLC0415

        return ramp_set_point_K(step, temp_K, float(self.t_stop_K), steps)


@dataclass(frozen=True)
class ProtocolPaths:
    """Files the protocol reads and writes (paths are written into the LAMMPS input as given)."""

    cell: Path
    dump: Path


def lammps_seeds(seed: int) -> tuple[int, int]:
    """LAMMPS seeds (velocity, Langevin) derived from the run's velocity seed.

    LAMMPS seeds must be positive integers, and the campaign's seeds start at 0, so both are drawn from
    ``numpy.random.default_rng(seed)`` in [1, 2**30): reproducible, distinct for the two uses, and
    distinct between seeds. ``fix langevin``'s Marsaglia generator accepts only seeds up to
    900,000,000, so a larger Langevin draw is folded into [1, 900,000,000] (seeds that were valid
    keep their value).

    Parameters
    ----------
    seed
        The run's velocity seed (the ``vseed`` wildcard), >= 0.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    velocity_seed, langevin_seed = np.random.default_rng(int(seed)).integers(1, 2**30, size=2)
    if langevin_seed > MARSAGLIA_SEED_MAX:
        langevin_seed = 1 + (langevin_seed - 1) % MARSAGLIA_SEED_MAX
    return int(velocity_seed), int(langevin_seed)


def _quote(path: Path | str) -> str:
    text = str(path)
    if '"' in text:
        raise ValueError(f"paths given to LAMMPS cannot contain double quotes, got {text!r}")
    return f'"{text}"'


def render_protocol(
    paths: ProtocolPaths,
    temp_K: float,
    seed: int,
    settings: MDSettings | RefMDSettings,
    material: MaterialSettings,
    force_block: Sequence[str],
    halt_block: Sequence[str],
    thermostat: Thermostat | None = None,
) -> list[str]:
    """The protocol as a list of LAMMPS commands, without the final ``run``.

    Parameters
    ----------
    paths
        Cell data file to read and dump file to write.
    temp_K
        Target temperature, K (velocities and thermostat).
    seed
        Velocity seed of the run (see :func:`lammps_seeds`).
    settings
        The ``md`` block, or the ``refmd`` block for the reference potential's MD (the timestep,
        damping, thermo and dump intervals are read).
    material
        The material: one ``mass`` command per species, in LAMMPS type order (``material.species``),
        with ``material.masses``.
    force_block
        Commands that define the forces (pair style or fix external); they come right after the
        masses, and any fix they define precedes ``fix store/force``.
    halt_block
        Commands that define ``fix halt`` (they may use ``c_fmax`` and ``c_fsum``).
    thermostat
        The thermostat (default ``Thermostat("langevin")``). ``nve`` with equilibration and ``ramp``
        define ``fix langevin`` here; the ``unfix`` is issued by the engine between the run's
        segments (:meth:`Thermostat.segments`).

    Returns
    -------
    list of str
        One LAMMPS command per item.
    """
    if not temp_K > 0:
        raise ValueError(f"temp_K must be > 0, got {temp_K!r}")
    thermostat = thermostat or Thermostat()
    velocity_seed, langevin_seed = lammps_seeds(seed)
    s = settings
    lines = [
        "# gnnff-stability MD protocol (gnnff_stability.md.protocol)",
        "units metal",
        "atom_style atomic",
        f"read_data {_quote(paths.cell)}",
    ]
    lines += [f"mass {i + 1} {material.masses[sym]}" for i, sym in enumerate(material.species)]
    lines += list(force_block)
    lines += [
        "neighbor 2.0 bin",
        "atom_modify sort 0 0.0",
        "neigh_modify every 1 delay 0 check yes",
        f"timestep {s.dt_ps:.10g}",
        f"velocity all create {temp_K:.10g} {velocity_seed} dist gaussian mom yes rot yes",
        f"fix {FIX_STORE} all store/force",
    ]
    t_stop = thermostat.t_stop_K if thermostat.kind == "ramp" else temp_K
    if thermostat.kind != "nve" or thermostat.equil_steps > 0:
        lines.append(f"fix {FIX_LANGEVIN} all langevin {temp_K:.10g} {t_stop:.10g} "
                     f"{s.damp_ps:.10g} {langevin_seed}")
    lines += [
        "fix gnnff_nve all nve",
        f"variable gnnff_fmag atom sqrt(f_{FIX_STORE}[1]^2+f_{FIX_STORE}[2]^2+f_{FIX_STORE}[3]^2)",
        "compute fmax all reduce max v_gnnff_fmag",
        "compute fsum all reduce sum v_gnnff_fmag",
    ]
    lines += list(halt_block)
    lines += [
        "thermo_style custom " + " ".join(THERMO_KEYWORDS),
        "thermo_modify lost ignore norm no flush yes format float %.12g",
        f"thermo {s.thermo_every}",
        f"dump d all custom {s.dump_every} {_quote(paths.dump)} id type x y z "
        f"f_{FIX_STORE}[1] f_{FIX_STORE}[2] f_{FIX_STORE}[3]",
        "dump_modify d sort id format float %.10g colname 6 fx colname 7 fy colname 8 fz",
    ]
    return lines
