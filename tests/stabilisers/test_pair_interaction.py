"""Pair-interaction diagnostic: exact on analytic pair potentials, consistent with atomic forces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.pair_frames import TYPES, envelope, to_batch

from gnnff_stability.analysis.pair_interaction import pair_forces, pair_interaction

Z = {"Hf": 72, "O": 8}
R_MAX = 4.0


def zbl_force(r: np.ndarray, z1: int, z2: int, r_max: float = R_MAX) -> np.ndarray:
    """-d/dr of the enveloped ZBL pair energy (eV/Å), analytically in numpy."""
    a = 0.46850 / (z1**0.23 + z2**0.23)
    c = np.array([0.18175, 0.50986, 0.28022, 0.02817])
    d = np.array([3.19980, 0.94229, 0.40290, 0.20162])
    ex = np.exp(-np.outer(r / a, d))
    phi, dphi = ex @ c, -(ex * d) @ c / a
    k = 14.399645 * z1 * z2
    v, dv = k * phi / r, k * (dphi / r - phi / r**2)
    u, du = envelope(r, r_cut=r_max, p=6)
    return -(dv * u + v * du)


@pytest.fixture(scope="module")
def zbl_model():
    from nequip.model.pair_potential import ZBLPairPotential
    from nequip.utils.global_state import set_global_state

    set_global_state()
    return ZBLPairPotential(seed=0, model_dtype="float64", type_names=TYPES, chemical_species=TYPES,
                            units="metal", r_max=R_MAX)


def test_pair_forces_of_a_pair_potential_are_minus_dv_dr(zbl_model, pair_frames):
    frames = pair_frames[:6]
    df = pair_forces(zbl_model, frames)
    assert set(df["pair"]) == {"Hf-Hf", "Hf-O", "O-O"}
    assert df["r_A"].max() < R_MAX and df["r_A"].min() > 1.5
    for pair, group in df.groupby("pair"):
        a, b = pair.split("-")
        expected = zbl_force(group["r_A"].to_numpy(), Z[a], Z[b])
        np.testing.assert_allclose(group["force_eV_per_A"], expected, rtol=1e-9, atol=1e-9)
        assert (group["force_eV_per_A"] > 0).all()  # ZBL is repulsive everywhere
    # each unordered pair (periodic images separately) once: half the directed edges
    n_edges = sum(int(to_batch([f], R_MAX)["edge_index"].shape[1]) for f in frames)
    assert len(df) * 2 == n_edges


def test_binned_curve_is_the_mean_over_each_bin(zbl_model, pair_frames):
    frames = pair_frames[:6]
    edges = np.linspace(1.5, 4.0, 11)
    table = pair_interaction(zbl_model, frames, bins=edges)
    raw = pair_forces(zbl_model, frames)
    assert list(table.columns) == ["pair", "r_lo_A", "r_hi_A", "r_mid_A", "count", "force_mean_eV_per_A",
                                   "force_std_eV_per_A"]
    assert len(table) == 3 * 10 and table["count"].sum() == len(raw)
    for _, row in table[table["count"] > 0].iterrows():
        a, b = row["pair"].split("-")
        r = raw[(raw["pair"] == row["pair"]) & (raw["r_A"] >= row["r_lo_A"]) & (raw["r_A"] < row["r_hi_A"])]["r_A"]
        assert len(r) == row["count"]
        assert row["force_mean_eV_per_A"] == pytest.approx(zbl_force(r.to_numpy(), Z[a], Z[b]).mean(), rel=1e-9)
    assert table[table["count"] == 0]["force_mean_eV_per_A"].isna().all()
    with pytest.raises(ValueError, match="increasing"):
        pair_interaction(zbl_model, frames, bins=[2.0, 1.0])


def test_learned_two_body_model_gives_its_own_curve(pair_frames):
    """A body-term model with NN2 only is a pair potential: the diagnostic returns -dNN2/dr."""
    from gnnff_stability.models.decomposition import BodyTermsModel

    from partial_settings import block as section

    body = section("methods.stub.decomposition", {"body": {"r_cut": 3.0, "three_body": False}})["body"]
    model = BodyTermsModel(seed=4, model_dtype="float64", type_names=TYPES, r_max=4.0, body=body)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    df = pair_forces(model, pair_frames[:4])
    terms = model.model.func.body_terms
    for pair, group in df.groupby("pair"):
        ta, tb = (torch.full((len(group),), TYPES.index(s)) for s in pair.split("-"))
        r = torch.tensor(group["r_A"].to_numpy(), requires_grad=True)
        expected = -torch.autograd.grad(terms.pair_energy(r, ta, tb).sum(), r)[0].numpy()
        np.testing.assert_allclose(group["force_eV_per_A"], expected, rtol=1e-8, atol=1e-10)


def test_edge_forces_rebuild_the_atomic_forces_of_a_many_body_model(pair_frames):
    """For NequIP (many-body), the pair decomposition sums to the model's own atomic forces."""
    from nequip.model import NequIPGNNModel
    from nequip.utils.global_state import set_global_state

    set_global_state()
    model = NequIPGNNModel(seed=0, model_dtype="float64", type_names=TYPES, r_max=R_MAX, num_layers=2, l_max=1,
                           num_features=4, radial_mlp_width=8, avg_num_neighbors=10.0,
                           per_type_energy_shifts={"Hf": -3.0, "O": -1.0}, per_type_energy_scales=1.0).eval()
    atoms = pair_frames[7]
    forces = model(to_batch([atoms], R_MAX))["forces"].detach().numpy()
    df = pair_forces(model, [atoms])
    assert df["force_eV_per_A"].abs().max() > 1e-3
    # vector pair forces are not along the bond for a many-body model; rebuild them from the edge gradients
    from nequip.nn.utils import with_edge_vectors_

    data = with_edge_vectors_(to_batch([atoms], R_MAX), with_lengths=False)
    vec = data["edge_vectors"].detach()
    data = {k: v for k, v in data.items() if k != "edge_lengths"}
    data["edge_vectors"] = vec
    grad = model(data)["edge_forces"].detach().numpy()
    src, dst = data["edge_index"].numpy()
    rebuilt = np.zeros_like(forces)
    np.add.at(rebuilt, dst, -grad)
    np.add.at(rebuilt, src, grad)
    np.testing.assert_allclose(rebuilt, forces, atol=1e-10)
