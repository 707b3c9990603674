"""Arms whose model has more modules than the baseline's start from the baseline's GNN weights.

The models are built from the real Hydra templates (as nequip-train builds them, the data statistics
replaced by numbers) with a run's stabiliser overrides: with the same training seed, every parameter of
the baseline's model has the same value, bit for bit, in the ZBL-prior model and in the decomposed model
(GNN plus two- and three-body terms); another seed changes them."""

from __future__ import annotations

import pytest
import torch

from gnnff_stability.models.priors import zbl_overrides
from gnnff_stability.train.hydra import hydra_value, template_dir
from partial_settings import block

STATS = {  # the data-derived resolvers of the templates, replaced by numbers
    "training_module.model.avg_num_neighbors": 10.0,
    "training_module.model.per_type_energy_shifts": -5.0,
    "training_module.model.per_type_energy_scales": 1.0,
}
BASE = {"num_layers": 2, "cutoff_radius": 4.0, "l_max": 1, "parity": True, "num_bessels": 8,
        "model_type_names": ["Hf", "O"], "model_dtype": "float64"}
TINY = {
    "nequip": {**BASE, "num_features": 4, "radial_mlp_width": 8},
    "allegro": {**BASE, "num_scalar_features": 8, "num_tensor_features": 2, "mlp_width": 8},
}
DECOMPOSED = {"training_module.model._target_": "gnnff_stability.models.decomposition.DecomposedGNNModel",
              "++training_module.model.gnn_builder": "${model_builder}"}


def _model_config(family: str, seed: int, extra: dict) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    overrides = {**STATS, **TINY[family], "seed": seed, **extra}
    with template_dir() as templates, initialize_config_dir(config_dir=str(templates), version_base=None):
        cfg = compose(config_name=family, overrides=[f"{k}={hydra_value(v)}" for k, v in overrides.items()])
    return OmegaConf.to_container(cfg.training_module.model, resolve=True)


def _parameters(family: str, seed: int, extra: dict | None = None) -> dict[str, torch.Tensor]:
    from hydra.utils import get_method
    from nequip.utils.global_state import set_global_state

    set_global_state()
    config = _model_config(family, seed, extra or {})
    model = get_method(config.pop("_target_"))(**config)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _assert_shared_equal(base: dict[str, torch.Tensor], arm: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(base) - set(arm))
    assert not missing, f"baseline parameters absent from the arm: {missing}"
    different = [name for name in base if not torch.equal(base[name], arm[name])]
    assert not different, f"initial values that differ from the baseline's: {different}"


@pytest.mark.parametrize("family", ["nequip", "allegro"])
def test_zbl_arm_starts_from_the_baseline_weights(family):
    base = _parameters(family, 3)
    assert len(base) > 5
    zbl = _parameters(family, 3, zbl_overrides(["Hf", "O"]))
    _assert_shared_equal(base, zbl)
    assert set(zbl) == set(base)  # ZBL adds no parameter
    other_seed = _parameters(family, 4)
    assert any(not torch.equal(base[n], other_seed[n]) for n in base)


def test_decomposed_arm_starts_from_the_baseline_gnn_weights():
    base = _parameters("nequip", 3)
    body = block("methods.stub.decomposition", {"body": {"r_cut": 3.0}})["body"]
    decomposed = _parameters("nequip", 3, {**DECOMPOSED, "++training_module.model.body": body})
    _assert_shared_equal(base, decomposed)
    extra = sorted(set(decomposed) - set(base))
    assert extra and all("body_terms" in name for name in extra)
