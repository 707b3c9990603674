"""The model families: what each one is and can do, one record per family.

Everything the campaign needs to know about an architecture family lives in its :class:`Family`
record of :data:`FAMILIES`: its Hydra template, the ``models.<name>`` keys it reads, the feature
selections of the correlation loss and the module paths they hook, the LAMMPS pair style that runs it
(or none: the embedded engine only), whether a repulsive prior or the body-term decomposition can be
added to it and its display name in tables and figures. A family holds no species: the model type names
are the material's (``material.species``), given where a run is set up. The schema's family enums must
agree with these records (a test checks them); the configuration, the run table, the trainer, the MD
engines and the report read the records and never list families themselves.

A model preset's name is free (``models: {big_nequip: {family: nequip}}``): code that needs the family
of a run reads the run table's ``family`` column, and labels are looked up by family
(:func:`display_name`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["FAMILIES", "Family", "display_name", "family", "model_label", "pair_style"]


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes
    ----------
    name
        The value of ``models.<name>.family``.
    display
        How tables and figures name the family.
    template
        The Hydra template of ``nequip-train`` (a file of ``gnnff_stability/train/templates``).
    model_keys
        The keys of the schema's ``models`` block this family reads (the rest belong to others).
    selections
        Feature selections of the correlation loss implemented for this family
        (:func:`gnnff_stability.train.features.build_taps`), in the schema's order.
    hook_path
        Regular expression of the module names the selections hook, one per layer, group 1 the layer
        index (matched against ``named_modules()`` of the built model).
    default_corr_selection
        The selection the Corr value of a model is measured on when its method sets none (the
        baseline).
    paper_main_selection
        The selection of the paper's main correlation-loss method, ``None`` where the paper has no
        such row (GemNet-T is this project's extension).
    pair_style
        LAMMPS pair style of the HPC engine (pair_nequip_allegro), ``None`` where there is none: such
        a family runs only in the embedded engine.
    supports_prior, supports_decomposition
        Whether a repulsive prior (``prior: zbl``) or the body-term decomposition can be added: both
        need a builder ending in nequip's ``total_energy_sum`` with a ``pair_potential``.
    """

    name: str
    display: str
    template: str
    model_keys: frozenset[str]
    selections: tuple[str, ...]
    hook_path: str
    default_corr_selection: str
    paper_main_selection: str | None
    pair_style: str | None
    supports_prior: bool
    supports_decomposition: bool

    @property
    def embedded_only(self) -> bool:
        """No LAMMPS pair style exists for the family: its runs use the embedded engine."""
        return self.pair_style is None


_FAMILIES = (
    Family(
        name="nequip",
        display="NequIP",
        template="nequip.yaml",
        model_keys=frozenset({"r_max", "l_max", "num_features", "num_bessels", "parity"}),
        selections=("edge", "edge_0e", "edge_1o", "edge_0e+1o", "node"),
        hook_path=r"(?:^|\.)layer(\d+)_convnet$",
        # The paper's NequIP "corr" row equals its ``edge 1o`` ablation (Tables 2 and 4).
        default_corr_selection="edge_1o",
        paper_main_selection="edge_1o",
        pair_style="nequip",
        supports_prior=True,
        supports_decomposition=True,
    ),
    Family(
        name="allegro",
        display="Allegro",
        template="allegro.yaml",
        model_keys=frozenset(
            {"r_max", "l_max", "num_scalar_features", "num_tensor_features", "num_bessels", "parity"}
        ),
        selections=("edge", "edge+env"),
        hook_path=r"(?:^|\.)latents\.(\d+)$",
        default_corr_selection="edge",
        # Inferred: the paper's Table A3 fixed-schedule row equals Table A1's edge+env row, and its
        # cosine row equals Table 2.
        paper_main_selection="edge+env",
        pair_style="allegro",
        supports_prior=True,
        supports_decomposition=True,
    ),
    Family(
        name="gemnet",
        display="GemNet-T",
        template="gemnet.yaml",
        model_keys=frozenset(
            {"r_max", "emb_size_atom", "emb_size_edge", "emb_size_trip", "emb_size_rbf", "emb_size_cbf",
             "emb_size_bil_trip", "num_radial", "num_spherical", "max_neighbors"}
        ),
        selections=("edge",),
        hook_path=r"(?:^|\.)gemnet\.blocks\.(\d+)\.edge_features$",
        default_corr_selection="edge",
        paper_main_selection=None,
        # GemNet-T has no LAMMPS pair style, and does not export with AOTInductor (data-dependent shapes
        # in its triplet construction): it runs as an eager package in the embedded engine.
        pair_style=None,
        supports_prior=False,
        supports_decomposition=False,
    ),
)

#: Every model family, by ``models.<name>.family``.
FAMILIES: Mapping[str, Family] = MappingProxyType({f.name: f for f in _FAMILIES})


def family(name: str) -> Family:
    """The record of family ``name``; a clear error naming the known families otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


def display_name(name: str) -> str:
    """How tables and figures name family ``name``."""
    return family(name).display


def pair_style(family_name: str | None, setting: str = "auto") -> str:
    """The LAMMPS pair style of the HPC engine for a run of ``family_name``: ``setting``
    (``md.hpc.pair_style``) unless it is ``auto``, else the family's ``pair_style``.

    Raises
    ------
    ValueError
        ``auto`` for a family without a pair style, naming the families that have one.
    """
    if setting != "auto":
        return setting
    record = FAMILIES.get(family_name or "")
    if record is None or record.pair_style is None:
        supported = [f.name for f in FAMILIES.values() if f.pair_style is not None]
        raise ValueError(
            f"the HPC engine supports the families with a LAMMPS pair style ({', '.join(supported)}: "
            f"pair_nequip_allegro), got family {family_name!r}"
        )
    return record.pair_style


def model_label(model: str, family_name: str) -> str:
    """How tables and figures name model preset ``model`` of family ``family_name``: the family's display
    name, with the preset's own name beside it where the two differ (``NequIP (big_nequip)``), so that two
    presets of one family stay apart."""
    display = display_name(family_name)
    return display if model == family_name else f"{display} ({model})"
