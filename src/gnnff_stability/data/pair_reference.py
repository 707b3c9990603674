"""The reference potential's pair force on an isolated pair, beside the learned pair interactions.

:func:`gnnff_stability.analysis.pair_interaction.pair_interaction` gives the pair force ``F_ij(r)`` a
model learned, per species pair. The reference curve is that of an isolated pair: two atoms in a large
periodic box, the force on the second atom along the bond (positive = repulsive), for every species pair
of the material, with its reference potential (``material.reference``):

``comb`` (HfO2)
    COMB is not a pair potential (bond order, charge equilibration), so it has no unique pair curve in
    the crystal; charges are equilibrated at every distance. It is not the in-crystal pair force the
    learned curve estimates (a mean over crystal environments). For Hf–O and Hf–Hf it gives the scale of
    the short-range wall. For O–O it has the wrong sign: two lone O atoms stay neutral (charge
    equilibration moves no charge between identical atoms; ``q1_e = q2_e = 0``) and COMB's bond-order
    term binds them as in an O2 molecule (about −2.9 eV/Å at 2 Å), whereas in the crystal every O is an
    anion and O–O is repulsive.
``pair_style`` (e.g. Tersoff for SiC)
    One LAMMPS single point per distance (:mod:`.pair_potential`). A many-body potential's dimer is,
    likewise, not its in-crystal pair force (Tersoff's bond order of a lone pair is that of a dimer).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from gnnff_stability.data.structures import write_lammps_data
from gnnff_stability.settings import CombSettings, MaterialSettings

__all__ = ["PAIR_CURVE_R_A", "comb_pair_curve", "pair_style_pair_curve", "reference_pair_curve",
           "write_pair_reference"]

logger = logging.getLogger(__name__)

#: Distances of the reference curve, Å: from deep inside the repulsive wall to past every model cutoff.
PAIR_CURVE_R_A = np.round(np.arange(1.0, 6.0 + 1e-9, 0.05), 4)
_BOX_A = 20.0  # periodic box: 14 Å or more between images beyond the largest distance


def _check_distances(r_values: Iterable[float]) -> np.ndarray:
    r = np.asarray(list(r_values), dtype=float)
    if r.size == 0 or np.any(r <= 0) or r.max() > _BOX_A / 2:
        raise ValueError(f"distances must lie in (0, {_BOX_A / 2}] Å, got {r}")
    return r


def _species_pairs(material: MaterialSettings) -> list[tuple[str, str]]:
    return [(material.species[a - 1], material.species[b - 1]) for a, b in material.pairs]


def _pair_cell(first: str, second: str, r: float) -> Atoms:
    return Atoms([first, second], positions=[[5.0, 10.0, 10.0], [5.0 + r, 10.0, 10.0]], cell=[_BOX_A] * 3,
                 pbc=True)


def _relative_to_far(rows: list[dict]) -> pd.DataFrame:
    """The rows as a table, each pair's energy relative to its largest distance."""
    out = pd.DataFrame(rows)
    for _, group in out.groupby("pair"):
        far = group.loc[group["r_A"].idxmax(), "energy_eV"]
        out.loc[group.index, "energy_eV"] = group["energy_eV"] - far
    return out


