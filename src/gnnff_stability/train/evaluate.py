"""Accuracy and feature correlation of a trained model on a labelled data set (Tables 2, 4, A1, A3).

EMAE (meV/atom), FMAE (meV/Å) and the Corr value of the paper's Eq. 4: the mean off-diagonal absolute
Pearson correlation of the selected features, over **all** edges of each test frame, averaged over frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .features import FeatureRecorder

__all__ = ["evaluate_model"]


def _load_graph_model(model_path: str | Path, device: str) -> torch.nn.Module:
    from nequip.model.saved_models.load_utils import load_saved_model
    from nequip.utils.global_state import set_global_state

    set_global_state()
    model = load_saved_model(str(model_path), compile_mode="eager")
    return model.eval().to(device)


def evaluate_model(
    model_path: str | Path,
    data_path: str | Path,
    family: str,
    selection: str,
    batch_size: int = 4,
    device: str = "cpu",
) -> dict[str, Any]:
    """EMAE, FMAE and the Corr value (Eq. 4) of a saved model on an extended-XYZ data set.

    Parameters
    ----------
    model_path
        ``.nequip.zip`` package or ``.ckpt`` checkpoint.
    data_path
        Extended XYZ with energies (eV) and forces (eV/Å).
    family
        The model's family (``nequip``, ``allegro``).
    selection
        Feature selection of the Corr value (the run table's ``corr_selection``).
    batch_size
        Frames per model call.
    device
        ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    dict
        ``emae_meV_per_atom`` (mean over frames of ``|ΔE| / N``), ``fmae_meV_per_A`` (mean over all
        force components), ``corr_value`` (last selected layer), ``corr_value_per_layer`` (one per
        selected layer: mean off-diagonal ``|pearson|`` over **all** edges (atoms for ``node``) of
        each frame, averaged over frames; layers with two irreps groups give the mean of the two),
        ``corr_layers`` (their layer indices), ``corr_selection``, ``n_frames``.
    """
    import ase.io
    from nequip.data import AtomicDataDict, from_ase
    from nequip.integrations.utils import basic_transforms
    from nequip.nn import graph_model

    model = _load_graph_model(model_path, device)
    r_max = float(model.metadata[graph_model.R_MAX_KEY])
    type_names = model.metadata[graph_model.TYPE_NAMES_KEY].split(" ")
    transforms = basic_transforms(model.metadata, r_max, type_names, {t: t for t in type_names})
    frames = ase.io.read(str(data_path), index=":")
    if not frames:
        raise ValueError(f"no frames in {data_path}")
    recorder = FeatureRecorder(model, family, selection).attach()
    e_abs, f_abs, corr_rows = [], [], []
    try:
        for start in range(0, len(frames), batch_size):
            items = []
            for atoms in frames[start : start + batch_size]:
                data = from_ase(atoms)
                for transform in transforms:
                    data = transform(data)
                items.append(data)
            batch = AtomicDataDict.to_(AtomicDataDict.batched_from_list(items), device)
            samples = recorder.samples(batch, None)
            with recorder.recording():  # whole tensors: nothing to sample
                out = model(batch.copy())
            recorder.check_rows(batch)
            recorder.outputs = [rows.detach() for rows in recorder.captured()]
            _, _, per_structure = recorder.losses(samples, dtype=torch.float64)
            recorder.clear()
            n_atoms = batch[AtomicDataDict.NUM_NODES_KEY].double()
            e_ref = batch[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1).double()
            e_pred = out[AtomicDataDict.TOTAL_ENERGY_KEY].detach().reshape(-1).double()
            e_abs.append(((e_pred - e_ref).abs() / n_atoms).cpu().numpy())
            f_ref = batch[AtomicDataDict.FORCE_KEY].double()
            f_pred = out[AtomicDataDict.FORCE_KEY].detach().double()
            f_abs.append((f_pred - f_ref).abs().reshape(-1).cpu().numpy())
            # [n_structures, n_taps]: mean over the irreps groups of each tap
            corr_rows.append(torch.stack([p.mean(-1) for p in per_structure], -1).cpu().numpy())
    finally:
        recorder.remove()
    corr = np.concatenate(corr_rows, axis=0).mean(axis=0)
    return {
        "emae_meV_per_atom": float(np.concatenate(e_abs).mean() * 1000.0),
        "fmae_meV_per_A": float(np.concatenate(f_abs).mean() * 1000.0),
        "corr_value": float(corr[-1]),
        "corr_value_per_layer": [float(v) for v in corr],
        "corr_layers": recorder.layers,
        "corr_selection": selection,
        "n_frames": len(frames),
    }
