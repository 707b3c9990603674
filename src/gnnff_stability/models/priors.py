"""A repulsive prior: nequip's own ZBL pair term, switched on from the Hydra templates.

nequip's NequIP and Allegro builders (``nequip.model.NequIPGNNModel``, ``allegro.model.AllegroModel``)
take a ``pair_potential`` argument: a Hydra config of a module that adds a pair energy to the
per-atom energy before the total-energy sum (so forces and stress include it). The builder adds
``type_names`` and ``irreps_in`` itself; the config gives the rest. For the universal ZBL screened
nuclear repulsion (Ziegler, Biersack, Littmark 1985, as LAMMPS ``pair_style zbl``)::

    pair_potential:
      _target_: nequip.nn.pair_potential.ZBL
      units: metal                  # energies in eV, distances in Å (also: real)
      chemical_species: [Hf, O]     # chemical symbol of every model type, in type_names order

``E_ij = 14.399645 Z_i Z_j / r * phi(r / a) * u(r / r_max)`` with the atomic numbers ``Z`` looked up
from ``chemical_species``, ``a = 0.46850 / (Z_i^0.23 + Z_j^0.23)`` Å, the ZBL screening sum
``phi``, and nequip's polynomial envelope ``u`` (``polynomial_cutoff_p``, default 6) at the model's
``r_max`` (or its per-edge-type cutoffs); half of it is assigned to each atom of the pair. It has
no parameters and costs one pass over the edges. Allegro adds its own cutoff field when a pair
potential is given; NequIP already has it.

The Hydra templates (``train/templates``) have no ``pair_potential`` key, so the override adds it
(``++``, which also replaces one if a later template has it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ase.data import atomic_numbers

__all__ = ["ZBL_OVERRIDE_KEY", "ZBL_TARGET", "zbl_overrides", "zbl_pair_potential"]

ZBL_TARGET = "nequip.nn.pair_potential.ZBL"
ZBL_OVERRIDE_KEY = "++training_module.model.pair_potential"
_UNITS = ("metal", "real")


def zbl_pair_potential(
    chemical_species: Sequence[str],
    units: str = "metal",
    polynomial_cutoff_p: float = 6,
) -> dict[str, Any]:
    """The ``pair_potential`` config of nequip's ZBL term.

    Parameters
    ----------
    chemical_species
        Chemical symbol of every model type, in the order of the model's ``type_names`` (the
        campaign's: the material's ``material.species``, in LAMMPS type order).
    units
        LAMMPS units of the data: ``metal`` (eV, Å; the default and this project's) or ``real``
        (kcal/mol, Å).
    polynomial_cutoff_p
        Exponent of the envelope that takes the term to zero at ``r_max`` (default 6).
    """
    species = [str(s) for s in chemical_species]
    if not species:
        raise ValueError("chemical_species must name at least one element")
    unknown = [s for s in species if s not in atomic_numbers or atomic_numbers[s] < 1]
    if unknown:
        raise ValueError(f"ZBL needs chemical symbols (atomic numbers); not elements: {unknown}")
    if units not in _UNITS:
        raise ValueError(f"units must be one of {_UNITS}, got {units!r}")
    if float(polynomial_cutoff_p) < 2:
        raise ValueError(f"polynomial_cutoff_p must be >= 2, got {polynomial_cutoff_p}")
    return {
        "_target_": ZBL_TARGET,
        "units": units,
        "chemical_species": species,
        "polynomial_cutoff_p": float(polynomial_cutoff_p),
    }


def zbl_overrides(chemical_species: Sequence[str], units: str = "metal") -> dict[str, Any]:
    """Hydra overrides that switch the ZBL prior on in ``train/templates/{nequip,allegro}.yaml``.

    The result goes into a model preset's ``overrides`` (passed verbatim by
    :func:`gnnff_stability.train.hydra.hydra_overrides`), e.g.
    ``{"++training_module.model.pair_potential": {"_target_": "nequip.nn.pair_potential.ZBL",
    "units": "metal", "chemical_species": ["Hf", "O"], "polynomial_cutoff_p": 6.0}}``.
    """
    return {ZBL_OVERRIDE_KEY: zbl_pair_potential(chemical_species, units)}
