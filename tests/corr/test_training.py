"""Training-module logic in process (no nequip-train): loss weighting, hooks, overrides, CSV merge."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
import torch

from gnnff_stability.config import ConfigError, validate_config
from gnnff_stability.grid import expand_grid, method_settings, training_runs
from gnnff_stability.settings import MethodPreset, ModelPreset, TrainingSettings
from gnnff_stability.train.hydra import hydra_overrides
from gnnff_stability.train.module import CorrLightningModule
from gnnff_stability.train.run import collect_epoch_metrics
from partial_settings import partial

TYPES = ["Hf", "O"]


def corr_settings(family, selection, **values):
    """The correlation-loss settings of one family from a partial ``methods.<name>.corr`` block, as the
    run table resolves them (the schema fills what ``values`` leaves out)."""
    config = validate_config({
        "grid": {"model": ["m"], "layers": {"m": [1]}, "method": ["c"]},
        "models": {"m": {"family": family}},
        "methods": {"c": {"corr": {"features": {family: selection}, **values}}},
    })
    return method_settings(MethodPreset.from_config("c", config["methods"]["c"]), family)["corr_settings"]


def _module(corr, coeffs=None):
    from nequip.utils.global_state import set_global_state

    set_global_state()
    return CorrLightningModule(
        family="nequip",
        corr=corr,
        corr_seed=0,
        model=dict(
            _target_="nequip.model.NequIPGNNModel", seed=0, model_dtype="float32", type_names=TYPES,
            r_max=4.0, num_layers=2, l_max=1, num_features=4, radial_mlp_width=8,
            avg_num_neighbors=20.0, per_type_energy_shifts=-9.5, per_type_energy_scales=1.0,
        ),
        loss=dict(
            _target_="nequip.train.EnergyForceLoss", per_atom_energy=True,
            coeffs=coeffs or {"total_energy": 1.0, "forces": 1.0},
        ),
        val_metrics=dict(_target_="nequip.train.EnergyForceMetrics", coeffs={"forces_mae": 1.0}),
        optimizer=dict(_target_="torch.optim.Adam", lr=0.01),
        num_datasets={"train": 1, "val": 1, "test": 1},
    )


@pytest.fixture(scope="module")
def batch(hfo2_frames):
    from nequip.data import AtomicDataDict, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    transforms = [
        ChemicalSpeciesToAtomTypeMapper(model_type_names=TYPES, chemical_species_to_atom_type_map={t: t for t in TYPES}),
        NeighborListTransform(r_max=4.0),
    ]
    items = []
    for atoms in hfo2_frames[:4]:
        data = from_ase(atoms)
        for transform in transforms:
            data = transform(data)
        items.append(data)
    return AtomicDataDict.batched_from_list(items)


def test_corr_term_is_added_outside_the_normalised_sum(batch):
    corr = corr_settings("nequip", "edge_1o", scheduler="fixed", c_max=0.3, sample_edges=32)
    module = _module(corr, coeffs={"total_energy": 1.0, "forces": 3.0})
    assert module.loss_coeff_sum == 4.0
    assert module.corr_coeff == pytest.approx(0.3)
    assert module.corr_coeff_effective == pytest.approx(0.3 / 4.0)
    module.on_fit_start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a trainer
        total = module.training_step(batch.copy(), 0)
        # same model, same batch, same sample: the baseline part is nequip's weighted sum
        module._generator.manual_seed(0)
        samples = module._recorder.samples(batch, 32, module._generator)
        with module._recorder.recording():
            out = module(batch.copy())
        weighted = module.loss(out, module.process_target(batch, 0))["weighted_sum"]
        corr_loss, _, _ = module._recorder.losses(samples)
    assert total.item() == pytest.approx((weighted + 0.3 / 4.0 * corr_loss).item(), rel=1e-5)
    module.on_fit_end()
    assert module._recorder is None
    assert not any(m._forward_hooks for m in module.model.modules())


def test_training_steps_lower_the_penalty(batch):
    module = _module(corr_settings("nequip", "edge_1o", scheduler="fixed", c_max=20.0, sample_edges=64))
    module.on_fit_start()
    recorder = module._recorder
    all_rows = recorder.samples(batch, None)

    def penalty() -> float:  # on all edges, deterministic
        with recorder.recording():
            module(batch.copy())
        return recorder.losses(all_rows)[0].item()

    before = penalty()
    optimizer = torch.optim.Adam(module.model.parameters(), lr=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(10):
            optimizer.zero_grad()
            module.training_step(batch.copy(), 0).backward()
            optimizer.step()
    after = penalty()
    module.on_fit_end()
    assert after < 0.8 * before, (before, after)


def test_baseline_module_has_no_hooks(batch):
    module = _module(None)
    module.on_fit_start()
    assert module._recorder is None and module.configure_callbacks() == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.isfinite(module.training_step(batch.copy(), 0))


def _campaign(methods, models=None):
    models = models or {"nq": {"family": "nequip"}, "al": {"family": "allegro"}}
    return validate_config({
        "grid": {"model": list(models), "layers": {m: [2] for m in models}, "method": list(methods)},
        "models": models,
        "methods": methods,
    })


def test_method_preset_resolves_per_family_with_schema_defaults():
    config = _campaign({"lin": {"corr": {"features": {"nequip": "edge_1o", "allegro": "edge"},
                                         "scheduler": "linear", "t_cycle": 10, "sample_edges": "sqrt"}},
                        "base": {}})
    method = MethodPreset.from_config("lin", config["methods"]["lin"])
    assert method_settings(method, "allegro")["corr_settings"] == {
        "selection": "edge", "scheduler": "linear", "c_min": 0.0, "c_max": 0.1, "t_cycle": 10,
        "sample_edges": "sqrt",
    }
    base = MethodPreset.from_config("base", config["methods"]["base"])
    assert base.is_baseline and base.applies_to("allegro")
    assert method_settings(base, "nequip") == {"corr_settings": None, "sam_settings": None,
                                               "decomposition_settings": None, "active_settings": None}
    only = MethodPreset.from_config("o", _campaign({"o": {"corr": {"features": {"allegro": "edge"}}}})
                                    ["methods"]["o"])
    assert not only.applies_to("nequip") and only.applies_to("allegro")
    with pytest.raises(ConfigError, match="unknown key 'c_maxx'"):
        _campaign({"x": {"corr": {"features": {"nequip": "edge"}, "c_maxx": 1}}})
    with pytest.raises(ConfigError, match="c_min 0.5 exceeds c_max 0.1"):
        _campaign({"x": {"corr": {"features": {"nequip": "edge"}, "c_min": 0.5}}})


def test_unknown_checkpoint_is_refused_before_training():
    with pytest.raises(ConfigError, match="training.checkpoint.*'middle'.*best"):
        validate_config({"grid": {"model": ["n"], "layers": {"n": [2]}, "method": ["b"]},
                         "models": {"n": {"family": "nequip"}}, "methods": {"b": {}},
                         "training": {"checkpoint": "middle"}})


def test_hydra_overrides_quote_and_map_keys(tmp_path, hfo2_material):
    config = _campaign({"b": {}}, {"nq": {"family": "nequip", "r_max": 6.0, "l_max": 2, "num_features": 32,
                                          "overrides": {"radial_mlp_width": 64}}})
    training = partial(TrainingSettings, {"max_epochs": 7, "batch_size": 2, "lr": 0.01,
                                              "dtype": "float64", "device": "cuda"})
    overrides = hydra_overrides(
        ModelPreset.from_config("nq", config["models"]["nq"]), 4, 3,
        corr_settings("nequip", "edge_0e+1o", sample_edges="sqrt"), training, hfo2_material.species,
        {"train": tmp_path / "a.xyz", "valid": tmp_path / "b.xyz", "test": tmp_path / "c.xyz"},
        tmp_path / "run",
    )
    assert "num_layers=4" in overrides and "seed=3" in overrides and "family='nequip'" in overrides
    assert "cutoff_radius=6.0" in overrides and "l_max=2" in overrides
    assert ("corr={selection:'edge_0e+1o',scheduler:'cosine',c_min:0.0,c_max:0.1,t_cycle:100,"
            "sample_edges:'sqrt'}") in overrides
    assert "radial_mlp_width=64" in overrides and "accelerator=gpu" in overrides
    assert "model_type_names=['Hf','O']" in overrides  # the material's species, in type order
    assert "model_dtype='float64'" in overrides and "loss_coeffs.forces=1.0" in overrides
    assert "max_epochs=7" in overrides and "lr=0.01" in overrides
    assert f"train_file='{(tmp_path / 'a.xyz').resolve()}'" in overrides
    # every mandatory key of the template is set: no ??? is left for nequip-train to reject
    import yaml
    from gnnff_stability.train.hydra import template_dir

    with template_dir() as templates:
        template = yaml.safe_load((templates / "nequip.yaml").read_text())
    # training.checkpoint picks the packaged file; it is not a Hydra key
    assert not any(o.startswith("checkpoint") for o in overrides)
    mandatory = {k for k, v in template.items() if v == "???"}
    mandatory |= {f"loss_coeffs.{k}" for k, v in template["loss_coeffs"].items() if v == "???"}
    given = {o.split("=", 1)[0] for o in overrides}
    assert mandatory <= given, mandatory - given


@pytest.mark.parametrize("family", ["nequip", "allegro", "gemnet"])
def test_training_config_of_another_material_carries_its_species_in_type_order(family, tmp_path):
    """A template composed with the overrides for species [Si, C]: the model's type names, the data's type
    map and statistics, and a ZBL prior's species are Si then C, and nothing names Hf or O."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gnnff_stability.train.hydra import method_overrides, template_dir

    config = _campaign({"zbl": {"prior": "zbl"}}, {"m": {"family": family}})
    species = ("Si", "C")
    overrides = hydra_overrides(ModelPreset.from_config("m", config["models"]["m"]), 2, 0, None,
                                partial(TrainingSettings, {}), species,
                                {"train": tmp_path / "a.xyz", "valid": tmp_path / "b.xyz",
                                 "test": tmp_path / "c.xyz"}, tmp_path / "run")
    assert "model_type_names=['Si','C']" in overrides
    if family != "gemnet":  # a prior needs nequip's energy-sum layout
        (run,) = training_runs(expand_grid(config)).to_dict("records")
        (zbl,) = method_overrides(run, species)
        assert "chemical_species:['Si','C']" in zbl
        overrides = overrides + [zbl]
    with template_dir() as templates, initialize_config_dir(config_dir=str(templates), version_base=None):
        cfg = compose(config_name=family, overrides=[o for o in overrides if not o.startswith("hydra.")])
    assert list(cfg.model_type_names) == list(cfg.chemical_species) == ["Si", "C"]
    assert list(cfg.data.transforms[0].model_type_names) == ["Si", "C"]
    assert list(cfg.data.stats_manager.type_names) == ["Si", "C"]
    assert list(cfg.training_module.model.type_names) == ["Si", "C"]
    if family != "gemnet":
        assert list(cfg.training_module.model.pair_potential.chemical_species) == ["Si", "C"]
    text = OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=False))
    assert "Hf" not in text
    with pytest.raises(ValueError, match="species"):
        hydra_overrides(ModelPreset.from_config("m", config["models"]["m"]), 2, 0, None,
                        partial(TrainingSettings, {}), "SiC", {"train": "a", "valid": "b", "test": "c"}, tmp_path)


