"""Typed, frozen views of a validated campaign configuration.

:func:`gnnff_stability.config.validate_config` is the only gate: it fills every default from the schema
and checks every rule that spans keys. The classes here are built from its output **without checking
it again**, and library functions take them instead of loose dicts. Field meanings, units and defaults
are documented once, in ``schemas/config.schema.yaml``; each class names the block it mirrors.

This is the one way a library function gets its settings: ``Class.from_config`` of a block that
:func:`~gnnff_stability.config.validate_config` returned. Library functions take these objects, never
loose dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from gnnff_stability._sections import Section, frozen_value
from gnnff_stability.families import FAMILIES
from gnnff_stability.materials import (
    CrystalSettings,
    MaterialSettings,
    OODSettings,
    ReferencePotentialSettings,
)

__all__ = [
    "ActiveSettings",
    "CombSettings",
    "CommitteeSettings",
    "CrystalSettings",
    "CorrSettings",
    "DataSettings",
    "ExtxyzSettings",
    "FigureSettings",
    "HPCSettings",
    "HarvestSettings",
    "MDSettings",
    "MaterialSettings",
    "MethodPreset",
    "ModelPreset",
    "NVEMetricSettings",
    "OODSettings",
    "RDFSettings",
    "RampMetricSettings",
    "RefMDSettings",
    "ReferencePotentialSettings",
    "ReferenceSamplingSettings",
    "RetrainSettings",
    "StabilitySettings",
    "StructureSettings",
    "TrainingSettings",
]

@dataclass(frozen=True)
class CombSettings(Section):
    """``data.comb``: the COMB reference-data generator (Å, K, fs)."""

    block: ClassVar[str] = "data.comb"
    n_frames: int
    temps_K: tuple[float, ...]
    phases: tuple[str, ...]
    extra_ratios: tuple[float, ...]
    supercell: tuple[int, int, int]
    equil_steps: int
    sample_every: int
    dt_fs: float
    damp_fs: float
    qeq_every: int
    label_qeq_tol: float
    over_coordination: bool


@dataclass(frozen=True)
class ExtxyzSettings(Section):
    """``data.extxyz``: the user's own labelled extended XYZ files (paths relative to the run directory)."""

    block: ClassVar[str] = "data.extxyz"
    file: str
    train: str
    valid: str
    test: str
    name: str

    @property
    def files(self) -> dict[str, str]:
        """The files given, by role: ``{"file": ...}`` or ``{"train": ..., "valid": ..., "test": ...}``."""
        return {k: v for k, v in (("file", self.file), ("train", self.train), ("valid", self.valid),
                                  ("test", self.test)) if v}


@dataclass(frozen=True)
class ReferenceSamplingSettings(Section):
    """``data.reference``: frames sampled and labelled with material.reference's pair style (Å, K, fs)."""

    block: ClassVar[str] = "data.reference"
    n_frames: int
    temps_K: tuple[float, ...]
    extra_ratios: tuple[float, ...]
    supercell: tuple[int, int, int]
    equil_steps: int
    sample_every: int
    dt_fs: float
    damp_fs: float


@dataclass(frozen=True)
class DataSettings(Section):
    """``data``: where the reference energies and forces come from."""

    block: ClassVar[str] = "data"
    nested: ClassVar[dict[str, type]] = {"comb": CombSettings, "extxyz": ExtxyzSettings,
                                         "reference": ReferenceSamplingSettings}
    source: str
    label: str
    samd23_dir: str
    extxyz: ExtxyzSettings
    seed: int
    split: tuple[float, float, float]
    reference: ReferenceSamplingSettings
    comb: CombSettings


@dataclass(frozen=True)
class StructureSettings(Section):
    """``structures``: the MD start cells."""

    block: ClassVar[str] = "structures"
    supercell: tuple[int, int, int]
    relax: str
    relax_fmax_eV_per_A: float
    relax_max_steps: int


@dataclass(frozen=True)
class TrainingSettings(Section):
    """``training``: nequip-train settings shared by every model."""

    block: ClassVar[str] = "training"
    max_epochs: int
    batch_size: int
    lr: float
    loss_coeffs: Mapping[str, float]
    dtype: str
    device: str
    checkpoint: str


@dataclass(frozen=True)
class HPCSettings(Section):
    """``md.hpc``: the HPC engine (an external ``lmp`` with pair_nequip / pair_allegro)."""

    block: ClassVar[str] = "md.hpc"
    lmp: str
    launcher: str
    pair_style: str
    plugin: str


