"""Energy decomposition: triplets, invariances, smooth cutoff, conservative forces, phase 1 and phase 2."""

from __future__ import annotations

import itertools
import warnings

import ase
import lightning
import numpy as np
import pytest
import torch
from helpers.pair_frames import TYPES, pair_curve, random_frames, to_batch

from gnnff_stability.models.body_terms import pair_types, triple_types, triplets
from gnnff_stability.models.decomposition import BodyTermsModel, DecomposedModel, load_prefit
from gnnff_stability.models.prefit import prefit_body_terms


@pytest.fixture(scope="module", autouse=True)
def _global_state():
    from nequip.utils.global_state import set_global_state

    set_global_state()


def _body_model(three_body=True, seed=1, **kw):
    model = BodyTermsModel(seed=seed, model_dtype="float64", type_names=TYPES, r_max=3.0, three_body=three_body,
                           per_type_energy_shifts={"Hf": -3.0, "O": -1.0}, **kw)
    with torch.no_grad():  # larger weights than the (small) initialisation, so every term matters
        gen = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()


def _energy_forces(model, atoms, r_max=3.0):
    out = model(to_batch([atoms], r_max))
    return out["total_energy"].detach().view(-1)[0].item(), out["forces"].detach().numpy()


def test_bond_type_tables():
    assert pair_types(TYPES) == [("Hf", "Hf"), ("Hf", "O"), ("O", "O")]
    assert triple_types(TYPES) == [("Hf", "Hf", "Hf"), ("Hf", "Hf", "O"), ("Hf", "O", "O"),
                                   ("O", "Hf", "Hf"), ("O", "Hf", "O"), ("O", "O", "O")]


def test_triplets_match_brute_force():
    rng = np.random.default_rng(0)
    center = rng.integers(0, 7, size=40)
    e1, e2 = triplets(torch.as_tensor(center), 9)
    got = sorted(zip(e1.tolist(), e2.tolist()))
    expected = sorted((a, b) for a, b in itertools.permutations(range(40), 2) if center[a] == center[b])
    assert got == expected
    empty = triplets(torch.zeros(0, dtype=torch.long), 3)
    assert empty[0].numel() == 0 and empty[1].numel() == 0


def test_triplets_unordered_once():
    rng = np.random.default_rng(1)
    center = rng.integers(0, 5, size=30)
    e1, e2 = triplets(torch.as_tensor(center), 5, ordered=False)
    got = sorted(tuple(sorted(p)) for p in zip(e1.tolist(), e2.tolist()))
    assert got == sorted((a, b) for a, b in itertools.combinations(range(30), 2) if center[a] == center[b])


