"""How tables and figures name a material's cells, pairs and reference potential, from its
:class:`~gnnff_stability.settings.MaterialSettings` (never a fixed chemistry).

The grid's ``ratio`` is atoms of ``material.ood.remove`` per atom of ``material.ood.per``; a cell is
printed as ``"<per>:<remove> 1:<ratio>"`` (HfO2: ``"Hf:O 1:1.55"``; SiC: ``"Si:C 1:0.9"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gnnff_stability.settings import MaterialSettings

__all__ = ["NEUTRAL_AXIS", "axis_of_config", "is_paper_material", "pair_dash_names", "ratio_axis", "ratio_label",
           "reference_label"]

#: The axis label where no material is known (a command line given only a table).
NEUTRAL_AXIS = "ratio"


def ratio_axis(material: MaterialSettings) -> str:
    """The OOD axis of the grid's ratio as ``"<per>:<remove>"`` (HfO2: ``"Hf:O"``)."""
    return f"{material.ood.per}:{material.ood.remove}"


def ratio_label(axis: str, ratio: Any) -> str:
    """A cell's ratio as printed in titles and lines: ``ratio_label("Hf:O", "1.55") -> "Hf:O 1:1.55"``."""
    return f"{axis} 1:{float(ratio):g}"


def pair_dash_names(material: MaterialSettings) -> tuple[str, ...]:
    """Pair names with a hyphen, in type order, as the pair-force CSVs name them (``"Si-C"``)."""
    sp = material.species
    return tuple(f"{sp[a - 1]}-{sp[b - 1]}" for a, b in material.pairs)


def reference_label(material: MaterialSettings) -> str:
    """The reference potential's name in legends: ``COMB``, the LAMMPS pair style, or ``reference``."""
    ref = material.reference
    if ref.kind == "comb":
        return "COMB"
    return ref.pair_style or "reference"


def axis_of_config(path: str | Path | None) -> str:
    """The ratio axis of a configuration file's material (command lines given ``--config``);
    :data:`NEUTRAL_AXIS` for ``None``."""
    if path is None:
        return NEUTRAL_AXIS
    from gnnff_stability.config import material_block  # noqa: PLC0415 (only the command lines need it)

    return ratio_axis(MaterialSettings.from_config(material_block(path)))


def is_paper_material(material: MaterialSettings) -> bool:
    """Whether the paper's published values describe this material (its species are HfO2's)."""
    from gnnff_stability.data.hfo2 import HFO2_SPECIES  # noqa: PLC0415

    return tuple(material.species) == tuple(HFO2_SPECIES)
