"""Real `nequip-train` runs through train_model: packaging, metrics, the schedule, and a resume after a kill."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.config import validate_config
from gnnff_stability.grid import expand_grid, training_runs
from gnnff_stability.settings import TrainingSettings
from gnnff_stability.train.deploy import compile_model
from gnnff_stability.train.run import train_model

pytestmark = pytest.mark.slow

TINY = {
    "nequip": {"family": "nequip", "r_max": 4.0, "l_max": 1, "num_features": 4, "overrides": {"radial_mlp_width": 8}},
    "allegro": {"family": "allegro", "r_max": 4.0, "l_max": 1, "num_scalar_features": 8, "num_tensor_features": 2,
                "overrides": {"mlp_width": 8}},
}
CORR = {"corr": {"features": {"nequip": "edge_0e+1o", "allegro": "edge+env"}, "scheduler": "cosine",
                 "c_min": 0.0, "c_max": 0.1, "t_cycle": 2, "sample_edges": 64}}
TRAINING = {"batch_size": 4, "lr": 0.01, "loss_coeffs": {"forces": 1.0, "total_energy": 1.0}, "device": "cpu"}


def _job(family, splits, folder, max_epochs):
    """The pieces of one training, resolved from a validated campaign as the workflow does (JSON-able)."""
    config = validate_config({
        "grid": {"model": [family], "layers": {family: [2]}, "method": ["corr_test"]},
        "models": {family: TINY[family]},
        "methods": {"corr_test": CORR},
        "training": {**TRAINING, "max_epochs": max_epochs},
    })
    run = training_runs(expand_grid(config)).iloc[0].to_dict()
    return {
        "run": {k: (v.item() if hasattr(v, "item") else v) for k, v in run.items()},
        "model": config["models"][family], "training": config["training"], "material": config["material"],
        "files": {k: str(splits[k]) for k in ("train", "valid", "test")},
        "run_dir": str(folder / "run"),
        "outputs": {"model": str(folder / "model.nequip.zip"), "metrics": str(folder / "metrics.json"),
                    "epochs": str(folder / "metrics_epoch.csv")},
    }


_TRAIN = (
    "import json, sys\n"
    "from gnnff_stability.settings import MaterialSettings, ModelPreset, TrainingSettings\n"
    "from gnnff_stability.train.run import train_model\n"
    "a = json.loads(sys.argv[1])\n"
    "train_model(a['run'], ModelPreset.from_config(a['run']['model'], a['model']),\n"
    "            TrainingSettings.from_config(a['training']), MaterialSettings.from_config(a['material']),\n"
    "            a['files'], a['run_dir'], a['outputs'], threads=2)\n"
)


def _train(job):
    from gnnff_stability.settings import MaterialSettings, ModelPreset

    run = job["run"]
    return train_model(run, ModelPreset.from_config(run["model"], job["model"]),
                       TrainingSettings.from_config(job["training"]), MaterialSettings.from_config(job["material"]),
                       job["files"], job["run_dir"],
                       job["outputs"], threads=2)


@pytest.fixture(scope="module")
def nequip_run(hfo2_splits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("nequip_corr")
    return folder, _train(_job("nequip", hfo2_splits, folder, max_epochs=3))


def test_nequip_train_packages_and_reports(nequip_run):
    tmp_path, metrics = nequip_run
    assert (tmp_path / "model.nequip.zip").stat().st_size > 0
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for key in ("emae_meV_per_atom", "fmae_meV_per_A", "corr_value", "s_per_epoch", "train_wall_s"):
        assert math.isfinite(on_disk[key]) and on_disk[key] >= 0, key
    assert on_disk["epochs"] == 3 and on_disk["method"] == "corr_test" and not on_disk["resumed"]
    assert on_disk["role"] == "Table 4 ablation (edge_0e+1o)" and on_disk["family"] == "nequip"
    assert on_disk["corr_selection"] == "edge_0e+1o" and on_disk["corr_layers"] == [0, 1]
    assert 0 <= on_disk["corr_value"] <= 1 and on_disk["corr_value"] == on_disk["corr_value_per_layer"][-1]
    epochs = pd.read_csv(tmp_path / "metrics_epoch.csv")
    assert epochs["epoch"].tolist() == [0, 1, 2]
    # Eq. 5 with c_min 0, c_max 0.1, t_cycle 2: cos 0 = 1 → 0; cos(π/2) = 0 → 0.05; restart → 0
    expected = [0.0, 0.05, 0.0]
    assert epochs["loss_coeff/corr"].tolist() == pytest.approx(expected, abs=1e-12)
    assert epochs["loss_coeff/corr_effective"].tolist() == pytest.approx([c / 2 for c in expected])
    for column in ("train_loss_epoch/corr", "train_loss_epoch/corr_layer0", "train_loss_epoch/corr_layer1",
                   "val0_epoch/forces_mae", "time/epoch_s"):
        assert epochs[column].notna().all(), column


def _offdiag_abs_pearson(x):
    """Mean |pearson| over the off-diagonal column pairs of x [rows, d] (numpy's corrcoef)."""
    c = np.abs(np.corrcoef(x, rowvar=False))
    d = c.shape[0]
    return (c.sum() - np.trace(c)) / (d * (d - 1))


def test_evaluate_model_against_the_ase_calculator_and_numpy(nequip_run, hfo2_splits):
    """EMAE, FMAE and Corr of evaluate_model recomputed another way: nequip's ASE calculator for the
    predictions, plain forward hooks and numpy's Pearson for the correlations."""
    import ase.io
    from nequip.integrations.ase import NequIPCalculator

    from gnnff_stability.train.evaluate import evaluate_model

    folder, _ = nequip_run
    package = folder / "model.nequip.zip"
    got = evaluate_model(package, hfo2_splits["test"], "nequip", "edge_0e+1o")

    calc = NequIPCalculator._from_saved_model(package, device="cpu", chemical_species_to_atom_type_map=True)
    func = calc.model.model.func if hasattr(calc.model, "model") else calc.model.func
    tps = [getattr(func, f"layer{i}_convnet").conv.tp_scatter for i in (0, 1)]
    # the tiny model (2 layers, l_max 1, 4 features, nequip's own layout): layer 0 messages 4x0e+4x1o,
    # layer 1 (scalar outputs only) 0e⊗0e and 1o⊗1o, both 0e
    assert [str(t.irreps_mid) for t in tps] == ["4x0e+4x1o", "4x0e+4x0e"]
    captured = {}
    handles = [t.tp.register_forward_hook(lambda m, a, out, i=i: captured.__setitem__(i, out.detach()))
               for i, t in enumerate(tps)]
    e_err, f_err, corr0, corr1 = [], [], [], []
    try:
        for atoms in ase.io.read(hfo2_splits["test"], ":"):
            e_ref, f_ref = atoms.get_potential_energy(), atoms.get_forces()
            atoms.calc = calc
            e_err.append(abs(atoms.get_potential_energy() - e_ref) / len(atoms))
            f_err.append(np.abs(atoms.get_forces() - f_ref).ravel())
            m0, m1 = (captured[i].double().numpy() for i in (0, 1))
            corr0.append((_offdiag_abs_pearson(m0[:, :4]) + _offdiag_abs_pearson(m0[:, 4:])) / 2)
            corr1.append(_offdiag_abs_pearson(m1))
    finally:
        for handle in handles:
            handle.remove()
    assert got["n_frames"] == len(e_err) == 4
    assert got["emae_meV_per_atom"] == pytest.approx(1000 * np.mean(e_err), rel=1e-4, abs=1e-4)
    assert got["fmae_meV_per_A"] == pytest.approx(1000 * np.mean(np.concatenate(f_err)), rel=1e-4)
    assert got["corr_layers"] == [0, 1]
    assert got["corr_value_per_layer"] == pytest.approx([np.mean(corr0), np.mean(corr1)], rel=1e-4)
    assert got["corr_value"] == got["corr_value_per_layer"][-1]


def test_allegro_resumes_after_a_kill(hfo2_splits, tmp_path):
    job = _job("allegro", hfo2_splits, tmp_path, max_epochs=5)
    proc = subprocess.Popen(
        [sys.executable, "-c", _TRAIN, json.dumps(job)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    last = tmp_path / "run" / "last.ckpt"
    deadline = time.monotonic() + 240
    try:
        size = -1
        while time.monotonic() < deadline and proc.poll() is None:
            if last.exists() and last.stat().st_size == size > 0:
                break  # written and stable: at least one epoch is checkpointed
            size = last.stat().st_size if last.exists() else -1
            time.sleep(0.3)
        assert proc.poll() is None, "training finished before it could be killed"
        assert last.exists(), "no checkpoint within the deadline"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (tmp_path / "metrics.json").exists()

    metrics = _train(job)
    assert metrics["resumed"] and metrics["epochs"] == 5
    epochs = pd.read_csv(tmp_path / "metrics_epoch.csv")
    assert epochs["epoch"].tolist() == [0, 1, 2, 3, 4]
    versions = sorted(p.name for p in (tmp_path / "run" / "csv").iterdir())
    assert versions[:2] == ["version_0", "version_1"]
    resumed = pd.read_csv(tmp_path / "run" / "csv" / "version_1" / "metrics.csv")
    assert resumed["epoch"].min() >= 1  # the epoch counter continued instead of restarting at 0
    assert math.isfinite(metrics["corr_value"]) and metrics["corr_selection"] == "edge+env"


def test_compiled_model_matches_the_package(nequip_run, hfo2_frames):
    import numpy as np
    from nequip.integrations.ase import NequIPCalculator

    folder, _ = nequip_run
    compiled = compile_model(folder / "model.nequip.zip", folder / "model.nequip.pt2", "ase", "cpu", threads=2)
    atoms = hfo2_frames[0].copy()
    atoms.calc = NequIPCalculator.from_compiled_model(compiled, device="cpu", chemical_species_to_atom_type_map=True)
    reference = hfo2_frames[0].copy()
    reference.calc = NequIPCalculator._from_saved_model(
        folder / "model.nequip.zip", device="cpu", chemical_species_to_atom_type_map=True
    )
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-4)
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-4)
    with pytest.raises(ValueError, match="compile target"):
        compile_model(folder / "model.nequip.zip", folder / "x.nequip.pt2", "lammps", "cpu")