def test_gemnet_overrides_name_keys_of_its_template(tmp_path, hfo2_material):
    import yaml
    from gnnff_stability.train.hydra import template_dir

    config = _campaign({"b": {}}, {"gn": {"family": "gemnet", "r_max": 6.0, "emb_size_atom": 128,
                                          "emb_size_edge": 128, "emb_size_trip": 64, "emb_size_rbf": 16,
                                          "emb_size_cbf": 16, "emb_size_bil_trip": 64, "num_radial": 6,
                                          "num_spherical": 7, "max_neighbors": None}})
    overrides = hydra_overrides(ModelPreset.from_config("gn", config["models"]["gn"]), 4, 0,
                                corr_settings("gemnet", "edge"), partial(TrainingSettings, {}), hfo2_material.species,
                                {"train": "a", "valid": "b", "test": "c"}, tmp_path)
    assert "num_layers=4" in overrides and "cutoff_radius=6.0" in overrides
    assert "emb_size_bil_trip=64" in overrides and "max_neighbors=null" in overrides
    with template_dir() as templates:
        template = yaml.safe_load((templates / "gemnet.yaml").read_text())
    assert template["training_module"]["model"]["num_blocks"] == "${num_layers}"
    for item in overrides:
        key = item.split("=", 1)[0]
        if "." not in key and key != "hydra":
            assert key in template, f"override {key} has no key in the gemnet template"
    with pytest.raises(ConfigError, match="do not apply to family 'gemnet'"):
        _campaign({"b": {}}, {"gn": {"family": "gemnet", "l_max": 2}})


