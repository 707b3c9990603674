"""Small GemNet-T models and nequip graphs of HfO2 cells for the GemNet-T tests."""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms

from toy_models import fluorite_hfo2

#: Small GemNet-T used by the fast tests (2 blocks, so that per-block behaviour is visible).
SMALL = dict(num_blocks=2, emb_size_atom=16, emb_size_edge=12, emb_size_trip=8, emb_size_rbf=6,
             emb_size_cbf=6, emb_size_bil_trip=8, num_radial=6, num_spherical=7)
R_MAX = 4.0

#: Toy GemNet-T trained by nequip-train for the slow tests (about a minute on 2 idle cores, cached).
TOY_GEMNET = {"family": "gemnet", "num_layers": 1, "num_features": 16, "r_max": 4.0,
              "max_epochs": 6, "n_frames": 20, "batch_size": 2, "lr": 0.01}


def build_small(max_neighbors: int | None = None, seed: int = 0, dtype: str = "float64"):
    """A freshly initialised small GemNet-T (nequip GraphModel), eval mode."""
    from nequip.utils.global_state import set_global_state

    from gnnff_stability.models.gemnet import GemNetTModel

    set_global_state(allow_tf32=False)
    model = GemNetTModel(
        seed=seed, model_dtype=dtype, type_names=["Hf", "O"], r_max=R_MAX,
        max_neighbors=max_neighbors, avg_num_neighbors=15.0,
        per_type_energy_shifts={"Hf": -9.0, "O": -4.5}, per_type_energy_scales=0.7, **SMALL,
    )
    return model.eval()


def graph(atoms: Atoms, r_max: float = R_MAX) -> dict[str, torch.Tensor]:
    """nequip AtomicDataDict of ``atoms`` with nequip's own neighbour list (float64)."""
    from nequip.data import from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    data = from_ase(atoms)
    data = ChemicalSpeciesToAtomTypeMapper(["Hf", "O"], {"Hf": "Hf", "O": "O"})(data)
    return NeighborListTransform(r_max=r_max)(data)


def energy_forces(model, atoms: Atoms) -> tuple[float, np.ndarray]:
    """Total energy (eV) and forces ([N, 3], eV/Å) of ``model`` on ``atoms``."""
    out = model(graph(atoms))
    return float(out["total_energy"].detach().sum()), out["forces"].detach().numpy().copy()


def rattled_cell(seed: int = 0, triclinic: bool = True) -> Atoms:
    """12-atom fluorite HfO2, sheared and rattled: every atom sees several images of itself."""
    atoms = fluorite_hfo2((1, 1, 1))
    if triclinic:
        cell = np.array(atoms.cell)
        cell[1] += 0.11 * cell[0]
        cell[2] += 0.07 * cell[0] - 0.05 * cell[1]
        atoms.set_cell(cell, scale_atoms=True)
    atoms.rattle(0.12, seed=seed)
    return atoms