def comb_pair_curve(
    r_values: Iterable[float], material: MaterialSettings, label_qeq_tol: float, over_coordination: bool
) -> pd.DataFrame:
    """COMB's force and energy of an isolated pair for every species pair and distance (HfO2's COMB).

    Parameters
    ----------
    r_values
        Distances, Å, in (0, 10].
    material
        The ``material`` block (species order and masses; its species must be COMB's Hf and O).
    label_qeq_tol, over_coordination
        ``data.comb``'s charge tolerance and COMB variant (:mod:`.comb`).

    Returns
    -------
    pandas.DataFrame
        ``pair`` (``Hf-Hf``, ``Hf-O``, ``O-O``), ``r_A``, ``force_eV_per_A`` (on the second atom along
        the bond: positive = repulsive), ``energy_eV`` (relative to the largest distance), ``q1_e``,
        ``q2_e``. A distance whose charges do not converge has NaN values.
    """
    from gnnff_stability.data.comb import CombSession, comb_ffield  # noqa: PLC0415

    r_values = _check_distances(r_values)
    rows = []
    for first, second in _species_pairs(material):
        start = _pair_cell(first, second, r_values[0])
        charges = np.zeros(2)  # neutral start: the equilibration moves charge within the pair
        with tempfile.TemporaryDirectory(prefix="comb_pair_") as tmp:
            data_path = write_lammps_data(start, Path(tmp) / "pair.data", material.species, material.masses)
            with CombSession(data_path, comb_ffield(tmp, over_coordination), material.species) as comb:
                for r in r_values:
                    positions = comb.positions.copy()
                    positions[1] = positions[0] + np.array([r, 0.0, 0.0])
                    try:
                        label = comb.label(positions, charges, label_qeq_tol)
                    except RuntimeError as err:
                        logger.warning("COMB %s-%s at %.2f Å: %s", first, second, r, err)
                        rows.append({"pair": f"{first}-{second}", "r_A": r, "force_eV_per_A": np.nan,
                                     "energy_eV": np.nan, "q1_e": np.nan, "q2_e": np.nan})
                        continue
                    rows.append({"pair": f"{first}-{second}", "r_A": r,
                                 "force_eV_per_A": float(label.forces[1, 0]), "energy_eV": label.energy,
                                 "q1_e": float(label.charges[0]), "q2_e": float(label.charges[1])})
    return _relative_to_far(rows)


def pair_style_pair_curve(r_values: Iterable[float], material: MaterialSettings) -> pd.DataFrame:
    """The pair-style reference's force and energy of an isolated pair for every species pair and distance.

    Parameters
    ----------
    r_values
        Distances, Å, in (0, 10].
    material
        The ``material`` block; its ``reference`` of kind ``pair_style``.

    Returns
    -------
    pandas.DataFrame
        ``pair`` (e.g. ``Si-Si``, ``Si-C``, ``C-C``), ``r_A``, ``force_eV_per_A`` (on the second atom along
        the bond: positive = repulsive), ``energy_eV`` (relative to the largest distance).
    """
    from .pair_potential import PairStyleSession, pair_style_lines  # noqa: PLC0415

    r_values = _check_distances(r_values)
    lines = pair_style_lines(material)
    rows = []
    for first, second in _species_pairs(material):
        with tempfile.TemporaryDirectory(prefix="pair_curve_") as tmp:
            data_path = write_lammps_data(_pair_cell(first, second, r_values[0]), Path(tmp) / "pair.data",
                                          material.species, material.masses)
            with PairStyleSession(data_path, material.species, lines) as session:
                for r in r_values:
                    positions = session.positions.copy()
                    positions[1] = positions[0] + np.array([r, 0.0, 0.0])
                    energy, forces = session.single_point(positions)
                    rows.append({"pair": f"{first}-{second}", "r_A": r, "force_eV_per_A": float(forces[1, 0]),
                                 "energy_eV": energy})
    return _relative_to_far(rows)


def reference_pair_curve(
    r_values: Iterable[float], material: MaterialSettings, comb: CombSettings
) -> pd.DataFrame:
    """The isolated-pair curve of the material's reference potential: :func:`comb_pair_curve` (with
    ``comb``'s tolerance and variant) or :func:`pair_style_pair_curve`.

    Raises
    ------
    ValueError
        For ``material.reference.kind`` ``none`` (no reference, no curve).
    """
    kind = material.reference.kind
    if kind == "comb":
        return comb_pair_curve(r_values, material, comb.label_qeq_tol, comb.over_coordination)
    if kind == "pair_style":
        return pair_style_pair_curve(r_values, material)
    raise ValueError(f"material.reference.kind {kind!r} has no pair curve; allowed: comb, pair_style")


def write_pair_reference(out: str | Path, material: MaterialSettings, comb: CombSettings) -> pd.DataFrame:
    """:func:`reference_pair_curve` on :data:`PAIR_CURVE_R_A`, written to ``out`` (CSV)."""
    curve = reference_pair_curve(PAIR_CURVE_R_A, material, comb)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    curve.to_csv(out, index=False)
    logger.info("%s reference pair curve (%s): %d rows -> %s", material.name, material.reference.kind,
                len(curve), out)
    return curve