def test_epoch_metrics_merge_resumed_runs(tmp_path):
    first = tmp_path / "csv" / "version_0"
    second = tmp_path / "csv" / "version_1"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    pd.DataFrame({
        "epoch": [0, 0, 0, 1, 1, 1],
        "step": [3, 3, 3, 7, 7, 7],
        "train_loss_step/corr": [0.5, None, None, 0.4, None, None],
        "train_loss_epoch/corr": [None, 0.45, None, None, 0.40, None],
        "val0_epoch/weighted_sum": [None, None, 1.0, None, None, 0.9],
    }).to_csv(first / "metrics.csv", index=False)
    # the killed run had logged epoch 1; the resumed run redoes it and goes on
    pd.DataFrame({
        "epoch": [1, 1, 2, 2],
        "step": [7, 7, 11, 11],
        "train_loss_epoch/corr": [0.39, None, 0.35, None],
        "val0_epoch/weighted_sum": [None, 0.88, None, 0.8],
    }).to_csv(second / "metrics.csv", index=False)
    merged = collect_epoch_metrics(tmp_path)
    assert list(merged.columns) == ["epoch", "train_loss_epoch/corr", "val0_epoch/weighted_sum"]
    assert merged["epoch"].tolist() == [0, 1, 2]
    assert merged["train_loss_epoch/corr"].tolist() == [0.45, 0.39, 0.35]
    assert merged["val0_epoch/weighted_sum"].tolist() == [1.0, 0.88, 0.8]