class _TimeSteps:
    """``dt_ps`` and ``damp_ps`` of a block with ``dt_fs`` and ``damp_fs`` (LAMMPS ``units metal``)."""

    dt_fs: float
    damp_fs: float

    @property
    def dt_ps(self) -> float:
        """Timestep in ps (LAMMPS ``units metal``)."""
        return self.dt_fs / 1000.0

    @property
    def damp_ps(self) -> float:
        """Langevin damping time in ps."""
        return self.damp_fs / 1000.0


@dataclass(frozen=True)
class MDSettings(_TimeSteps, Section):
    """``md``: the MD protocol and the crash / fail thresholds (fs, K, eV/Å, Å)."""

    block: ClassVar[str] = "md"
    nested: ClassVar[dict[str, type]] = {"hpc": HPCSettings}
    engine: str
    steps: int
    dt_fs: float
    damp_fs: float
    dump_every: int
    thermo_every: int
    model_format: str
    device: str
    fmax_crash_eV_per_A: float
    temp_fail_factor: float
    rmin_fail_A: float
    hpc: HPCSettings


@dataclass(frozen=True)
class FigureSettings(Section):
    """``figures``: what the figures show."""

    block: ClassVar[str] = "figures"
    temp_K: int | None
    overhead_benchmark: tuple[str, ...]


@dataclass(frozen=True)
class RefMDSettings(_TimeSteps, Section):
    """``refmd``: the reference-potential (COMB) MD behind the RDF metrics."""

    block: ClassVar[str] = "refmd"
    enabled: bool
    steps: int
    dt_fs: float
    damp_fs: float
    dump_every: int
    thermo_every: int
    qeq_every: int


@dataclass(frozen=True)
class StabilitySettings(Section):
    """``stability``: S_index exponents, the temperature-factor reading, the time-to-failure band."""

    block: ClassVar[str] = "stability"
    alpha: float
    beta: float
    temp_term: str
    crash_score: str
    equil_steps: int
    ttf_band_K: float | None


@dataclass(frozen=True)
class NVEMetricSettings(Section):
    """``metrics.nve``: the NVE energy-drift run (K, steps)."""

    block: ClassVar[str] = "metrics.nve"
    enabled: bool
    temp_K: float
    equil_steps: int
    steps: int
    dt_fs: float | None
    warmup_fraction: float
    vseed: int

    def timestep_fs(self, md_dt_fs: float) -> float:
        """Timestep of the NVE run, fs: ``dt_fs``, else the ``md`` block's."""
        return float(md_dt_fs if self.dt_fs is None else self.dt_fs)

    @property
    def is_lambench(self) -> bool:
        """LAMBench's protocol: a Maxwell-Boltzmann start at 300 K, 10,000 steps of 1 fs NVE, the
        first 20 % dropped (otherwise this project's shorter window)."""
        return (self.equil_steps == 0 and float(self.temp_K) == 300.0 and self.steps == 10_000
                and self.dt_fs is not None and float(self.dt_fs) == 1.0
                and float(self.warmup_fraction) == 0.2)


@dataclass(frozen=True)
class RampMetricSettings(Section):
    """``metrics.ramp``: the temperature-ramp run (K, steps)."""

    block: ClassVar[str] = "metrics.ramp"
    enabled: bool
    t_start_K: float
    t_stop_K: float
    steps: int
    rate_K_per_ps: float | None
    damp_fs: float | None
    window_steps: int
    vseed: int

    def ramp_steps(self, dt_fs: float) -> int:
        """Steps of the ramp at timestep ``dt_fs`` (fs): ``steps``, or the length ``rate_K_per_ps`` sets."""
        if self.rate_K_per_ps is None:
            return int(self.steps)
        duration_fs = 1000.0 * (float(self.t_stop_K) - float(self.t_start_K)) / float(self.rate_K_per_ps)
        return max(1, round(duration_fs / float(dt_fs)))

    def damping_fs(self, md_damp_fs: float) -> float:
        """Langevin damping of the ramp, fs: ``damp_fs``, else the ``md`` block's."""
        return float(md_damp_fs if self.damp_fs is None else self.damp_fs)


@dataclass(frozen=True)
class RDFSettings(Section):
    """``rdf``: radial distribution functions (Å)."""

    block: ClassVar[str] = "rdf"
    r_max: float
    n_bins: int


@dataclass(frozen=True)
class ModelPreset:
    """``models.<name>``: a model family and the hyper-parameters passed to its Hydra template.

    ``hyper`` holds only the keys of the schema's ``models`` block that this family reads
    (``model_keys`` of its :data:`gnnff_stability.families.FAMILIES` record); ``overrides`` are full Hydra paths.
    """

    name: str
    family: str
    hyper: Mapping[str, Any]
    overrides: Mapping[str, Any]

    @classmethod
    def from_config(cls, name: str, values: Mapping[str, Any]) -> ModelPreset:
        rest = {k: v for k, v in values.items() if k not in ("family", "overrides")}
        return cls(name, values["family"], frozen_value(rest), frozen_value(values["overrides"]))


