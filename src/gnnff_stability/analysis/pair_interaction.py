"""The learned pair interaction F_ij(r) per species pair: the diagnostic of Rajak et al.

Rajak et al. ("Graph neural network with inductive bias for robust molecular dynamics") traced MD
failures to the pairwise interaction a model had learned for each bond type: in GeSe2 the Se-Se
force turned attractive at short range and the system collapsed. This module measures that curve
for any nequip model on a set of frames.

Definition
----------
nequip models see the geometry only through the edge vectors ``r_e = r_j - r_i + S·cell`` of
their neighbour list (both directions of every pair). With the edge vectors given as input,
nequip's ``ForceStressOutput`` returns ``g_e = dE/d(r_e)`` per edge (``edge_forces``) instead of
atomic forces. The force on ``j`` from its pair with ``i``, projected on the bond direction
``u = r_e / |r_e|`` (from ``i`` to ``j``), is::

    F_ij = -(g_(i->j) - g_(j->i)) · u        (eV/Å; positive = repulsive)

and the atomic forces are exactly ``F_j = sum over pairs`` of these vector pair forces. For a
pair potential ``E = sum_pairs V(r)`` it is ``F_ij = -dV/dr``. For a many-body model it is the
derivative at fixed other edge vectors (the pairwise decomposition LAMMPS' ``pair_allegro`` uses
for the virial), which varies with the environment; :func:`pair_interaction` bins it by distance
per species pair and reports the mean and count per bin.

Only eager models (checkpoint or ``.nequip.zip`` package, or an in-memory ``GraphModel``) have the
edge-vector input; compiled ``.nequip.pt2`` files do not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["DEFAULT_BIN_WIDTH", "pair_forces", "pair_interaction", "write_pair_interaction"]

logger = logging.getLogger(__name__)

DEFAULT_BIN_WIDTH = 0.05  # Å


def _load(model) -> torch.nn.Module:
    if isinstance(model, torch.nn.Module):
        return model
    from nequip.model.saved_models.load_utils import load_saved_model
    from nequip.utils.global_state import set_global_state

    path = Path(model)
    if path.name.endswith(".nequip.pt2"):
        raise ValueError(f"{path} is a compiled model; the pair interaction needs an eager checkpoint or package")
    set_global_state()
    return load_saved_model(str(path), compile_mode="eager")


def _frames(frames) -> list:
    import ase.io

    if isinstance(frames, (str, Path)):
        frames = ase.io.read(str(frames), index=":")
    frames = list(frames)
    if not frames:
        raise ValueError("no frames given")
    return frames


def _reverse_index(edge_index: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Index of the reverse edge ``(j, i, -S)`` of every edge ``(i, j, S)``; ValueError if one is missing."""
    n = int(edge_index.max()) + 1 if edge_index.size else 1
    span = int(np.abs(shifts).max()) + 1 if shifts.size else 1
    width = 2 * span + 1

    def encode(i, j, s):
        key = i.astype(np.int64) * n + j
        for c in range(3):
            key = key * width + (s[:, c].astype(np.int64) + span)
        return key

    fwd = encode(edge_index[0], edge_index[1], shifts)
    rev = encode(edge_index[1], edge_index[0], -shifts)
    order = np.argsort(fwd, kind="stable")
    pos = np.searchsorted(fwd[order], rev)
    pos = np.minimum(pos, len(order) - 1)
    found = fwd[order][pos] == rev
    if not found.all():
        raise ValueError(f"{int((~found).sum())} edges have no reverse edge: the neighbour list is not symmetric")
    return order[pos]