def test_typed_mlp_paths_agree():
    """The eager (per-type matmul) and compiled (gathered weights) paths are the same function."""
    from gnnff_stability.models.body_terms import _TypedMLP

    torch.manual_seed(0)
    mlp = _TypedMLP(6, 4, [16, 16]).double()
    x = torch.randn(50, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (50,))  # type 5 absent: an empty segment
    a, b = mlp._segmented(x, t), mlp._gathered(x, t)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    ga = torch.autograd.grad(a.square().sum(), [x, *mlp.parameters()])
    gb = torch.autograd.grad(b.square().sum(), [x, *mlp.parameters()])
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12)
    # and row k really uses the MLP of type t[k]
    h = x[:1]
    for k, (w, bias) in enumerate(zip(mlp.weights, mlp.biases)):
        h = h @ w[t[0]] + bias[t[0]]
        h = torch.nn.functional.silu(h) if k < 2 else h
    torch.testing.assert_close(a[:1], h.view(-1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("three_body", [False, True])
def test_rotation_and_permutation_invariance(three_body):
    model = _body_model(three_body)
    atoms = random_frames(1, seed=5)[0]
    e0, f0 = _energy_forces(model, atoms)
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell @ q.T, scale_atoms=False)
    rotated.positions = atoms.positions @ q.T
    e1, f1 = _energy_forces(model, rotated)
    assert e1 == pytest.approx(e0, abs=1e-10)
    np.testing.assert_allclose(f1, f0 @ q.T, atol=1e-9)
    perm = rng.permutation(len(atoms))
    permuted = atoms[perm]
    e2, f2 = _energy_forces(model, permuted)
    assert e2 == pytest.approx(e0, abs=1e-10)
    np.testing.assert_allclose(f2, f0[perm], atol=1e-9)
    # and the three-body term is really there: it changes the energy
    if three_body:
        assert abs(_energy_forces(_body_model(False), atoms)[0] - e0) > 1e-3


def test_forces_are_minus_the_finite_difference_gradient():
    model = _body_model(True)
    atoms = random_frames(1, seed=7)[0]
    _, forces = _energy_forces(model, atoms)
    h = 1e-5
    numeric = np.zeros_like(forces)
    for k, c in itertools.product(range(0, len(atoms), 2), range(3)):  # every other atom: all pair types
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[k, c] += h
        minus.positions[k, c] -= h
        numeric[k, c] = -(_energy_forces(model, plus)[0] - _energy_forces(model, minus)[0]) / (2 * h)
    checked = np.arange(0, len(atoms), 2)
    assert np.abs(forces[checked]).max() > 0.1
    np.testing.assert_allclose(forces[checked], numeric[checked], atol=1e-6)


def _line(d: float) -> ase.Atoms:
    """O at the origin, Hf at -2.0 Å on x, Hf at +d on x: the far pair (5 Å apart when d = 3) is out of range."""
    return ase.Atoms("OHfHf", positions=[[0, 0, 0], [-2.0, 0.3, 0], [d, 0, 0.2]], cell=np.eye(3) * 20, pbc=False)


@pytest.mark.parametrize("three_body", [False, True])
def test_terms_vanish_smoothly_at_the_cutoff(three_body):
    model = _body_model(three_body)
    r_c = 3.0
    far = _line(r_c + 0.2)
    e_far, _ = _energy_forces(model, far, r_max=6.0)
    # the atom beyond the cutoff feels nothing
    assert np.abs(_energy_forces(model, far, r_max=6.0)[1][2]).max() == 0.0
    values, forces = [], []
    for delta in (4e-2, 2e-2, 1e-2):
        atoms = _line(np.sqrt((r_c - delta) ** 2 - 0.2**2))  # |r| = r_c - delta exactly
        e, f = _energy_forces(model, atoms, r_max=6.0)
        values.append(abs(e - e_far))
        forces.append(np.abs(f[2]).max())
    # value ~ delta^3 and force ~ delta^2 (p = 6 envelope: value, slope and curvature vanish)
    assert values[0] > 0 and forces[0] > 0
    assert 6.0 < values[0] / values[1] < 10.0 and 6.0 < values[1] / values[2] < 10.0, values
    assert 3.0 < forces[0] / forces[1] < 5.0 and 3.0 < forces[1] / forces[2] < 5.0, forces
    assert values[2] < 1e-5 and forces[2] < 1e-3


@pytest.fixture(scope="module")
def pair_fit(pair_frames, tmp_path_factory):
    """Phase 1 on the Morse-labelled frames, two-body only (about 6 s)."""
    path = tmp_path_factory.mktemp("prefit") / "body.pt"
    torch.set_num_threads(1)
    metrics = prefit_body_terms(pair_frames[:40], path, TYPES, body={"three_body": False},
                                valid=pair_frames[40:], epochs=200, batch_size=8, lr=2e-2, seed=0)
    return path, metrics


def test_phase1_recovers_the_pair_potential(pair_fit):
    """Tolerance: |V_fit - V| < 0.05 eV and |F_fit - F| < 0.3 eV/Å on 1.7-2.95 Å for every pair.

    The curves span 0.8-2.5 eV and 8-14 eV/Å there; the fit of 200 epochs reaches about 0.02 eV and
    0.14 eV/Å, with per-type shifts within 0.05 eV of the labels' -3 / -1 eV.
    """
    path, metrics = pair_fit
    blob = load_prefit(path)
    model = BodyTermsModel(seed=0, model_dtype="float64", type_names=TYPES, r_max=3.0, three_body=False)
    terms = model.model.func.body_terms
    terms.load_state_dict(blob["state_dict"])
    r = np.linspace(1.7, 2.95, 60)
    for a, b in pair_types(TYPES):
        rt = torch.tensor(r, requires_grad=True)
        ta, tb = (torch.full((60,), TYPES.index(s)) for s in (a, b))
        v = terms.pair_energy(rt, ta, tb)
        force = -torch.autograd.grad(v.sum(), rt)[0].numpy()
        v_ref, dv_ref = pair_curve(r, (a, b))
        assert np.abs(v.detach().numpy() - v_ref).max() < 0.05, (a, b)
        assert np.abs(force + dv_ref).max() < 0.3, (a, b)
    assert blob["per_type_energy_shifts"]["Hf"] == pytest.approx(-3.0, abs=0.05)
    assert blob["per_type_energy_shifts"]["O"] == pytest.approx(-1.0, abs=0.05)
    assert metrics["valid"]["force_rmse_eV_per_A"] < 0.15
    assert blob["remainder_forces_rms"] == pytest.approx(metrics["train"]["force_rmse_eV_per_A"])


GNN = dict(_target_="nequip.model.NequIPGNNModel", num_layers=2, l_max=1, num_features=4, radial_mlp_width=8,
           avg_num_neighbors=10.0, per_type_energy_shifts={"Hf": -2.0, "O": -2.0}, per_type_energy_scales=1.0)


def test_decomposed_energy_is_gnn_plus_body_terms(pair_fit, pair_frames):
    path, _ = pair_fit
    blob = load_prefit(path)
    decomposed = DecomposedModel(seed=3, model_dtype="float64", type_names=TYPES, r_max=4.0, gnn=GNN, prefit=str(path))
    shifts = blob["per_type_energy_shifts"]
    gnn_kwargs = {k: v for k, v in GNN.items() if k != "_target_"}
    gnn_kwargs.update(per_type_energy_shifts=shifts, per_type_energy_scales=blob["remainder_forces_rms"])
    from nequip.model import NequIPGNNModel

    alone = NequIPGNNModel(seed=3, model_dtype="float64", type_names=TYPES, r_max=4.0, **gnn_kwargs)
    body = BodyTermsModel(seed=0, model_dtype="float64", type_names=TYPES, r_max=3.0, three_body=False)
    body.model.func.body_terms.load_state_dict(blob["state_dict"])
    batch = to_batch(pair_frames[:3], 4.0)
    e_dec = decomposed(batch.copy())
    e_gnn = alone(batch.copy())
    e_body = body(batch.copy())
    np.testing.assert_allclose(e_dec["total_energy"].detach(), (e_gnn["total_energy"] + e_body["total_energy"]).detach(), atol=1e-9)
    np.testing.assert_allclose(e_dec["forces"].detach(), (e_gnn["forces"] + e_body["forces"]).detach(), atol=1e-9)
    terms = decomposed.model.func.body_terms
    assert all(not p.requires_grad for p in terms.parameters())
    gnn_params = [p for n, p in decomposed.named_parameters() if "body_terms" not in n]
    assert gnn_params and all(p.requires_grad for p in gnn_params)


def test_phase2_training_leaves_the_body_terms_frozen(pair_fit, pair_frames):
    from nequip.train import EMALightningModule

    path, _ = pair_fit
    module = EMALightningModule(
        model=dict(_target_="gnnff_stability.models.decomposition.DecomposedModel", seed=0, model_dtype="float32",
                   type_names=TYPES, r_max=4.0, gnn=GNN, prefit=str(path)),
        loss=dict(_target_="nequip.train.EnergyForceLoss", per_atom_energy=True, coeffs={"total_energy": 1.0, "forces": 1.0}),
        val_metrics=dict(_target_="nequip.train.EnergyForceMetrics", coeffs={"forces_mae": 1.0}),
        optimizer=dict(_target_="torch.optim.Adam", lr=0.01),
        num_datasets={"train": 1, "val": 1, "test": 1},
    )
    named = dict(module.model.named_parameters())
    before = {n: p.detach().clone() for n, p in named.items()}
    batches = [to_batch(pair_frames[k : k + 4], 4.0) for k in range(0, 16, 4)]
    loader = torch.utils.data.DataLoader(batches, batch_size=None, collate_fn=lambda b: b)
    trainer = lightning.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_dataloaders=loader)
    frozen = [n for n in named if "body_terms" in n]
    trained = [n for n in named if "body_terms" not in n]
    assert frozen and trained
    for n in frozen:
        assert torch.equal(named[n].detach(), before[n]), n
    assert sum(not torch.equal(named[n].detach(), before[n]) for n in trained) >= len(trained) // 2


