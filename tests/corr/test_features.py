"""Forward hooks on small built NequIP / Allegro models: one tensor per layer of the expected shape,
and the penalty's gradient lowers the correlation."""

from __future__ import annotations

import pytest
import torch

from gnnff_stability.families import FAMILIES
from gnnff_stability.train.features import FeatureRecorder, group_sizes

TYPES = ["Hf", "O"]
R_MAX = 4.0


@pytest.fixture(scope="module")
def batch(hfo2_frames):
    from nequip.data import AtomicDataDict, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    transforms = [
        ChemicalSpeciesToAtomTypeMapper(model_type_names=TYPES, chemical_species_to_atom_type_map={t: t for t in TYPES}),
        NeighborListTransform(r_max=R_MAX),
    ]
    items = []
    for atoms in hfo2_frames[:3]:
        data = from_ase(atoms)
        for transform in transforms:
            data = transform(data)
        items.append(data)
    return AtomicDataDict.batched_from_list(items)


def build(family: str, num_layers: int = 3, seed: int = 0, dtype: str = "float32"):
    from nequip.utils.global_state import set_global_state

    set_global_state()
    common = dict(
        seed=seed, model_dtype=dtype, type_names=TYPES, r_max=R_MAX, num_layers=num_layers,
        l_max=1, per_type_energy_shifts={"Hf": -9.0, "O": -9.0}, avg_num_neighbors=20.0,
    )
    if family == "nequip":
        from nequip.model import NequIPGNNModel

        return NequIPGNNModel(num_features=4, radial_mlp_width=8, **common)
    if family == "gemnet":
        from gnnff_stability.models.gemnet import GemNetTModel

        del common["num_layers"], common["l_max"]
        return GemNetTModel(num_blocks=num_layers, emb_size_atom=8, emb_size_edge=8, emb_size_trip=4,
                            emb_size_rbf=4, emb_size_cbf=4, emb_size_bil_trip=4, **common)
    from allegro.model import AllegroModel

    return AllegroModel(
        num_scalar_features=8, num_tensor_features=2,
        radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 4},
        scalar_embed_mlp_hidden_layers_width=8, allegro_mlp_hidden_layers_width=8,
        readout_mlp_hidden_layers_width=8, **common,
    )


# columns per layer of a 3-layer model. NequIP, 4 features: layer 0 message 4x0e+4x1o, layer 1
# 2x(4x0e) + 2x(4x1o) + 4x1e, last layer 2x(4x0e) (it outputs scalars only). Allegro: 8 scalar features.
EXPECTED = {
    ("nequip", "edge"): ([0, 1, 2], "edge", [[4 + 12], [2 * 4 + 2 * 12 + 12], [8]]),  # 0e, 1o, 1e
    ("nequip", "edge_0e"): ([0, 1, 2], "edge", [[4], [8], [8]]),
    ("nequip", "edge_1o"): ([0, 1], "edge", [[12], [24]]),
    ("nequip", "edge_0e+1o"): ([0, 1, 2], "edge", [[4, 12], [8, 24], [8]]),
    ("nequip", "node"): ([0, 1, 2], "node", None),
    ("allegro", "edge"): ([0, 1, 2], "edge", [[8], [8], [8]]),
    ("allegro", "edge+env"): ([0, 1, 2], "edge", None),
    ("gemnet", "edge"): ([0, 1, 2], "edge", [[8], [8], [8]]),  # edge embedding after each block
}


@pytest.mark.parametrize("family, selection", [(f, s) for f in FAMILIES for s in FAMILIES[f].selections])
def test_hooks_capture_one_tensor_per_layer(batch, family, selection):
    model = build(family)
    recorder = FeatureRecorder(model, family, selection).attach()
    with recorder.recording():
        model(batch.copy())
    layers, rows, sizes = EXPECTED[(family, selection)]
    assert recorder.layers == layers
    captured = recorder.captured()
    n_rows = batch["edge_index"].shape[1] if rows == "edge" else batch["pos"].shape[0]
    for tap, tensor in zip(recorder.taps, captured):
        assert tensor.shape == (n_rows, tap.n_columns)
    if sizes is not None:
        assert group_sizes(recorder.taps) == sizes
    if (family, selection) == ("allegro", "edge+env"):
        # scalar latent + next layer's env weights, except in the last layer
        widths = [t.shape[1] for t in captured]
        assert widths[0] > 8 and widths[1] > 8 and widths[2] == 8
    recorder.check_rows(batch)
    total, per_layer, per_structure = recorder.losses(recorder.samples(batch, 64, torch.Generator().manual_seed(0)))
    assert torch.isfinite(total) and per_layer.shape == (len(layers),)
    assert all(p.shape[0] == 3 for p in per_structure)
    # not recording outside the context, and gone after remove()
    recorder.clear()
    model(batch.copy())
    assert all(o is None for o in recorder.outputs)
    recorder.remove()
    assert not any(tap.module._forward_hooks for tap in recorder.taps)


def test_unknown_selection_is_refused():
    with pytest.raises(ValueError, match="not defined for allegro"):
        FeatureRecorder(build("allegro", 1), "allegro", "edge_1o")


def test_edge_1o_needs_a_vector_layer():
    with pytest.raises(ValueError, match="selects no columns"):
        FeatureRecorder(build("nequip", 1), "nequip", "edge_1o")  # one layer: scalar messages only


@pytest.mark.parametrize("family", ["nequip", "allegro", "gemnet"])
def test_gradient_steps_lower_the_correlation(batch, family):
    model = build(family, num_layers=2, seed=1)
    recorder = FeatureRecorder(model, family, FAMILIES[family].default_corr_selection).attach()
    samples = recorder.samples(batch, "sqrt", torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    values = []
    for _ in range(15):
        optimizer.zero_grad()
        with recorder.recording(samples):
            model(batch.copy())
        loss, _, _ = recorder.losses(samples)
        values.append(loss.item())
        loss.backward()
        optimizer.step()
    assert values[-1] < 0.8 * values[0], values


@pytest.mark.parametrize("family, selection", [("nequip", "edge_0e+1o"), ("nequip", "node"), ("allegro", "edge+env"),
                                               ("gemnet", "edge")])
def test_gathering_in_the_hook_gives_the_same_loss_and_gradients(batch, family, selection):
    """The hook's pass-through gather must not change the forces or any gradient."""
    model = build(family, num_layers=2, dtype="float64")
    data = batch
    recorder = FeatureRecorder(model, family, selection).attach()
    samples = recorder.samples(data, 16, torch.Generator().manual_seed(0))
    results = []
    for gather_in_hook in (False, True):
        model.zero_grad()
        with recorder.recording(samples if gather_in_hook else None):
            out = model(data.copy())
        corr, _, _ = recorder.losses(samples)
        # the force term goes through a double backward, as in training
        loss = out["forces"].pow(2).mean() + out["total_energy"].sum() * 1e-3 + 0.7 * corr
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((corr.detach(), out["forces"].detach(), grads))
        recorder.clear()
    (c0, f0, g0), (c1, f1, g1) = results
    assert torch.allclose(c0, c1, atol=1e-12) and torch.equal(f0, f1)
    assert len(g0) == len(g1) and len(g0) > 0
    for a, b in zip(g0, g1):
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-8)
