"""The paper's NequIP layout (hidden irreps in every layer), built from nequip's modules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.comb_frames import monoclinic_hfo2

from gnnff_stability.train.features import FeatureRecorder, group_sizes

TYPES = ["Hf", "O"]
R_MAX = 4.0


def build(num_layers=2, dtype="float64", **kwargs):
    from nequip.utils.global_state import set_global_state

    from gnnff_stability.models.nequip_layout import HiddenIrrepsNequIPModel

    set_global_state()
    options = dict(seed=0, model_dtype=dtype, type_names=TYPES, r_max=R_MAX, num_layers=num_layers,
                   l_max=1, parity=True, num_features=4, radial_mlp_width=8,
                   avg_num_neighbors=20.0, per_type_energy_shifts={"Hf": -9.0, "O": -9.0},
                   per_type_energy_scales=1.0)
    options.update(kwargs)
    return HiddenIrrepsNequIPModel(**options)


def graph(atoms):
    from nequip.data import AtomicDataDict, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    data = from_ase(atoms)
    for transform in (ChemicalSpeciesToAtomTypeMapper(model_type_names=TYPES,
                                                      chemical_species_to_atom_type_map={t: t for t in TYPES}),
                      NeighborListTransform(r_max=R_MAX)):
        data = transform(data)
    return AtomicDataDict.batched_from_list([data])


def energy_forces(model, atoms):
    out = model(graph(atoms))
    return out["total_energy"].item(), out["forces"].detach().numpy()


@pytest.fixture(scope="module")
def cell():
    atoms = monoclinic_hfo2()
    atoms.positions += np.random.default_rng(0).normal(0.0, 0.05, atoms.positions.shape)
    return atoms


def test_last_layer_carries_1o_messages(cell):
    model = build(num_layers=3)
    recorder = FeatureRecorder(model, "nequip", "edge_1o").attach()
    data = graph(cell)
    with recorder.recording():
        model(data.copy())
    assert recorder.layers == [0, 1, 2]        # one tensor per layer, the last included
    captured = recorder.captured()
    n_edges = data["edge_index"].shape[1]
    assert [t.shape[0] for t in captured] == [n_edges] * 3
    # 1o columns = paths x 4 channels x 3 components. Layer 0 takes 4x0e: one path, 0e⊗1o (12).
    # Layer 1 takes 4x0e+4x1o: 0e⊗1o and 1o⊗0e (24). Layer 2 takes 4x0e+4x1e+4x1o (1e came from
    # 1o⊗1o in layer 1): 0e⊗1o, 1o⊗0e and 1e⊗1o (36).
    assert group_sizes(recorder.taps) == [[12], [24], [36]]
    assert all(torch.linalg.norm(t) > 0 for t in captured)
    recorder.remove()
    func = model.model.func
    assert str(func.layer2_convnet.irreps_out["node_features"]) == "4x0e+4x0o+4x1e+4x1o"  # all of them
    assert str(func.conv_to_output_hidden.irreps_out["node_features"]) == "2x0e"


def test_energy_is_invariant_and_forces_equivariant(cell):
    model = build()
    e0, f0 = energy_forces(model, cell)
    rot = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.3, 0.5], [0.3, 0.0, -0.2],
                                                [-0.5, 0.2, 0.0]], dtype=torch.float64)).numpy()
    moved = cell.copy()
    moved.set_cell(cell.cell.array @ rot.T)
    moved.positions = cell.positions @ rot.T + np.array([0.7, -1.3, 2.1])
    order = np.random.default_rng(1).permutation(len(cell))
    moved = moved[order]
    e1, f1 = energy_forces(model, moved)
    assert e1 == pytest.approx(e0, abs=1e-9)
    np.testing.assert_allclose(f1, (f0 @ rot.T)[order], atol=1e-9)


def test_forces_are_minus_the_finite_difference_gradient(cell):
    model = build()
    _, forces = energy_forces(model, cell)
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (7, 2), (11, 0)]:
        plus, minus = cell.copy(), cell.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        gradient = (energy_forces(model, plus)[0] - energy_forces(model, minus)[0]) / (2 * h)
        assert forces[atom, axis] == pytest.approx(-gradient, abs=1e-7, rel=1e-6)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="num_features must be"):
        build(num_features=[4, 4, 4])  # l_max 1 takes two
    with pytest.raises(ValueError, match="num_layers"):
        build(num_layers=0)


@pytest.mark.slow
def test_nequip_train_with_the_paper_layout(hfo2_splits, tmp_path):
    """A real nequip-train run selects the builder through the template's model_builder key."""
    from toy_models import train_from_campaign

    metrics = train_from_campaign(
        "nequip",
        {"r_max": R_MAX, "l_max": 1, "num_features": 4,
         "overrides": {"radial_mlp_width": 8,
                       "model_builder": "gnnff_stability.models.nequip_layout.HiddenIrrepsNequIPModel"}},
        {"corr": {"features": {"nequip": "edge_1o"}, "scheduler": "fixed", "c_max": 0.1, "sample_edges": 64}},
        {"max_epochs": 2, "batch_size": 4, "lr": 0.01, "device": "cpu", "checkpoint": "last"},
        hfo2_splits, tmp_path, method_name="corr_layout",
    )
    # the Corr value and the penalty cover both layers, the last one included
    assert metrics["corr_layers"] == [0, 1] and metrics["checkpoint"] == "last"
    assert len(metrics["corr_value_per_layer"]) == 2
    assert json.loads((tmp_path / "metrics.json").read_text())["corr_layers"] == [0, 1]
    import pandas as pd

    epochs = pd.read_csv(tmp_path / "epochs.csv")
    assert epochs["train_loss_epoch/corr_layer1"].notna().all()
    config = (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    assert "model_builder: gnnff_stability.models.nequip_layout.HiddenIrrepsNequIPModel" in config
