"""Phase 1 of the hierarchical training of the decomposed model: fit the body terms alone.

Rajak et al. fit the two-body networks to the reference energies and forces first, then the
three-body networks to what the two-body terms leave, then freeze both and train the GNN on the
remainder. :func:`prefit_body_terms` is the first two steps: stage 1 fits ``sum_i shift[t_i] +
E_NN2`` (the per-type shifts and NN2), stage 2 fits ``E_NN3`` with the shifts and NN2 frozen
(:func:`~.decomposition.BodyTermsModel`), each with Adam; it writes a pre-fit file.
:func:`~.decomposition.DecomposedModel` with ``prefit: <file>`` is phase 2, trained by ``nequip-train``.

Before any fit, ``r_cut: auto`` is resolved from the radial distribution function of the training
frames (:func:`rdf_cutoffs`), and :func:`check_coverage` makes sure every two-body and every NN3
type has samples inside its cutoff: a network without data would stay at zero.

Loss: ``energy_weight * MSE(E / N) + force_weight * MSE(F)`` (eV²/atom², eV²/Å²), the same terms
as nequip's ``EnergyForceLoss`` with ``per_atom_energy: true``. The per-type shifts start from a
least-squares fit of the energies to the composition and train with NN2.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .body_terms import BodyTermsEnergy
from .cutoffs import AUTO, check_body, nn3_types, pair_name, pair_types
from .decomposition import PREFIT_FORMAT, BodyTermsModel

__all__ = ["check_coverage", "frames_to_data", "prefit_body_terms", "rdf_cutoffs"]

logger = logging.getLogger(__name__)

#: Histogram bin (Å) and Gaussian smoothing width (Å) of the RDF behind ``r_cut: auto``.
RDF_BIN_A = 0.02
RDF_SMOOTH_A = 0.08


def _read_frames(frames) -> list:
    import ase.io

    if isinstance(frames, (str, Path)):
        frames = ase.io.read(str(frames), index=":")
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to fit")
    return frames


def _pair_distances(frames, type_names: Sequence[str], radius: float) -> dict[str, list[np.ndarray]]:
    """Per frame, per pair name: the distances of every ordered pair ``i != j`` within ``radius`` (Å)."""
    from ase.neighborlist import neighbor_list

    out: dict[str, list[np.ndarray]] = {pair_name(a, b, type_names): [] for a, b in pair_types(type_names)}
    for atoms in frames:
        i, j, d = neighbor_list("ijd", atoms, radius)
        sym = np.asarray(atoms.get_chemical_symbols())
        for a, b in pair_types(type_names):
            mask = ((sym[i] == a) & (sym[j] == b)) | ((sym[i] == b) & (sym[j] == a))
            out[pair_name(a, b, type_names)].append(d[mask])
    return out


def rdf_cutoffs(frames, type_names: Sequence[str], r_max: float) -> dict[str, float]:
    """Per species pair, the first minimum after the first peak of the RDF of ``frames`` (Å).

    The pair-distance histogram up to ``r_max`` (bins of :data:`RDF_BIN_A`) is divided by the shell
    area ``r^2`` and smoothed with a Gaussian of width :data:`RDF_SMOOTH_A`; its first peak is the
    first local maximum reaching half the largest value, its first minimum the first local minimum
    after that peak (the middle of an empty gap between shells).

    Raises
    ------
    ValueError
        For a pair with no distance below ``r_max``, or whose first minimum lies beyond ``r_max``
        (naming the pair and ``r_max``).
    """
    frames = _read_frames(frames)
    edges = np.arange(0.0, float(r_max) + RDF_BIN_A / 2, RDF_BIN_A)
    centres = 0.5 * (edges[1:] + edges[:-1])
    half = round(3 * RDF_SMOOTH_A / RDF_BIN_A)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * RDF_BIN_A / RDF_SMOOTH_A) ** 2)
    out = {}
    for name, per_frame in _pair_distances(frames, type_names, float(r_max)).items():
        d = np.concatenate(per_frame)
        if d.size == 0:
            raise ValueError(f"r_cut: auto: no {name} distance below {r_max} Å in the training frames; "
                             f"give r_cut.{name} explicitly")
        counts, _ = np.histogram(d, bins=edges)
        g = np.convolve(counts / centres**2, kernel, mode="same")
        rising = np.flatnonzero((g[1:-1] >= g[:-2]) & (g[1:-1] > g[2:]) & (g[1:-1] >= 0.5 * g.max())) + 1
        peak = int(rising[0]) if rising.size else int(np.argmax(g))
        k = peak
        while k + 1 < g.size and g[k + 1] <= g[k]:
            k += 1  # down the flank of the first peak to where g rises again
        if k + 1 >= g.size:
            raise ValueError(f"r_cut: auto: the {name} RDF (peak at {centres[peak]:.2f} Å) has no minimum below "
                             f"{r_max} Å (prefit.rdf_r_max); raise it (at most the models' r_max) or give r_cut.{name}")
        low = k  # a flat minimum (an empty gap between shells): its middle
        while low - 1 > peak and g[low - 1] <= g[k] + 1e-12 * g.max():
            low -= 1
        out[name] = float(round(centres[(low + k) // 2], 3))
    return out


def check_coverage(frames, type_names: Sequence[str], settings: Mapping[str, Any]) -> dict[str, int]:
    """Make sure every NN2 and NN3 network has samples inside its cutoff.

    ``settings``: resolved body settings (:func:`~.cutoffs.check_body`). Returns the number of
    samples per network (pairs ``i < j``, or triplets), keyed ``"Hf-O"`` / ``"O-Hf-O"`` style: for
    ``nn3_types: neighbour_pair`` the three-body keys are ``"*-j-k"`` (any centre).

    Raises
    ------
    ValueError
        Naming the first network without samples and the shortest distance found for it: for a pair
        its shortest distance; for a three-body type the smallest, over the centres, of the distance
        within which that centre has both neighbours (the cutoff it would need); searched up to
        0.5 Å beyond the largest two-body cutoff.
    """
    from ase.neighborlist import neighbor_list

    frames = _read_frames(frames)
    cut2, cut3 = settings["r_cut"], settings["r_cut_three_body"]
    radius = max(cut2.values()) + 0.5  # for the shortest distance in an error message
    names = [pair_name(a, b, type_names) for a, b in pair_types(type_names)]
    grouping = settings["nn3_types"]
    groups = nn3_types(type_names, grouping)
    pair_count = dict.fromkeys(names, 0)
    nearest = dict.fromkeys(names, math.inf)
    tri_count = dict.fromkeys(groups, 0)
    tri_need = dict.fromkeys(groups, math.inf)
    table = np.zeros((len(type_names), len(type_names)), dtype=int)
    for k, (ia, ib) in enumerate(pair_types(list(range(len(type_names))))):
        table[ia, ib] = table[ib, ia] = k
    cut2_arr = np.array([cut2[name] for name in names])
    cut3_arr = np.array([cut3[name] for name in names])
    for atoms in frames:
        i, j, d = neighbor_list("ijd", atoms, radius)
        sym = np.asarray(atoms.get_chemical_symbols())
        n = len(atoms)
        t = np.array([list(type_names).index(x) for x in sym], dtype=int)
        pair_ij = table[t[i], t[j]]  # index into names
        cut2_ij, cut3_ij = cut2_arr[pair_ij], cut3_arr[pair_ij]
        for k, name in enumerate(names):
            mask = pair_ij == k
            pair_count[name] += int((d[mask] < cut2_ij[mask]).sum())
            if mask.any():
                nearest[name] = min(nearest[name], float(d[mask].min()))
        if not settings["three_body"]:
            continue
        inside, first, second = {}, {}, {}  # per neighbour species: per centre
        for sp in type_names:
            m = sym[j] == sp
            inside[sp] = np.bincount(i[m & (d < cut3_ij)], minlength=n)
            order = np.lexsort((d[m], i[m]))
            ii, dd = i[m][order], d[m][order]
            per_centre = np.bincount(ii, minlength=n)
            starts = np.searchsorted(ii, np.arange(n))
            first[sp] = np.where(per_centre > 0, dd[np.minimum(starts, max(dd.size - 1, 0))] if dd.size else 0, np.inf)
            second[sp] = np.where(per_centre > 1, dd[np.minimum(starts + 1, max(dd.size - 1, 0))] if dd.size else 0,
                                 np.inf)
        for c in type_names:
            centres = sym == c
            for a, b in pair_types(type_names):
                key = (a, b) if grouping == "neighbour_pair" else (c, a, b)
                if a == b:
                    count = inside[a] * (inside[a] - 1) // 2
                    need = second[a]
                else:
                    count = inside[a] * inside[b]
                    need = np.maximum(first[a], first[b])
                tri_count[key] += int(count[centres].sum())
                if centres.any():
                    tri_need[key] = min(tri_need[key], float(need[centres].min()))
    counts = {name: pair_count[name] // 2 for name in names}
    for name in names:
        if counts[name] == 0:
            found = f"{nearest[name]:.2f} Å" if math.isfinite(nearest[name]) else f"none within {radius:.1f} Å"
            raise ValueError(f"two-body type {name} has no pair inside its cutoff r_cut.{name} = {cut2[name]} Å "
                             f"in the training frames (shortest {name} distance: {found}); raise r_cut.{name} "
                             "to cover its first shell, or use r_cut: auto")
    if not settings["three_body"]:
        return counts
    for key in groups:
        label = "-".join(key) if len(key) == 3 else f"*-{key[0]}-{key[1]}"
        counts[label] = tri_count[key]
        if tri_count[key] == 0:
            found = f"{tri_need[key]:.2f} Å" if math.isfinite(tri_need[key]) else f"none within {radius:.1f} Å"
            raise ValueError(
                f"three-body type {label} (centre-neighbour-neighbour) has no triplet with both legs inside "
                f"r_cut_three_body in the training frames (shortest distance within which a centre has both "
                f"neighbours: {found}); raise the three-body cutoffs of its legs"
            )
    return counts


def frames_to_data(frames, type_names: Sequence[str], r_max: float) -> list[dict]:
    """ASE frames (or an extended-XYZ path) as nequip ``AtomicDataDict`` items with a neighbour list.

    Energies are read from ``atoms.info["energy"]`` or the calculator, forces likewise (eV, eV/Å).
    """
    from nequip.data import from_ase
    from nequip.data.transforms import (
        ChemicalSpeciesToAtomTypeMapper,
        NeighborListTransform,
    )

    frames = _read_frames(frames)
    transforms = [
        ChemicalSpeciesToAtomTypeMapper(
            model_type_names=list(type_names), chemical_species_to_atom_type_map={t: t for t in type_names}
        ),
        NeighborListTransform(r_max=float(r_max)),
    ]
    items = []
    for atoms in frames:
        data = from_ase(atoms)
        for transform in transforms:
            data = transform(data)
        items.append(data)
    return items


def _batch(items: list[dict], dtype: torch.dtype) -> dict:
    from nequip.data import AtomicDataDict

    batch = AtomicDataDict.batched_from_list(items)
    return {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v for k, v in batch.items()}


def _composition(items: list[dict], n_types: int) -> np.ndarray:
    from nequip.data import AtomicDataDict

    return np.stack([np.bincount(d[AtomicDataDict.ATOM_TYPE_KEY].view(-1).numpy(), minlength=n_types) for d in items])


def _errors(model, items: list[dict], dtype: torch.dtype, batch_size: int) -> dict[str, float]:
    """Energy RMSE (eV/atom), force RMSE (eV/Å) and the force RMS of the remainder ``F_ref - F_body``."""
    from nequip.data import AtomicDataDict

    de, df = [], []
    for start in range(0, len(items), batch_size):
        batch = _batch(items[start : start + batch_size], dtype)
        out = model(batch.copy())
        n = batch[AtomicDataDict.NUM_NODES_KEY].to(dtype)
        de.append((out[AtomicDataDict.TOTAL_ENERGY_KEY].detach().view(-1) - batch[AtomicDataDict.TOTAL_ENERGY_KEY].view(-1)) / n)
        df.append((out[AtomicDataDict.FORCE_KEY].detach() - batch[AtomicDataDict.FORCE_KEY]).reshape(-1))
    de, df = torch.cat(de), torch.cat(df)
    f_rms = float(df.square().mean().sqrt())
    return {"energy_rmse_eV_per_atom": float(de.square().mean().sqrt()), "force_rmse_eV_per_A": f_rms,
            "remainder_forces_rms": f_rms}


def _fit(model, params, items, dtype, *, epochs, batch_size, lr, lr_final_ratio, energy_weight, force_weight,
         rng, stage: str) -> None:
    """Adam with a cosine decay on ``params`` only (every other parameter of ``model`` is frozen)."""
    from nequip.data import AtomicDataDict

    wanted = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in wanted)
    optimizer = torch.optim.Adam(params, lr=lr)
    total_steps = epochs * math.ceil(len(items) / batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=lr * lr_final_ratio)
    for epoch in range(epochs):
        order = rng.permutation(len(items))
        epoch_loss = 0.0
        for start in range(0, len(items), batch_size):
            batch = _batch([items[k] for k in order[start : start + batch_size]], dtype)
            pred = model(batch.copy())
            n = batch[AtomicDataDict.NUM_NODES_KEY].to(dtype)
            e_err = (pred[AtomicDataDict.TOTAL_ENERGY_KEY].view(-1) - batch[AtomicDataDict.TOTAL_ENERGY_KEY].view(-1)) / n
            f_err = pred[AtomicDataDict.FORCE_KEY] - batch[AtomicDataDict.FORCE_KEY]
            loss = energy_weight * e_err.square().mean() + force_weight * f_err.square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            epoch_loss += float(loss.detach())
        if epoch % max(epochs // 10, 1) == 0 or epoch == epochs - 1:
            logger.info("pre-fit %s epoch %d/%d: loss %.4g", stage, epoch + 1, epochs, epoch_loss)
    for p in model.parameters():
        p.requires_grad_(True)


def prefit_body_terms(
    train,
    out: str | Path,
    type_names: Sequence[str],
    body: Mapping[str, Any],
    valid=None,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    lr_final_ratio: float,
    dtype: str,
    rdf_r_max: float,
    energy_weight: float,
    force_weight: float,
    seed: int,
) -> dict[str, Any]:
    """Fit the two-body terms, then the three-body terms on what they leave; write a pre-fit file.

    Parameters
    ----------
    train
        Training frames: extended-XYZ path or ASE ``Atoms`` with energy (eV) and forces (eV/Å).
    out
        Pre-fit file to write (``torch.save`` of a dict; read by
        :func:`~.decomposition.load_prefit`); written atomically.
    type_names
        Model type names (chemical symbols of the data).
    body
        Body-term settings (``methods.<name>.decomposition.body``, every key given); ``r_cut: auto``
        takes each pair's cutoff from the RDF of ``train`` (:func:`rdf_cutoffs`).
    valid
        Optional validation frames, for the reported errors only.
    epochs, batch_size
        Passes over the training frames per stage (NN2, then NN3), frames per step.
    lr, lr_final_ratio
        Adam's learning rate, decayed by a cosine to ``lr * lr_final_ratio`` at the last epoch of a stage.
    dtype
        ``float64`` or ``float32`` for the fit; the file stores float64 values.
    rdf_r_max
        With ``r_cut: auto``: the RDF's range (Å).
    energy_weight, force_weight
        Weights of the per-atom energy MSE and the force MSE.
    seed
        Initialisation and shuffling seed.

    The defaults of these settings live in the configuration schema (``methods.<name>.decomposition``
    and ``training.loss_coeffs``).

    Returns
    -------
    dict
        ``train`` (and ``valid``) errors after both stages: ``energy_rmse_eV_per_atom``,
        ``force_rmse_eV_per_A``; ``two_body`` the same on train after stage 1; ``per_type_energy_shifts``;
        ``remainder_forces_rms`` (eV/Å, on train); ``r_cut`` and ``r_cut_three_body`` (Å per pair);
        ``samples`` (pairs or triplets inside the cutoffs, per network).
    """
    from nequip.data import AtomicDataDict
    from nequip.utils.global_state import set_global_state

    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not lr > 0 or not 0 < lr_final_ratio <= 1:
        raise ValueError(f"lr must be > 0 and lr_final_ratio in (0, 1], got {lr}, {lr_final_ratio}")
    if energy_weight < 0 or force_weight < 0 or energy_weight + force_weight == 0:
        raise ValueError(f"energy_weight and force_weight must be >= 0, not both 0; got {energy_weight}, {force_weight}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    type_names = list(type_names)
    frames = _read_frames(train)
    body = dict(body)
    if body.get("r_cut") == AUTO:
        body["r_cut"] = rdf_cutoffs(frames, type_names, rdf_r_max)
        logger.info("r_cut: auto -> %s (first RDF minimum after the first peak)", body["r_cut"])
    settings = check_body(body, type_names)
    samples = check_coverage(frames, type_names, settings)
    logger.info("samples inside the cutoffs per network: %s", samples)
    torch_dtype = getattr(torch, dtype)
    r_nl = max(settings["r_cut"].values())
    items = frames_to_data(frames, type_names, r_nl)
    valid_items = frames_to_data(valid, type_names, r_nl) if valid is not None else None

    # per-type shifts: least squares of the energies on the composition (minimum norm if degenerate)
    counts = _composition(items, len(type_names)).astype(float)
    energies = np.array([float(d[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1)[0]) for d in items])
    shifts = np.linalg.lstsq(counts, energies, rcond=None)[0]

    set_global_state()
    model = BodyTermsModel(
        seed=seed, model_dtype=dtype, type_names=type_names, r_max=r_nl, body=settings,
        per_type_energy_shifts={t: float(s) for t, s in zip(type_names, shifts)},
        per_type_energy_shifts_trainable=True,
    )
    energy = model.model.func
    terms: BodyTermsEnergy = energy.body_terms
    shift_module = energy.per_type_energy_shift
    fit = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "lr_final_ratio": lr_final_ratio,
           "energy_weight": energy_weight, "force_weight": force_weight, "rng": np.random.default_rng(seed)}
    logger.info("pre-fitting body terms %s on %d frames, %d epochs per stage", settings, len(items), epochs)
    model.train()
    _fit(model, [*terms.nn2.parameters(), *shift_module.parameters()], items, torch_dtype, stage="NN2", **fit)
    model.eval()
    metrics: dict[str, Any] = {"two_body": _errors(model, items, torch_dtype, batch_size)}
    if settings["three_body"]:
        model.train()
        _fit(model, list(terms.nn3.parameters()), items, torch_dtype, stage="NN3", **fit)
        model.eval()
    metrics["train"] = _errors(model, items, torch_dtype, batch_size)
    if valid_items is not None:
        metrics["valid"] = _errors(model, valid_items, torch_dtype, batch_size)
    fitted = shift_module.shifts.detach().double().view(-1).tolist()
    if len(fitted) == 1:
        fitted = fitted * len(type_names)
    blob = {
        "format": PREFIT_FORMAT,
        "settings": terms.settings_dict(),
        "state_dict": {k: (v.detach().double() if v.is_floating_point() else v).cpu()
                       for k, v in terms.state_dict().items()},
        "per_type_energy_shifts": dict(zip(type_names, fitted)),
        "remainder_forces_rms": metrics["train"]["remainder_forces_rms"],
        "metrics": metrics,
        "samples": samples,
        "fit": {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr),
                "lr_final_ratio": float(lr_final_ratio), "seed": int(seed), "dtype": dtype,
                "energy_weight": float(energy_weight), "force_weight": float(force_weight),
                "stages": ["NN2", "NN3"] if settings["three_body"] else ["NN2"]},
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    torch.save(blob, partial)
    partial.replace(out)
    logger.info("body-term pre-fit written to %s: %s", out, metrics)
    return {"per_type_energy_shifts": blob["per_type_energy_shifts"],
            "remainder_forces_rms": blob["remainder_forces_rms"], "r_cut": settings["r_cut"],
            "r_cut_three_body": settings["r_cut_three_body"], "samples": samples, **metrics}