def test_stabiliser_presets_become_hydra_overrides(tmp_path, hfo2_material):
    """Each stabiliser key of a method preset turns into its template overrides; defaults from the schema."""
    from gnnff_stability.train.hydra import DECOMPOSED_BUILDER, SAM_MODULE, method_overrides

    species = hfo2_material.species

    config = _campaign({
        "base": {}, "c": {"corr": {"features": {"nequip": "edge_1o"}}},
        "sam": {"sam": {"rho": 0.1}}, "zbl": {"prior": "zbl"},
        "dec": {"decomposition": {"body": {"r_cut": 2.5}}},
        "mix": {"corr": {"features": {"nequip": "edge_1o"}}, "sam": {}, "prior": "zbl"},
    })
    methods = {name: MethodPreset.from_config(name, block) for name, block in config["methods"].items()}
    # the run-table rows of the NequIP model: what the trainer gets
    rows = {r["method"]: r for r in training_runs(expand_grid(config)).to_dict("records") if r["model"] == "nq"}
    assert method_overrides(rows["base"], species) == [] == method_overrides(rows["c"], species)
    assert methods["mix"].stabilisers == ("corr", "sam", "zbl") and methods["base"].is_baseline
    assert rows["mix"]["stabilisers"] == "corr+sam+zbl"
    assert method_overrides(rows["sam"], species) == [f"training_module._target_={SAM_MODULE}",
                                             "++training_module.sam={adaptive:false,eps:1e-12,eta:0.01,rho:0.1}"]
    (zbl,) = method_overrides(rows["zbl"], species)
    assert zbl.startswith("++training_module.model.pair_potential={_target_:'nequip.nn.pair_potential.ZBL'")
    assert "chemical_species:['Hf','O']" in zbl
    dec = method_overrides(rows["dec"], species, tmp_path / "body_terms.pt")
    assert dec == [f"training_module.model._target_={DECOMPOSED_BUILDER}",
                   "++training_module.model.gnn_builder=${model_builder}",
                   f"++training_module.model.prefit='{tmp_path / 'body_terms.pt'}'",
                   "++training_module.model.freeze=true"]  # the schema's default; body: in the pre-fit file
    assert config["methods"]["dec"]["decomposition"]["prefit"] == {
        "epochs": 200, "batch_size": 8, "lr": 0.005, "lr_final_ratio": 0.01, "dtype": "float64", "rdf_r_max": 5.0}
    assert config["methods"]["dec"]["decomposition"]["body"] == {
        "r_cut": 2.5, "r_cut_three_body": None, "three_body": True, "nn3_types": "neighbour_pair",
        "hidden": [16, 16], "polynomial_cutoff_p": 6}
    with pytest.raises(ValueError, match="'dec' uses the decomposition"):
        method_overrides(rows["dec"], species)
    # a prior or the decomposition needs nequip's energy-sum layout: not GemNet-T
    assert methods["zbl"].applies_to("allegro") and not methods["zbl"].applies_to("gemnet")
    assert not methods["dec"].applies_to("gemnet") and methods["sam"].applies_to("gemnet")
