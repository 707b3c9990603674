"""Phase 1 of the hierarchical training of the decomposed model: fit the body terms alone.

Rajak et al. fit the two- and three-body networks to the reference energies and forces first,
then freeze them and train the GNN on the remainder. :func:`prefit_body_terms` is that first
phase: it fits ``E = sum_i shift[t_i] + E_NN2 + E_NN3`` (:func:`~.decomposition.BodyTermsModel`)
with Adam and writes a pre-fit file; :func:`~.decomposition.DecomposedModel` with
``prefit: <file>`` is phase 2, trained by ``nequip-train``.

Loss: ``energy_weight * MSE(E / N) + force_weight * MSE(F)`` (eV²/atom², eV²/Å²), the same terms
as nequip's ``EnergyForceLoss`` with ``per_atom_energy: true``. The per-type shifts start from a
least-squares fit of the energies to the composition and train with the networks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .body_terms import BodyTermsEnergy, validate_body
from .decomposition import PREFIT_FORMAT, BodyTermsModel

__all__ = ["frames_to_data", "prefit_body_terms"]

logger = logging.getLogger(__name__)


def frames_to_data(frames, type_names: Sequence[str], r_max: float) -> list[dict]:
    """ASE frames (or an extended-XYZ path) as nequip ``AtomicDataDict`` items with a neighbour list.

    Energies are read from ``atoms.info["energy"]`` or the calculator, forces likewise (eV, eV/Å).
    """
    import ase.io
    from nequip.data import from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    if isinstance(frames, (str, Path)):
        frames = ase.io.read(str(frames), index=":")
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to fit")
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
        de.append(((out[AtomicDataDict.TOTAL_ENERGY_KEY].detach().view(-1) - batch[AtomicDataDict.TOTAL_ENERGY_KEY].view(-1)) / n))
        df.append((out[AtomicDataDict.FORCE_KEY].detach() - batch[AtomicDataDict.FORCE_KEY]).reshape(-1))
    de, df = torch.cat(de), torch.cat(df)
    f_rms = float(df.square().mean().sqrt())
    return {"energy_rmse_eV_per_atom": float(de.square().mean().sqrt()), "force_rmse_eV_per_A": f_rms,
            "remainder_forces_rms": f_rms}


def prefit_body_terms(
    train,
    out: str | Path,
    type_names: Sequence[str],
    body: Mapping[str, Any] | None = None,
    valid=None,
    epochs: int = 300,
    batch_size: int = 8,
    lr: float = 5e-3,
    lr_final_ratio: float = 0.01,
    energy_weight: float = 1.0,
    force_weight: float = 1.0,
    seed: int = 0,
    model_dtype: str = "float64",
) -> dict[str, Any]:
    """Fit the two- and three-body terms to reference energies and forces and write a pre-fit file.

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
        Body-term settings (:data:`~.decomposition.BODY_DEFAULTS`).
    valid
        Optional validation frames, for the reported errors only.
    epochs, batch_size
        Passes over the training frames, frames per step (default 300, 8).
    lr, lr_final_ratio
        Adam's learning rate, decayed by a cosine to ``lr * lr_final_ratio`` at the last epoch
        (default 5e-3, 0.01).
    energy_weight, force_weight
        Weights of the per-atom energy MSE and the force MSE (default 1, 1).
    seed
        Initialisation and shuffling seed.
    model_dtype
        ``float64`` (default) or ``float32`` for the fit; the file stores float64 values.

    Returns
    -------
    dict
        ``train`` (and ``valid``) errors: ``energy_rmse_eV_per_atom``, ``force_rmse_eV_per_A``;
        ``per_type_energy_shifts``; ``remainder_forces_rms`` (eV/Å, on train).
    """
    from nequip.data import AtomicDataDict
    from nequip.utils.global_state import set_global_state

    settings = validate_body(body)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not lr > 0 or not 0 < lr_final_ratio <= 1:
        raise ValueError(f"lr must be > 0 and lr_final_ratio in (0, 1], got {lr}, {lr_final_ratio}")
    if energy_weight < 0 or force_weight < 0 or energy_weight + force_weight == 0:
        raise ValueError(f"energy_weight and force_weight must be >= 0, not both 0; got {energy_weight}, {force_weight}")
    if model_dtype not in ("float32", "float64"):
        raise ValueError(f"model_dtype must be 'float32' or 'float64', got {model_dtype!r}")
    dtype = getattr(torch, model_dtype)
    type_names = list(type_names)
    items = frames_to_data(train, type_names, settings["r_cut"])
    valid_items = frames_to_data(valid, type_names, settings["r_cut"]) if valid is not None else None

    # per-type shifts: least squares of the energies on the composition (minimum norm if degenerate)
    counts = _composition(items, len(type_names)).astype(float)
    energies = np.array([float(d[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1)[0]) for d in items])
    shifts = np.linalg.lstsq(counts, energies, rcond=None)[0]

    set_global_state()
    model = BodyTermsModel(
        seed=seed, model_dtype=model_dtype, type_names=type_names, r_max=settings["r_cut"],
        r_cut_three_body=settings["r_cut_three_body"], three_body=settings["three_body"],
        hidden=settings["hidden"], polynomial_cutoff_p=settings["polynomial_cutoff_p"],
        per_type_energy_shifts={t: float(s) for t, s in zip(type_names, shifts)},
        per_type_energy_shifts_trainable=True,
    )
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    total_steps = epochs * math.ceil(len(items) / batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=lr * lr_final_ratio)
    rng = np.random.default_rng(seed)
    logger.info("pre-fitting body terms %s on %d frames for %d epochs", settings, len(items), epochs)
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
            logger.info("pre-fit epoch %d/%d: loss %.4g", epoch + 1, epochs, epoch_loss)

    model.eval()
    metrics = {"train": _errors(model, items, dtype, batch_size)}
    if valid_items is not None:
        metrics["valid"] = _errors(model, valid_items, dtype, batch_size)
    energy = model.model.func
    terms: BodyTermsEnergy = energy.body_terms
    shift_module = energy.per_type_energy_shift
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
        "fit": {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed),
                "energy_weight": float(energy_weight), "force_weight": float(force_weight)},
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    torch.save(blob, partial)
    partial.replace(out)
    logger.info("body-term pre-fit written to %s: %s", out, metrics)
    return {"per_type_energy_shifts": blob["per_type_energy_shifts"],
            "remainder_forces_rms": blob["remainder_forces_rms"], **metrics}