def pair_forces(model, frames, type_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Bond-projected pair forces of every atom pair within the model's cutoff.

    Parameters
    ----------
    model
        ``GraphModel`` (eager) or the path of a checkpoint / ``.nequip.zip`` package.
    frames
        ASE ``Atoms`` or an extended-XYZ path; periodic cells are handled through the edge shifts.
    type_names
        Model type names (default: the model's metadata); the chemical symbol of each type is the
        type name (the templates' identity map).

    Returns
    -------
    pandas.DataFrame
        One row per unordered pair (each periodic image separately): ``frame`` (int), ``i``, ``j``
        (atom indices), ``pair`` (e.g. ``"Hf-O"``, species in type order), ``r_A`` (Å),
        ``force_eV_per_A`` (``F_ij``, positive = repulsive).
    """
    from nequip.data import AtomicDataDict, from_ase
    from nequip.integrations.utils import basic_transforms
    from nequip.nn import graph_model
    from nequip.nn.utils import with_edge_vectors_

    model = _load(model)
    metadata = model.metadata
    r_max = float(metadata[graph_model.R_MAX_KEY])
    names = list(type_names) if type_names is not None else metadata[graph_model.TYPE_NAMES_KEY].split(" ")
    transforms = basic_transforms(metadata, r_max, names, {t: t for t in names})
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    rows = []
    try:
        for k, atoms in enumerate(_frames(frames)):
            data = from_ase(atoms)
            for transform in transforms:
                data = transform(data)
            data = AtomicDataDict.to_(data, device)
            data = with_edge_vectors_(data, with_lengths=False)
            vec = data[AtomicDataDict.EDGE_VECTORS_KEY].detach().to(dtype)
            data[AtomicDataDict.EDGE_VECTORS_KEY] = vec
            for key in (AtomicDataDict.POSITIONS_KEY, AtomicDataDict.CELL_KEY):
                if key in data:
                    data[key] = data[key].to(dtype)
            out = model(data)
            grad = out[AtomicDataDict.EDGE_FORCE_KEY].detach().double().cpu().numpy()
            vec = vec.detach().double().cpu().numpy()
            edge_index = data[AtomicDataDict.EDGE_INDEX_KEY].cpu().numpy()
            if AtomicDataDict.EDGE_CELL_SHIFT_KEY in data:
                shifts = np.rint(data[AtomicDataDict.EDGE_CELL_SHIFT_KEY].cpu().numpy()).astype(np.int64)
            else:
                shifts = np.zeros((edge_index.shape[1], 3), dtype=np.int64)
            types = data[AtomicDataDict.ATOM_TYPE_KEY].view(-1).cpu().numpy()
            rev = _reverse_index(edge_index, shifts)
            first = np.arange(len(rev)) < rev  # each unordered pair once
            r = np.linalg.norm(vec, axis=1)
            unit = vec / r[:, None]
            force = -np.einsum("ec,ec->e", grad - grad[rev], unit)
            ti, tj = types[edge_index[0]], types[edge_index[1]]
            lo, hi = np.minimum(ti, tj), np.maximum(ti, tj)
            label = np.array([f"{names[a]}-{names[b]}" for a, b in zip(lo[first], hi[first])], dtype=object)
            rows.append(pd.DataFrame({
                "frame": k, "i": edge_index[0][first], "j": edge_index[1][first], "pair": label,
                "r_A": r[first], "force_eV_per_A": force[first],
            }))
    finally:
        model.train(was_training)
    return pd.concat(rows, ignore_index=True)


def pair_interaction(
    model,
    frames,
    bins: int | Iterable[float] | None = None,
    type_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The learned pair interaction ``F_ij(r)`` per species pair, binned by distance.

    Parameters
    ----------
    model, frames, type_names
        As in :func:`pair_forces`.
    bins
        Bin edges in Å, or a number of equal bins on ``[0, r_max]``; default
        :data:`DEFAULT_BIN_WIDTH` (0.05 Å) bins on ``[0, r_max]``.

    Returns
    -------
    pandas.DataFrame
        One row per species pair (every unordered pair of the model's types) and bin: ``pair``,
        ``r_lo_A``, ``r_hi_A``, ``r_mid_A``, ``count``, ``force_mean_eV_per_A`` (positive =
        repulsive; NaN for an empty bin), ``force_std_eV_per_A``. Write it with ``to_csv``.
    """
    from nequip.nn import graph_model

    model = _load(model)
    forces = pair_forces(model, frames, type_names)

    r_max = float(model.metadata[graph_model.R_MAX_KEY])
    names = list(type_names) if type_names is not None else model.metadata[graph_model.TYPE_NAMES_KEY].split(" ")
    if bins is None:
        edges = np.arange(0.0, r_max + DEFAULT_BIN_WIDTH / 2, DEFAULT_BIN_WIDTH)
    elif isinstance(bins, (int, np.integer)):
        if int(bins) < 1:
            raise ValueError(f"bins must be >= 1, got {bins}")
        edges = np.linspace(0.0, r_max, int(bins) + 1)
    else:
        edges = np.asarray(list(bins), dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"bin edges must be increasing, at least two, got {edges}")
    pairs = [f"{names[a]}-{names[b]}" for a in range(len(names)) for b in range(a, len(names))]
    out = []
    for pair in pairs:
        sel = forces[forces["pair"] == pair]
        which = np.digitize(sel["r_A"].to_numpy(), edges) - 1
        values = sel["force_eV_per_A"].to_numpy()
        for b in range(len(edges) - 1):
            v = values[which == b]
            out.append({
                "pair": pair, "r_lo_A": edges[b], "r_hi_A": edges[b + 1], "r_mid_A": 0.5 * (edges[b] + edges[b + 1]),
                "count": int(v.size), "force_mean_eV_per_A": float(v.mean()) if v.size else np.nan,
                "force_std_eV_per_A": float(v.std()) if v.size else np.nan,
            })
    logger.info("pair interaction from %d pairs in %d frames", len(forces), forces["frame"].nunique())
    return pd.DataFrame(out)


def write_pair_interaction(model, frames, out: str | Path) -> pd.DataFrame:
    """:func:`pair_interaction` of a model on frames (an extended-XYZ path or ASE ``Atoms``), with the
    default bins, written to ``out`` (CSV)."""
    table = pair_interaction(model, frames)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    return table