def test_decomposed_model_settings_are_checked(pair_fit):
    path, _ = pair_fit
    common = dict(seed=0, model_dtype="float64", type_names=TYPES, gnn=GNN)
    with pytest.raises(ValueError, match="exceeds the model's r_max"):
        DecomposedModel(r_max=2.5, **common)
    with pytest.raises(ValueError, match="disagree"):
        DecomposedModel(r_max=4.0, prefit=str(path), body={"r_cut": 2.5}, **common)
    DecomposedModel(r_max=4.0, prefit=str(path), body={"r_cut": 3.0, "three_body": False}, **common)
    with pytest.raises(ValueError, match="unknown body-term settings"):
        DecomposedModel(r_max=4.0, body={"cutoff": 2.5}, **common)
    with pytest.raises(ValueError, match="no body-term pre-fit file"):
        DecomposedModel(r_max=4.0, prefit=str(path) + ".missing", **common)
    with pytest.raises(ValueError, match="_target_"):
        DecomposedModel(r_max=4.0, **{**common, "gnn": {"num_layers": 2}})
    with pytest.raises(ValueError, match="r_cut_three_body"):
        DecomposedModel(r_max=4.0, body={"r_cut_three_body": 3.5}, **common)


def test_body_terms_in_the_pair_potential_slot_add_their_energy(pair_frames):
    """Joint training route: nequip's own `pair_potential` slot takes the body terms."""
    from nequip.model import NequIPGNNModel

    kwargs = {k: v for k, v in GNN.items() if k != "_target_"}
    common = dict(seed=2, model_dtype="float64", type_names=TYPES, r_max=4.0, **kwargs)
    joint = NequIPGNNModel(pair_potential={"_target_": "gnnff_stability.models.body_terms.BodyTermsEnergy",
                                           "r_cut": 3.0}, **common)
    plain = NequIPGNNModel(**common)
    body = BodyTermsModel(seed=0, model_dtype="float64", type_names=TYPES, r_max=3.0)
    body.model.func.body_terms.load_state_dict(joint.model.func.pair_potential.state_dict())
    batch = to_batch(pair_frames[:2], 4.0)
    total = plain(batch.copy())["total_energy"] + body(batch.copy())["total_energy"]
    np.testing.assert_allclose(joint(batch.copy())["total_energy"].detach(), total.detach(), atol=1e-9)


def test_flat_builder_is_the_nested_one(pair_fit, pair_frames):
    """DecomposedGNNModel (what a method's Hydra override selects) builds the same model as DecomposedModel."""
    from gnnff_stability.models.decomposition import DecomposedGNNModel

    path, _ = pair_fit
    nested = DecomposedModel(seed=3, model_dtype="float64", type_names=TYPES, r_max=4.0, gnn=GNN, prefit=str(path))
    flat = DecomposedGNNModel(seed=3, model_dtype="float64", type_names=TYPES, r_max=4.0, gnn_builder=GNN["_target_"],
                              prefit=str(path), **{k: v for k, v in GNN.items() if k != "_target_"})
    batch = to_batch(pair_frames[:3], 4.0)
    a, b = nested(batch.copy()), flat(batch.copy())
    np.testing.assert_allclose(a["forces"].detach(), b["forces"].detach(), atol=1e-12)
    assert not any(p.requires_grad for p in flat.model.func.body_terms.parameters())