@dataclass(frozen=True)
class CorrSettings(Section):
    """The correlation loss for one model family: what the training module needs.

    ``selection`` is the feature selection of that family (``methods.<name>.corr.features``); the rest
    is the coefficient schedule and the edge sampling of ``methods.<name>.corr``.
    """

    selection: str
    scheduler: str
    c_min: float
    c_max: float
    t_cycle: int
    sample_edges: int | str


@dataclass(frozen=True)
class CommitteeSettings(Section):
    """``methods.<name>.active.harvest.committee``: DP-GEN's force-deviation filter (eV/Å)."""

    block: ClassVar[str] = "methods.<name>.active.harvest.committee"
    seeds: tuple[int, ...]
    trust_lo: float
    trust_hi: float


@dataclass(frozen=True)
class HarvestSettings(Section):
    """``methods.<name>.active.harvest``: which runs an active-learning round harvests, which frames."""

    block: ClassVar[str] = "methods.<name>.active.harvest"
    nested: ClassVar[dict[str, type]] = {"committee": CommitteeSettings}
    outcomes: tuple[str, ...]
    window_steps: int
    cell_seed: tuple[int, ...]
    vseed: tuple[int, ...]
    ratio: tuple[float, ...] | None
    temp_K: tuple[int, ...] | None
    max_frames: int | None
    committee: CommitteeSettings | None


@dataclass(frozen=True)
class RetrainSettings(Section):
    """``methods.<name>.active.retrain``: how a round retrains on the merged training split."""

    block: ClassVar[str] = "methods.<name>.active.retrain"
    mode: str
    epochs: int
    lr: float


@dataclass(frozen=True)
class ActiveSettings(Section):
    """``methods.<name>.active``: active-learning rounds from failed runs."""

    block: ClassVar[str] = "methods.<name>.active"
    nested: ClassVar[dict[str, type]] = {"harvest": HarvestSettings, "retrain": RetrainSettings}
    rounds: int
    base: str
    harvest: HarvestSettings
    label: str
    retrain: RetrainSettings


@dataclass(frozen=True)
class MethodPreset:
    """``methods.<name>``: a training method, the baseline when no stabiliser is set.

    ``corr`` is the correlation loss (features per family, schedule), ``sam`` the sharpness-aware
    minimisation settings, ``prior`` the repulsive pair term (``"none"`` or ``"zbl"``), ``decomposition``
    the two- and three-body terms (``body``, ``freeze``, ``prefit``), ``active`` the active-learning
    rounds (:class:`ActiveSettings`); ``None`` where unset.
    """

    name: str
    description: str
    corr: Mapping[str, Any] | None
    sam: Mapping[str, Any] | None = None
    prior: str = "none"
    decomposition: Mapping[str, Any] | None = None
    active: ActiveSettings | None = None

    @classmethod
    def from_config(cls, name: str, values: Mapping[str, Any]) -> MethodPreset:
        def opt(key: str) -> Mapping[str, Any] | None:
            return None if values.get(key) is None else frozen_value(values[key])

        active = values.get("active")
        return cls(name, values["description"], opt("corr"), opt("sam"), values.get("prior", "none"),
                   opt("decomposition"), None if active is None else ActiveSettings.from_config(active))

    @property
    def stabilisers(self) -> tuple[str, ...]:
        """The stabilisers this method switches on, in a fixed order: ``corr``, ``sam``, the prior's
        name, ``decomposition``, ``active``; empty for the baseline."""
        return tuple(name for name, on in (
            ("corr", self.corr is not None), ("sam", self.sam is not None),
            (self.prior, self.prior != "none"), ("decomposition", self.decomposition is not None),
            ("active", self.active is not None),
        ) if on)

    @property
    def is_baseline(self) -> bool:
        return not self.stabilisers

    def applies_to(self, family: str) -> bool:
        """Whether this method can train ``family``: a correlation loss only the families it names, a
        prior or decomposition only the families whose registry record supports it
        (:data:`gnnff_stability.families.FAMILIES`); the baseline and SAM every family."""
        record = FAMILIES[family]
        if self.corr is not None and family not in self.corr["features"]:
            return False
        if self.prior != "none" and not record.supports_prior:
            return False
        if self.decomposition is not None and not record.supports_decomposition:
            return False
        return True
