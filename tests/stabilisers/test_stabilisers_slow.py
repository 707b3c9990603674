"""Real `nequip-train` runs: SAM selected through Hydra, and phase 2 of the decomposed model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from gnnff_stability.models.decomposition import load_prefit
from gnnff_stability.models.prefit import prefit_body_terms
from gnnff_stability.config import validate_config
from gnnff_stability.grid import model_presets
from gnnff_stability.settings import MaterialSettings, TrainingSettings
from gnnff_stability.train.hydra import hydra_overrides, template_dir
from gnnff_stability.train.run import collect_epoch_metrics

pytestmark = pytest.mark.slow

TINY = {"family": "nequip", "r_max": 4.0, "l_max": 1, "num_features": 4, "overrides": {"radial_mlp_width": 8}}


def _overrides(model: dict, training: dict, splits, run: Path) -> list[str]:
    """hydra_overrides of one NequIP run, from partial blocks validated like a campaign's."""
    config = validate_config({"grid": {"model": ["nequip"], "layers": {"nequip": [2]}, "method": ["b"]},
                              "models": {"nequip": model}, "methods": {"b": {}}, "training": training})
    files = {k: splits[k] for k in ("train", "valid", "test")}
    return hydra_overrides(model_presets(config)["nequip"], 2, 0, None,
                           TrainingSettings.from_config(config["training"]),
                           MaterialSettings.from_config(config["material"]).species, files, run)
TRAINING = {"batch_size": 4, "lr": 0.01, "loss_coeffs": {"forces": 1.0, "total_energy": 1.0}, "device": "cpu"}


def _nequip_train(config_dir: Path, name: str, overrides: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "HYDRA_FULL_ERROR": "1"}
    cli = Path(sys.executable).parent / "nequip-train"
    proc = subprocess.run([str(cli), "-cp", str(config_dir), "-cn", name, *overrides], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_sam_selected_through_hydra_trains(pair_splits, tmp_path):
    settings = {**TINY, "overrides": {**TINY["overrides"],
                                      "training_module._target_": "gnnff_stability.train.sam.CorrSAMLightningModule",
                                      "++training_module.sam": {"rho": 0.05, "adaptive": False}}}
    run = tmp_path / "run"
    overrides = _overrides(settings, {**TRAINING, "max_epochs": 3}, pair_splits, run)
    with template_dir() as templates:
        _nequip_train(templates, "nequip", overrides)
    epochs = collect_epoch_metrics(run)
    assert epochs["epoch"].tolist() == [0, 1, 2]
    loss = epochs["train_loss_epoch/weighted_sum"]
    assert loss.is_monotonic_decreasing and loss.iloc[-1] < 0.9 * loss.iloc[0], loss.tolist()
    assert (epochs["sam/grad_norm"] > 0).all()
    ckpt = torch.load(run / "best.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["sam"] == {"rho": 0.05, "adaptive": False}
    assert ckpt["hyper_parameters"]["info_dict"]["training_module"]["_target_"].endswith("CorrSAMLightningModule")


def decomposed_template(template: Path, prefit: Path, out: Path) -> Path:
    """The NequIP template with its model wrapped in DecomposedModel (the GNN config as ``gnn``)."""
    cfg = OmegaConf.load(template)
    model = OmegaConf.to_container(cfg.training_module.model, resolve=False)
    outer = {k: model.pop(k) for k in ("seed", "model_dtype", "type_names", "r_max")}
    cfg.training_module.model = {"_target_": "gnnff_stability.models.decomposition.DecomposedModel", **outer,
                                 "prefit": str(prefit), "gnn": model}
    OmegaConf.save(cfg, out)
    return out


@pytest.fixture(scope="module")
def phase2_run(pair_splits, tmp_path_factory):
    """Phase 1 (20 epochs) then 2 epochs of phase 2 through nequip-train on the decomposed template."""
    tmp_path = tmp_path_factory.mktemp("phase2")
    prefit = tmp_path / "body.pt"
    from partial_settings import block as section

    dec = section("methods.stub.decomposition", {"body": {"r_cut": 3.0}})
    prefit_body_terms(pair_splits["train"], prefit, ["Hf", "O"], dec["body"], energy_weight=1.0, force_weight=1.0,
                      seed=0, **{**dec["prefit"], "epochs": 20, "lr": 2e-2})
    with template_dir() as templates:
        decomposed_template(templates / "nequip.yaml", prefit, tmp_path / "decomposed.yaml")
    run = tmp_path / "run"
    overrides = _overrides(TINY, {**TRAINING, "max_epochs": 2}, pair_splits, run)
    _nequip_train(tmp_path, "decomposed", overrides)
    return run, prefit


def test_decomposed_phase2_trains_with_frozen_body_terms(phase2_run):
    run, prefit = phase2_run
    epochs = collect_epoch_metrics(run)
    assert epochs["epoch"].tolist() == [0, 1] and epochs["val0_epoch/forces_mae"].notna().all()
    state = torch.load(run / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    prefix = "model.sole_model.model.func.body_terms."
    blob = load_prefit(prefit)
    assert set(blob["state_dict"]) == {k[len(prefix):] for k in state if k.startswith(prefix)}
    for key, value in blob["state_dict"].items():
        assert torch.equal(state[prefix + key], value.to(state[prefix + key].dtype)), key
    shift = state["model.sole_model.model.func.per_type_energy_scale_shift.shifts"].view(-1).double()
    assert shift.tolist() == pytest.approx([blob["per_type_energy_shifts"][t] for t in ("Hf", "O")], rel=1e-6)


def _extension_registered() -> bool:
    from nequip.scripts._package_utils import _INTERNAL_MODULES

    return "gnnff_stability.models" in _INTERNAL_MODULES


@pytest.mark.skipif(not _extension_registered(),
                    reason="gnnff_stability.models is not a registered nequip extension: reinstall (pip install -e .)")
def test_decomposed_model_packages(phase2_run, pair_splits, tmp_path):
    """nequip-package carries the body-term code (needs the package's nequip.extension entry point)."""
    import ase.io
    from nequip.ase import NequIPCalculator

    run, _ = phase2_run
    package = tmp_path / "model.nequip.zip"
    cli = Path(sys.executable).parent / "nequip-package"
    proc = subprocess.run([str(cli), "build", str(run / "best.ckpt"), str(package)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    frames = ase.io.read(pair_splits["test"], index=":3")
    energies = []
    for path in (run / "best.ckpt", package):
        calc = NequIPCalculator._from_saved_model(str(path), device="cpu", compile_mode="eager")
        energies.append([calc.get_potential_energy(atoms) for atoms in frames])
    assert energies[1] == pytest.approx(energies[0], abs=1e-5)
