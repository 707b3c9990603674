"""An independent wiring check of GemNet-T: the forward pass re-implemented in numpy, edge by edge and
triplet by triplet, from the equations of Gasteiger et al. (NeurIPS 2021) with fairchem's circular
basis, on a 4-atom molecule, with the torch model's own weights.

The symmetry and finite-difference tests pass for any smooth invariant model; this one fails when a
block is miswired (an angle taken at the wrong atom, the two up-projections swapped, a skip or a
normalisation missing, the concatenation order of the edge embedding changed). The numpy code uses
its own loops and scipy's Legendre polynomials, so it shares no code path with the model but its
weights.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.special import eval_legendre

R_MAX = 4.0
AVG_NEIGHBOURS = 3.0
SIZES = {"num_blocks": 2, "emb_size_atom": 10, "emb_size_edge": 8, "emb_size_trip": 6, "emb_size_rbf": 5,
             "emb_size_cbf": 4, "emb_size_bil_trip": 7, "num_radial": 6, "num_spherical": 5}


# --------------------------------------------------------------------------------------------------
# helpers (this file's own)
# --------------------------------------------------------------------------------------------------


def _model(seed: int = 3):
    from nequip.utils.global_state import set_global_state

    from gnnff_stability.models.gemnet import GemNetTModel

    set_global_state(allow_tf32=False)
    model = GemNetTModel(seed=seed, model_dtype="float64", type_names=["Hf", "O"], r_max=R_MAX,
                         max_neighbors=None, avg_num_neighbors=AVG_NEIGHBOURS,
                         per_type_energy_shifts={"Hf": -9.0, "O": -4.5}, per_type_energy_scales=0.7,
                         **SIZES)
    return model.eval()


def _molecule() -> Atoms:
    """HfO3, non-planar, every distance below r_max: 12 directed edges, 2 triplets per edge."""
    return Atoms("HfO3", positions=[[0.0, 0.0, 0.0], [1.9, 0.2, -0.1], [-0.5, 1.8, 0.4],
                                    [0.3, -0.6, 1.95]], pbc=False)


def _graph(atoms: Atoms):
    from nequip.data import from_ase
    from nequip.data.transforms import (
        ChemicalSpeciesToAtomTypeMapper,
        NeighborListTransform,
    )

    data = from_ase(atoms)
    data = ChemicalSpeciesToAtomTypeMapper(["Hf", "O"], {"Hf": "Hf", "O": "O"})(data)
    return NeighborListTransform(r_max=R_MAX)(data)


def _w(module) -> np.ndarray:
    return module.linear.weight.detach().numpy()


def _act(x):
    return x / (1.0 + np.exp(-x)) / 0.6  # GemNet's scaled SiLU


def _dense(module, x, act: bool):
    y = x @ _w(module).T
    return _act(y) if act else y


def _residual(layer, x):
    y = _dense(layer.dense_mlp[1], _dense(layer.dense_mlp[0], x, True), True)
    return (x + y) / math.sqrt(2.0)


def _rbf(basis, d: float) -> np.ndarray:
    """u(x) sqrt(2/c^3) sin(f_n x) / x, x = d / c, u the p = 5 polynomial envelope."""
    c = R_MAX
    x = d / c
    p = 5
    u = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    f = basis.frequencies.detach().numpy()
    return u * math.sqrt(2.0 / c**3) * np.sin(f * x) / x


def _atom_update(block, h_count: int, edges, m, rbf_h, sum_norm):
    """sum over the neighbours c of each centre a of m_ca * (W rbf(d_ca)), then an MLP."""
    out = np.zeros((h_count, m.shape[1]))
    for e, (a, _c) in enumerate(edges):
        out[a] += m[e] * _dense(block.dense_rbf, rbf_h[e], False)
    x = out * sum_norm
    x = _dense(block.layers[0], x, True)
    for layer in block.layers[1:]:
        x = _residual(layer, x)
    return x


def _numpy_gemnet(model, atoms: Atoms):
    """Per-atom energies [N] (after nequip's scale and shift) and the edge embedding after each block,
    rows in nequip's edge order, from the torch model's weights."""
    g = model.model.func.gemnet
    data = _graph(atoms)
    edges = [tuple(int(v) for v in pair) for pair in data["edge_index"].T]  # (centre a, neighbour c)
    pos = atoms.positions
    types = data["atom_types"].view(-1).numpy()
    n = len(atoms)
    vec = {e: pos[c] - pos[a] for e, (a, c) in enumerate(edges)}
    dist = {e: float(np.linalg.norm(v)) for e, v in vec.items()}
    reverse = {e: edges.index((c, a)) for e, (a, c) in enumerate(edges)}
    sum_norm = 1.0 / math.sqrt(AVG_NEIGHBOURS)
    n_sph = SIZES["num_spherical"]

    rbf = np.stack([_rbf(g.radial_basis, dist[e]) for e in range(len(edges))])
    rad_cbf = np.stack([_rbf(g.cbf_radial_basis, dist[e]) for e in range(len(edges))])
    rbf3 = rbf @ _w(g.mlp_rbf3).T
    rbf_h = rbf @ _w(g.mlp_rbf_h).T
    rbf_out = rbf @ _w(g.mlp_rbf_out).T
    cbf_proj = g.mlp_cbf3.detach().numpy()  # [S, R, cbf]

    h = g.atom_emb.weight.detach().numpy()[types]
    w_emb = _w(g.edge_emb.dense)
    # m_ca = act(W [h_c, h_a, rbf(d_ca)])
    m = np.stack([_act(w_emb @ np.concatenate([h[c], h[a], rbf[e]])) for e, (a, c) in enumerate(edges)])

    def output(block, m):
        return _dense(block.out_energy, _atom_update(block, n, edges, m, rbf_out, sum_norm), False)[:, 0]

    energy = output(g.out_blocks[0], m)
    features = []
    for block, out_block in zip(g.blocks, g.out_blocks[1:]):
        trip = block.trip_interaction
        x_ba = _dense(trip.down_projection,
                      _dense(trip.dense_ba, m, True) * _dense(trip.mlp_rbf, rbf3, False), True)
        bilinear = trip.bilinear.detach().numpy()  # [cbf, trip, bil]
        x = np.zeros((len(edges), bilinear.shape[2]))
        for e_ca, (a, _c) in enumerate(edges):
            # triplets b -> a <- c: every other edge ba of the centre a
            summed = np.zeros((n_sph, bilinear.shape[1]))
            for e_ba, (a2, _b) in enumerate(edges):
                if a2 != a or e_ba == e_ca:
                    continue
                cos = float(vec[e_ba] @ vec[e_ca] / (dist[e_ba] * dist[e_ca]))  # angle cab, at a
                y = np.array([math.sqrt((2 * l + 1) / (4 * math.pi)) * eval_legendre(l, cos)
                              for l in range(n_sph)])
                summed += np.outer(y, x_ba[e_ba])
            w1 = np.einsum("r,src->cs", rad_cbf[e_ca], cbf_proj)  # [cbf, S]
            z = w1 @ summed  # [cbf, trip]
            x[e_ca] = np.einsum("kt,kto->o", z, bilinear) * sum_norm
        x_ca = _dense(trip.up_projection_ca, x, True)
        x_ac = _dense(trip.up_projection_ac, x, True)
        t = (x_ca + x_ac[[reverse[e] for e in range(len(edges))]]) / math.sqrt(2.0)

        x = (_dense(block.dense_ca, m, True) + t) / math.sqrt(2.0)
        for layer in block.layers_before_skip:
            x = _residual(layer, x)
        m = (m + x) / math.sqrt(2.0)
        for layer in block.layers_after_skip:
            m = _residual(layer, m)
        h = (h + _atom_update(block.atom_update, n, edges, m, rbf_h, sum_norm)) / math.sqrt(2.0)
        w_cat = _w(block.concat_layer.dense)
        m2 = np.stack([_act(w_cat @ np.concatenate([h[c], h[a], m[e]]))
                       for e, (a, c) in enumerate(edges)])
        for layer in block.residual_m:
            m2 = _residual(layer, m2)
        m = (m + m2) / math.sqrt(2.0)
        features.append(m)
        energy = energy + output(out_block, m)
    scale_shift = model.model.func.per_type_energy_scale_shift
    scale = scale_shift.scales.detach().numpy().reshape(-1)
    shift = scale_shift.shifts.detach().numpy().reshape(-1)
    energy = energy * (scale[types] if scale.size > 1 else scale[0]) + shift[types]
    return energy, features


def _torch_gemnet(model, atoms: Atoms):
    from gnnff_stability.train.features import FeatureRecorder

    recorder = FeatureRecorder(model, "gemnet", "edge").attach()
    try:
        with recorder.recording():
            out = model(_graph(atoms))
        features = [t.detach().numpy().copy() for t in recorder.captured()]
    finally:
        recorder.remove()
    return out["atomic_energy"].detach().numpy().reshape(-1), features


# --------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return _model()


def test_numpy_reimplementation_matches_every_block(model):
    atoms = _molecule()
    assert len(_graph(atoms)["edge_index"][0]) == 12
    energy_np, feats_np = _numpy_gemnet(model, atoms)
    energy_t, feats_t = _torch_gemnet(model, atoms)
    assert len(feats_t) == len(feats_np) == SIZES["num_blocks"]
    for mine, theirs in zip(feats_np, feats_t):
        np.testing.assert_allclose(theirs, mine, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(energy_t, energy_np, rtol=1e-10, atol=1e-12)
    assert np.ptp(energy_np[1:]) > 1e-6  # the three O differ: the environment reaches the energy


@pytest.mark.parametrize("miswire", ["swap_up_projections", "transpose_bilinear_slices",
                                     "reverse_angle_basis"])
def test_a_miswired_block_is_caught(model, miswire):
    """The check is sensitive: the same comparison on a copy whose block is miswired through its
    weights (what a wiring bug amounts to) fails by far more than the tolerance."""
    import copy

    atoms = _molecule()
    energy_np, _ = _numpy_gemnet(model, atoms)
    broken = copy.deepcopy(model)
    trip = broken.model.func.gemnet.blocks[0].trip_interaction
    with torch.no_grad():
        if miswire == "swap_up_projections":  # x_ca and x_ac exchanged
            ca, ac = trip.up_projection_ca.linear.weight, trip.up_projection_ac.linear.weight
            tmp = ca.clone()
            ca.copy_(ac)
            ac.copy_(tmp)
        elif miswire == "transpose_bilinear_slices":  # cbf and trip axes read in the wrong order
            w = trip.bilinear
            w.copy_(w.reshape(w.shape[1], w.shape[0], w.shape[2]).transpose(0, 1).contiguous())
        else:  # Y_l(cos) read as Y_l(-cos): the odd degrees change sign
            cbf = broken.model.func.gemnet.mlp_cbf3
            sign = torch.tensor([(-1.0) ** l for l in range(cbf.shape[0])], dtype=cbf.dtype)
            cbf.mul_(sign.view(-1, 1, 1))
    energy_broken, _ = _torch_gemnet(broken, atoms)
    assert np.max(np.abs(energy_broken - energy_np)) > 1e-6
