"""GemNet-T (gnnff_stability.models.gemnet): symmetries, finite-difference forces, periodicity, hooks,
training through nequip-train and MD through the embedded LAMMPS engine."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest
import torch
from ase import Atoms
from gemnet_builders import SMALL, build_small, energy_forces, graph, rattled_cell

from gnnff_stability.train.features import FeatureRecorder, build_taps
from gnnff_stability.settings import MDSettings
from partial_settings import partial


def read_dump(path):
    """The whole dump in memory: its complete snapshots, and whether it ended inside one."""
    from gnnff_stability.analysis.dump import DumpReader

    reader = DumpReader(path)
    return list(reader), reader.truncated


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# --------------------------------------------------------------------------------------------------
# symmetries and forces
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["small_model", "capped_model"])
def test_energy_invariant_forces_equivariant(model_name, request):
    """Random rotations, translations and atom permutations of a periodic triclinic cell (the neighbour
    list is rebuilt by nequip for every copy): E unchanged, F rotated and permuted with the atoms."""
    model = request.getfixturevalue(model_name)
    rng = np.random.default_rng(7)
    atoms = rattled_cell(seed=1)
    e0, f0 = energy_forces(model, atoms)
    assert np.abs(f0).max() > 1e-3  # a non-trivial force field
    for _ in range(3):
        rot, shift, perm = _rotation(rng), rng.normal(0, 3.0, 3), rng.permutation(len(atoms))
        moved = Atoms(
            numbers=atoms.numbers[perm],
            positions=atoms.positions[perm] @ rot.T + shift,
            cell=np.array(atoms.cell) @ rot.T,
            pbc=True,
        )
        e1, f1 = energy_forces(model, moved)
        assert e1 == pytest.approx(e0, rel=1e-12, abs=1e-10)
        np.testing.assert_allclose(f1, f0[perm] @ rot.T, atol=1e-10)


def test_forces_are_minus_the_energy_gradient(small_model):
    """Central finite differences (h = 1e-4 Å, fresh neighbour list each time) of the float64 energy."""
    atoms = rattled_cell(seed=2)
    _, forces = energy_forces(small_model, atoms)
    h = 1e-4
    for atom, axis in [(0, 0), (3, 1), (5, 2), (9, 0), (11, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = -(energy_forces(small_model, plus)[0] - energy_forces(small_model, minus)[0]) / (2 * h)
        assert forces[atom, axis] == pytest.approx(fd, abs=1e-7, rel=1e-6)


@pytest.mark.parametrize("model_name", ["small_model", "capped_model"])
def test_supercell_has_the_same_energy_per_atom(model_name, request):
    """A 12-atom periodic cell (r_max 4 Å exceeds half its width: self-image edges and triplets across
    the boundary) and its 2x2x2 supercell: equal energy per atom, forces repeated cell by cell."""
    model = request.getfixturevalue(model_name)
    atoms = rattled_cell(seed=3)
    e1, f1 = energy_forces(model, atoms)
    big = atoms.repeat((2, 2, 2))
    e8, f8 = energy_forces(model, big)
    assert e8 / len(big) == pytest.approx(e1 / len(atoms), rel=1e-12)
    np.testing.assert_allclose(f8, np.tile(f1, (8, 1)), atol=1e-10)


def test_isolated_atom_has_its_energy_shift():
    model = build_small()
    energy, forces = energy_forces(model, Atoms("Hf", positions=[[0, 0, 0]], cell=np.eye(3) * 20, pbc=False))
    assert energy == pytest.approx(-9.0, abs=1e-12)
    assert np.all(forces == 0)


def test_builder_rejects_bad_values():
    from nequip.utils.global_state import set_global_state

    from gnnff_stability.models.gemnet import GemNetTModel

    set_global_state(allow_tf32=False)
    base = dict(seed=0, model_dtype="float32", type_names=["Hf", "O"], r_max=4.0, emb_size_atom=8, emb_size_edge=8,
                emb_size_trip=4, emb_size_rbf=4, emb_size_cbf=4, emb_size_bil_trip=4)
    with pytest.raises(ValueError, match="num_blocks must be >= 1, got 0"):
        GemNetTModel(**base, num_blocks=0)
    with pytest.raises(ValueError, match="emb_size_edge must be an integer >= 1, got 0"):
        GemNetTModel(**{**base, "emb_size_edge": 0})
    with pytest.raises(ValueError, match="max_neighbors must be a positive integer or null"):
        GemNetTModel(**base, max_neighbors=0)
    with pytest.raises(ValueError, match="output_init must be 'HeOrthogonal' or 'zeros'"):
        GemNetTModel(**base, output_init="glorot")


# --------------------------------------------------------------------------------------------------
# correlation-loss hooks
# --------------------------------------------------------------------------------------------------


def test_hooks_capture_the_edge_embedding_of_every_block(small_model):
    from nequip.data import AtomicDataDict

    model = small_model
    taps = build_taps(model, "gemnet", "edge")
    assert [t.path for t in taps] == [f"model.func.gemnet.blocks.{i}.edge_features"
                                      for i in range(SMALL["num_blocks"])]
    with pytest.raises(ValueError, match="not defined for gemnet; allowed: edge"):
        build_taps(model, "gemnet", "edge_1o")

    batch = AtomicDataDict.batched_from_list([graph(rattled_cell(seed=s)) for s in (5, 6)])
    n_edges = batch["edge_index"].shape[1]
    # independent capture: the `m` each interaction block returns
    returned, handles = [], []
    for block in model.model.func.gemnet.blocks:
        handles.append(block.register_forward_hook(lambda mod, args, out: returned.append(out[1])))
    e_plain = model(batch.copy())["total_energy"].detach()
    recorder = FeatureRecorder(model, "gemnet", "edge").attach()
    try:
        returned.clear()
        with recorder.recording():
            e_hooked = model(batch.copy())["total_energy"].detach()
        recorder.check_rows(batch)
        captured = [t.detach() for t in recorder.captured()]
        assert len(captured) == SMALL["num_blocks"]
        for full, mine in zip(captured, returned):
            assert full.shape == (n_edges, SMALL["emb_size_edge"])
            torch.testing.assert_close(full, mine.detach(), rtol=0, atol=0)
        torch.testing.assert_close(e_hooked, e_plain, rtol=0, atol=0)

        generator = torch.Generator().manual_seed(0)
        samples = recorder.samples(batch, 50, generator)
        model.train()  # as in a training step: the force graph is kept for the loss's backward
        with recorder.recording(samples):
            out = model(batch.copy())
        rows = samples["edge"][0].reshape(-1)
        for sampled, full in zip(recorder.captured(), captured):
            torch.testing.assert_close(sampled.detach().reshape(-1, full.shape[1]), full[rows])
        torch.testing.assert_close(out["total_energy"].detach(), e_plain, rtol=0, atol=0)
        loss, per_layer, _ = recorder.losses(samples)
        assert per_layer.shape == (SMALL["num_blocks"],)
        assert 0 < float(loss.detach()) < SMALL["num_blocks"]
        loss.backward()
        block0 = model.model.func.gemnet.blocks[0]
        assert block0.dense_ca.linear.weight.grad.abs().sum() > 0
    finally:
        recorder.remove()
        for handle in handles:
            handle.remove()
        model.zero_grad()
        model.eval()


def _kept_by_hand(data, max_neighbors: int, tolerance: float = 0.01) -> np.ndarray:
    """Edges within each centre's ``max_neighbors`` nearest (ties within ``tolerance`` kept), made
    symmetric, from the positions, cell and shifts in numpy, one atom at a time."""
    pos = data["pos"].numpy()
    edge_index = data["edge_index"].numpy()
    shifts = data["edge_cell_shift"].numpy()
    cell = data["cell"].numpy().reshape(-1, 3, 3)
    batch = data["batch"].numpy() if "batch" in data else np.zeros(len(pos), dtype=int)
    vec = pos[edge_index[1]] - pos[edge_index[0]] + np.einsum("ei,eij->ej", shifts,
                                                              cell[batch[edge_index[0]]])
    length = np.linalg.norm(vec, axis=1)
    keep = np.zeros(len(length), dtype=bool)
    for atom in range(len(pos)):
        mine = np.flatnonzero(edge_index[0] == atom)
        if len(mine) <= max_neighbors:
            keep[mine] = True
            continue
        kth = np.sort(length[mine])[max_neighbors - 1]
        keep[mine] = length[mine] <= kth + tolerance
    key = {(a, c, *np.rint(s).astype(int)): e for e, (a, c, s) in
           enumerate(zip(edge_index[0], edge_index[1], shifts))}
    reverse = np.array([key[(c, a, *(-np.rint(s)).astype(int))] for a, c, s in
                        zip(edge_index[0], edge_index[1], shifts)])
    return keep | keep[reverse]


def test_correlation_samples_only_kept_edges(capped_model):
    """With ``max_neighbors`` 12 at 4 Å, fluorite's ~20 neighbours leave many edges outside the model;
    every sampled edge (a 64-edge training sample and the all-edge evaluation sample) is a kept edge,
    and the evaluation sample holds every kept edge of its structure."""
    from nequip.data import AtomicDataDict

    batch = AtomicDataDict.batched_from_list([graph(rattled_cell(seed=s)) for s in (5, 6)])
    kept = _kept_by_hand(batch, 12)
    assert 0.1 < 1 - kept.mean() < 0.9  # the limit is active: a real share of ghost edges
    recorder = FeatureRecorder(capped_model, "gemnet", "edge")
    generator = torch.Generator().manual_seed(0)
    index, mask = recorder.samples(batch, 64, generator)["edge"]
    sampled = index[mask].numpy()
    assert len(sampled) == 2 * 64 and len(set(sampled)) == len(sampled)
    assert kept[sampled].all()
    index, mask = recorder.samples(batch, None)["edge"]
    assert sorted(index[mask].tolist()) == np.flatnonzero(kept).tolist()
    # without the limit every edge is sampled
    index, mask = FeatureRecorder(build_small(), "gemnet", "edge").samples(batch, None)["edge"]
    assert int(mask.sum()) == batch["edge_index"].shape[1]


def test_sum_norm_statistic_counts_kept_neighbours(monkeypatch):
    """``kept_num_neighbors_mean`` (the template's avg_num_neighbors) is the mean kept-neighbour count
    of the hand-built kept set, below nequip's all-edge ``num_neighbors_mean`` when the limit acts,
    equal to it without a limit."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from nequip.data import AtomicDataDict
    from nequip.utils import logger as nequip_logger

    from gnnff_stability.models.gemnet_stats import GemNetStatisticsManager
    from toy_models import morse_labels

    # nequip's statistics log through its rank-zero logger (Lightning sets the rank in training)
    monkeypatch.setattr(nequip_logger.rank_zero_only, "rank", 0, raising=False)
    cells = [rattled_cell(seed=s) for s in (5, 6, 7)]
    for atoms in cells:
        energy, forces = morse_labels(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    graphs = [AtomicDataDict.batched_from_list([graph(atoms)]) for atoms in cells]
    kept_mean = np.mean([_kept_by_hand(g, 12).sum() / len(g["pos"]) for g in graphs])
    all_mean = np.mean([g["edge_index"].shape[1] / len(g["pos"]) for g in graphs])
    stats = GemNetStatisticsManager(12, ["Hf", "O"]).get_statistics(graphs)
    assert float(stats["kept_num_neighbors_mean"]) == pytest.approx(kept_mean, rel=1e-6)
    assert float(stats["num_neighbors_mean"]) == pytest.approx(all_mean, rel=1e-6)
    assert kept_mean < 0.9 * all_mean
    assert set(stats) >= {"per_atom_energy_mean", "forces_rms", "per_type_forces_rms"}
    stats = GemNetStatisticsManager(None, ["Hf", "O"]).get_statistics(graphs)
    assert float(stats["kept_num_neighbors_mean"]) == pytest.approx(all_mean, rel=1e-6)


# --------------------------------------------------------------------------------------------------
# nequip-train, nequip-package and the embedded LAMMPS engine (slow)
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_nequip_train_fits_forces_well_below_a_zero_force_model(toy_gemnet, tmp_path):
    """nequip-train (6 epochs, 16 Morse-labelled frames), then the package on 8 unseen frames."""
    import ase.io

    from gnnff_stability.train.evaluate import evaluate_model
    from toy_models import toy_dataset

    frames = toy_dataset(8, seed=123)
    ase.io.write(tmp_path / "test.xyz", frames, format="extxyz")
    metrics = evaluate_model(toy_gemnet, tmp_path / "test.xyz", "gemnet", "edge")
    zero_force_mae = 1000 * np.mean(np.abs(np.concatenate([a.get_forces().ravel() for a in frames])))
    assert metrics["fmae_meV_per_A"] < 0.4 * zero_force_mae, (metrics, zero_force_mae)
    assert metrics["corr_selection"] == "edge" and metrics["corr_layers"] == [0]
    assert 0 < metrics["corr_value"] < 1


@pytest.mark.slow
def test_packaged_gemnet_runs_embedded_md_with_its_own_step0_forces(toy_gemnet, tmp_path, hfo2_material):
    """The package drives LAMMPS through fix external; step-0 forces and energy equal those of nequip's
    ASE calculator (its own neighbour list) on the same triclinic cell."""
    import pandas as pd
    from nequip.integrations.ase import NequIPCalculator

    from gnnff_stability.md import MDRunFiles, run_md
    from toy_models import fluorite_hfo2, write_lammps_cell

    atoms = fluorite_hfo2((2, 2, 2))
    cell = np.array(atoms.cell)
    cell[1] += 0.08 * cell[0]
    atoms.set_cell(cell, scale_atoms=True)
    atoms.rattle(0.05, seed=3)
    data_file = write_lammps_cell(atoms, tmp_path / "cell.data")
    out = MDRunFiles.in_dir(tmp_path)
    record = run_md(toy_gemnet, data_file, 300.0, 0,
                    partial(MDSettings, {"steps": 20, "dump_every": 10, "thermo_every": 10}), hfo2_material, out)
    assert record["engine"] == "embedded" and record["steps_done"] == 20
    snap = read_dump(out.dump)[0][0]
    assert snap.step == 0
    ref = snap.to_atoms(("Hf", "O"))
    ref.calc = NequIPCalculator._from_saved_model(
        toy_gemnet, device="cpu", chemical_species_to_atom_type_map=True)
    np.testing.assert_allclose(snap.forces, ref.get_forces(), atol=2e-4)
    assert np.abs(snap.forces).max() > 1e-2
    pe0 = pd.read_csv(out.thermo)["pe_eV"].iloc[0]
    assert pe0 == pytest.approx(ref.get_potential_energy(), abs=2e-3)


@pytest.mark.slow
def test_train_model_with_the_correlation_loss_on_the_gemnet_template(tmp_path):
    """The workflow's train_model on the gemnet template: nequip-train with the correlation loss
    on the edge embeddings, nequip-package, then EMAE / FMAE / Corr of the package."""
    import json

    import ase.io
    import pandas as pd

    from toy_models import toy_dataset, train_from_campaign

    if not any(ep.value == "gnnff_stability.models" for ep in entry_points(group="nequip.extension")):
        pytest.fail("gnnff_stability.models is not a registered nequip extension: pip install -e .")
    splits = {}
    for name, n, seed in (("train", 12, 0), ("valid", 4, 1), ("test", 4, 2)):
        splits[name] = tmp_path / f"{name}.xyz"
        ase.io.write(splits[name], toy_dataset(n, seed), format="extxyz")
    settings = {"family": "gemnet", "r_max": 4.0, "emb_size_atom": 8, "emb_size_edge": 8,
                "emb_size_trip": 4, "emb_size_rbf": 4, "emb_size_cbf": 4, "emb_size_bil_trip": 4,
                "num_radial": 6, "num_spherical": 7, "max_neighbors": 50}
    corr = {"corr": {"features": {"gemnet": "edge"}, "scheduler": "cosine", "c_min": 0.0,
                     "c_max": 0.1, "t_cycle": 2, "sample_edges": 64}}
    settings.pop("family")
    metrics = train_from_campaign("gemnet", settings, corr,
                                  {"batch_size": 4, "lr": 0.01, "max_epochs": 2, "device": "cpu"},
                                  splits, tmp_path, layers=2, method_name="corr", threads=1)
    assert json.loads((tmp_path / "metrics.json").read_text())["family"] == "gemnet"
    assert metrics["corr_selection"] == "edge" and metrics["corr_layers"] == [0, 1]
    assert 0 < metrics["corr_value"] < 1 and np.isfinite(metrics["fmae_meV_per_A"])
    epochs = pd.read_csv(tmp_path / "epochs.csv")
    # Eq. 5 with c_min 0, c_max 0.1, t_cycle 2: c(0) = 0, c(1) = 0.1 - 0.05 (1 + cos(pi/2)) = 0.05
    assert epochs["loss_coeff/corr"].tolist() == pytest.approx([0.0, 0.05])
    for column in ("train_loss_epoch/corr_layer0", "train_loss_epoch/corr_layer1"):
        assert epochs[column].notna().all() and (epochs[column] > 0).all(), column
