"""The ZBL prior through the real Hydra templates: Hf-O at 0.5 Å against the ZBL formula in numpy."""

from __future__ import annotations

import ase
import numpy as np
import pytest
from helpers.pair_frames import envelope, to_batch

from gnnff_stability.models.priors import ZBL_OVERRIDE_KEY, zbl_overrides, zbl_pair_potential
from gnnff_stability.train.hydra import hydra_value as _hydra_value


STATS = {  # the data-derived resolvers of the templates, replaced by numbers
    "training_module.model.avg_num_neighbors": 10.0,
    "training_module.model.per_type_energy_shifts": -5.0,
    "training_module.model.per_type_energy_scales": 1.0,
}
# the template keys the campaign owns (mandatory there), set as train_model would
BASE = {"seed": 0, "num_layers": 2, "cutoff_radius": 5.0, "l_max": 1, "parity": True, "num_bessels": 8,
        "model_type_names": ["Hf", "O"]}
TINY = {
    "nequip": {**BASE, "num_features": 4, "radial_mlp_width": 8},
    "allegro": {**BASE, "num_scalar_features": 8, "num_tensor_features": 2, "mlp_width": 8},
}


def zbl_energy(r: float, z1: int, z2: int) -> float:
    """ZBL screened Coulomb repulsion (eV, r in Å), Ziegler-Biersack-Littmark universal screening."""
    a = 0.46850 / (z1**0.23 + z2**0.23)
    x = r / a
    phi = (0.18175 * np.exp(-3.19980 * x) + 0.50986 * np.exp(-0.94229 * x)
           + 0.28022 * np.exp(-0.40290 * x) + 0.02817 * np.exp(-0.20162 * x))
    return 14.399645 * z1 * z2 / r * phi


def _model(family: str, extra: dict):
    from hydra import compose, initialize_config_dir
    from hydra.utils import get_method
    from omegaconf import OmegaConf

    from nequip.utils.global_state import set_global_state

    set_global_state()
    overrides = {**STATS, **TINY[family], "model_dtype": "float64", **extra}
    from gnnff_stability.train.hydra import template_dir

    with template_dir() as templates, initialize_config_dir(config_dir=str(templates), version_base=None):
        cfg = compose(config_name=family, overrides=[f"{k}={_hydra_value(v)}" for k, v in overrides.items()])
    model_cfg = OmegaConf.to_container(cfg.training_module.model, resolve=True)
    return get_method(model_cfg.pop("_target_"))(**model_cfg).eval(), float(cfg.cutoff_radius)


@pytest.mark.parametrize("family", ["nequip", "allegro"])
def test_zbl_override_makes_hf_o_strongly_repulsive_at_half_an_angstrom(family):
    plain, r_max = _model(family, {})
    with_zbl, _ = _model(family, zbl_overrides(["Hf", "O"]))
    assert "pair_potential" in dict(with_zbl.model.func.named_children())
    r = 0.5
    dimer = ase.Atoms("HfO", positions=[[0, 0, 0], [r, 0, 0]], cell=np.eye(3) * 30, pbc=False)
    batch = to_batch([dimer], r_max)
    out_plain = plain(batch.copy())
    out_zbl = with_zbl(batch.copy())
    added = (out_zbl["total_energy"] - out_plain["total_energy"]).item()
    u, _ = envelope(np.array([r]), r_cut=r_max, p=6)
    expected = zbl_energy(r, 72, 8) * u[0]
    assert expected > 900  # about 1 keV: strongly repulsive
    assert added == pytest.approx(expected, rel=1e-9)
    # repulsive force: O pushed along +x, away from Hf
    f_added = (out_zbl["forces"] - out_plain["forces"]).detach().numpy()
    assert f_added[1, 0] > 1000 and f_added[0, 0] == pytest.approx(-f_added[1, 0])


def test_zbl_config_and_its_errors():
    cfg = zbl_pair_potential(["Hf", "O"])
    assert cfg == {"_target_": "nequip.nn.pair_potential.ZBL", "units": "metal", "chemical_species": ["Hf", "O"],
                   "polynomial_cutoff_p": 6.0}
    assert zbl_overrides(["Hf", "O"]) == {ZBL_OVERRIDE_KEY: cfg}
    assert ZBL_OVERRIDE_KEY == "++training_module.model.pair_potential"
    with pytest.raises(ValueError, match="not elements"):
        zbl_pair_potential(["Hf", "Xx"])
    with pytest.raises(ValueError, match="units"):
        zbl_pair_potential(["Hf", "O"], units="si")
    with pytest.raises(ValueError, match="at least one"):
        zbl_pair_potential([])
