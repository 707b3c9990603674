"""The LAMMPS input both MD engines run, written once.

Both engines execute the same command list; only the block that supplies the forces differs
(``fix external pf/callback`` in the embedded engine, ``pair_style nequip|allegro`` on HPC) and the
condition that halts a blowing-up run. The protocol is the paper's: ``units metal``, velocities drawn at
T, a Langevin thermostat at T on top of ``fix nve``, snapshots every ``dump_every`` steps.

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

from gnnff_stability.settings import MDSettings
from gnnff_stability.species import MASSES, SPECIES

__all__ = [
    "THERMO_KEYWORDS",
    "ProtocolPaths",
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
HALT_VARIABLE = "gnnff_halt"


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
    settings: MDSettings,
    force_block: Sequence[str],
    halt_block: Sequence[str],
    langevin: bool = True,
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
        The MD settings.
    force_block
        Commands that define the forces (pair style or fix external); they come right after the
        masses, and any fix they define precedes ``fix store/force``.
    halt_block
        Commands that define ``fix halt`` (they may use ``c_fmax`` and ``c_fsum``).
    langevin
        ``False`` drops the thermostat (plain NVE), for energy-conservation checks only.

    Returns
    -------
    list of str
        One LAMMPS command per item.
    """
    if not temp_K > 0:
        raise ValueError(f"temp_K must be > 0, got {temp_K!r}")
    velocity_seed, langevin_seed = lammps_seeds(seed)
    s = settings
    lines = [
        "# gnnff-stability MD protocol (gnnff_stability.md.protocol)",
        "units metal",
        "atom_style atomic",
        f"read_data {_quote(paths.cell)}",
    ]
    lines += [f"mass {i + 1} {MASSES[sym]}" for i, sym in enumerate(SPECIES)]
    lines += list(force_block)
    lines += [
        "neighbor 2.0 bin",
        "atom_modify sort 0 0.0",
        "neigh_modify every 1 delay 0 check yes",
        f"timestep {s.dt_ps:.10g}",
        f"velocity all create {temp_K:.10g} {velocity_seed} dist gaussian mom yes rot yes",
        f"fix {FIX_STORE} all store/force",
    ]
    if langevin:
        lines.append(f"fix gnnff_langevin all langevin {temp_K:.10g} {temp_K:.10g} "
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
