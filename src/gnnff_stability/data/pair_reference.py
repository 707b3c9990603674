"""The reference potential's pair force: COMB on an isolated pair, beside the learned pair interactions.

:func:`gnnff_stability.analysis.pair_interaction.pair_interaction` gives the pair force ``F_ij(r)`` a
model learned, per species pair. The reference data come from COMB, which is not a pair potential
(bond order, charge equilibration), so it has no unique pair curve in the crystal; the curve it does
define is that of an isolated pair: two atoms in a large periodic box, charges equilibrated at every
distance, the force on the second atom along the bond (positive = repulsive). It is not the in-crystal
pair force the learned curve estimates (a mean over crystal environments). For Hf–O and Hf–Hf it gives
the scale of the short-range wall. For O–O it has the wrong sign: two lone O atoms stay neutral
(charge equilibration moves no charge between identical atoms; ``q1_e = q2_e = 0``) and COMB's
bond-order term binds them as in an O2 molecule (about −2.9 eV/Å at 2 Å), whereas in the crystal
every O is an anion and O–O is repulsive.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from gnnff_stability.data.comb import CombSession, comb_ffield
from gnnff_stability.data.structures import write_lammps_data
from gnnff_stability.species import SPECIES

__all__ = ["PAIR_CURVE_R_A", "comb_pair_curve", "write_comb_pair_curve"]

logger = logging.getLogger(__name__)

#: Distances of the reference curve, Å: from deep inside the repulsive wall to past every model cutoff.
PAIR_CURVE_R_A = np.round(np.arange(1.0, 6.0 + 1e-9, 0.05), 4)
_BOX_A = 20.0  # periodic box: 14 Å or more between images beyond the largest distance


def comb_pair_curve(
    r_values: Iterable[float], label_qeq_tol: float, over_coordination: bool
) -> pd.DataFrame:
    """COMB's force and energy of an isolated pair for every species pair and distance.

    Returns
    -------
    pandas.DataFrame
        ``pair`` (``Hf-Hf``, ``Hf-O``, ``O-O``), ``r_A``, ``force_eV_per_A`` (on the second atom along
        the bond: positive = repulsive), ``energy_eV`` (relative to the largest distance), ``q1_e``,
        ``q2_e``. A distance whose charges do not converge has NaN values.
    """
    r_values = np.asarray(list(r_values), dtype=float)
    if r_values.size == 0 or np.any(r_values <= 0) or r_values.max() > _BOX_A / 2:
        raise ValueError(f"distances must lie in (0, {_BOX_A / 2}] Å, got {r_values}")
    rows = []
    pairs = [(SPECIES[a], SPECIES[b]) for a in range(len(SPECIES)) for b in range(a, len(SPECIES))]
    for first, second in pairs:
        start = Atoms([first, second], positions=[[5.0, 10.0, 10.0], [5.0 + r_values[0], 10.0, 10.0]],
                      cell=[_BOX_A] * 3, pbc=True)
        charges = np.zeros(2)  # neutral start: the equilibration moves charge within the pair
        with tempfile.TemporaryDirectory(prefix="comb_pair_") as tmp:
            data_path = write_lammps_data(start, Path(tmp) / "pair.data")
            with CombSession(data_path, comb_ffield(tmp, over_coordination)) as comb:
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
    out = pd.DataFrame(rows)
    for _, group in out.groupby("pair"):
        far = group.loc[group["r_A"].idxmax(), "energy_eV"]
        out.loc[group.index, "energy_eV"] = group["energy_eV"] - far
    return out


def write_comb_pair_curve(out: str | Path, label_qeq_tol: float, over_coordination: bool) -> pd.DataFrame:
    """:func:`comb_pair_curve` on :data:`PAIR_CURVE_R_A`, written to ``out`` (CSV)."""
    curve = comb_pair_curve(PAIR_CURVE_R_A, label_qeq_tol, over_coordination)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    curve.to_csv(out, index=False)
    return curve
