"""config/paper.yaml builds the paper's models (Tables A5 and A6) through the Hydra templates.

Each model preset of the paper config is turned into the same Hydra overrides ``train_model`` passes
to ``nequip-train``, composed with the family's template, and built by nequip's own instantiation of
``training_module.model`` (the data-statistics resolvers replaced by numbers). The hyper-parameters
are read back off the built modules, and the NequIP parameter count is compared with a count worked
out here from the paper's layer shapes and the selection rules of O(3) (not from the built model).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gnnff_stability.config import load_config
from gnnff_stability.grid import model_presets
from gnnff_stability.settings import MaterialSettings, TrainingSettings
from gnnff_stability.train.hydra import hydra_overrides, template_dir

REPO = Path(__file__).resolve().parents[2]
STATS = [
    "training_module.model.avg_num_neighbors=40.0",
    "training_module.model.per_type_energy_shifts=-9.0",
    "training_module.model.per_type_energy_scales=1.0",
]


@pytest.fixture(scope="module")
def paper():
    return load_config(REPO / "config" / "paper.yaml")


def build_from_paper_config(paper, name: str, layers: int, tmp_path: Path):
    """The model `train_model` would train for preset ``name``, built in this process."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from nequip.utils.global_state import set_global_state

    preset = model_presets(paper)[name]
    files = {"train": tmp_path / "a.xyz", "valid": tmp_path / "b.xyz", "test": tmp_path / "c.xyz"}
    overrides = hydra_overrides(preset, layers, 0, None, TrainingSettings.from_config(paper["training"]),
                                MaterialSettings.from_config(paper["material"]).species, files, tmp_path / "run")
    overrides = [o for o in overrides if not o.startswith("hydra.")] + STATS
    set_global_state()
    with template_dir() as templates, initialize_config_dir(config_dir=str(templates), version_base=None):
        cfg = compose(config_name=preset.family, overrides=overrides)
    return instantiate(cfg.training_module.model, _recursive_=False)  # as nequip does


# --------------------------------------------------------------------------------------------------
# an independent count of NequIP's parameters from the layer shapes
# --------------------------------------------------------------------------------------------------
def _products(l1: int, p1: int, l2: int, p2: int):
    return [(ell, p1 * p2) for ell in range(abs(l1 - l2), l1 + l2 + 1)]


def _mul(irreps, ir):
    return sum(m for m, l, p in irreps if (l, p) == ir)


def nequip_parameter_count(num_layers, l_max, parity, features, n_types, num_bessels, mlp_depth,
                           mlp_width, readout_hidden, first_layer_sc=True):
    """Trainable parameters of a NequIP with the hidden irreps in every layer (pre-0.7 layout).

    Irreps are (multiplicity, l, parity) triples. Per layer: linear_1 (features → features), the
    radial MLP (num_bessels → depth × width → one weight per "uvu" tensor-product path, no biases),
    linear_2 (messages → gate input), the self-connection (features ⊗ the type embedding → gate input).
    The gate input holds the reachable hidden scalars, one 0e gate per gated channel and the reachable
    gated irreps. The embedding is n_types × features, the Bessel roots are trainable, and the readout
    is features_0e → readout_hidden → 1.
    """
    sh = [(1, ell, (-1) ** ell) for ell in range(l_max + 1)]
    hidden = [(features, ell, p) for ell in range(l_max + 1)
              for p in ((1, -1) if parity else ((-1) ** ell,))]
    x = [(features, 0, 1)]          # the type embedding: features x 0e
    attrs = features                # node_attrs = the type embedding (nequip 0.19)
    total = n_types * features + num_bessels
    for layer in range(num_layers):
        reachable = {ir for _, l1, p1 in x for _, l2, p2 in sh for ir in _products(l1, p1, l2, p2)}
        scalars = [(m, l, p) for m, l, p in hidden if l == 0 and (l, p) in reachable]
        gated = [(m, l, p) for m, l, p in hidden if l > 0 and (l, p) in reachable]
        gate_in = scalars + [(sum(m for m, _, _ in gated), 0, 1)] + gated
        allowed = {(l, p) for _, l, p in gate_in}
        mid = [(m1, ir) for m1, l1, p1 in x for _, l2, p2 in sh
               for ir in _products(l1, p1, l2, p2) if ir in allowed]
        weight_numel = sum(m for m, _ in mid)
        dims = [num_bessels] + [mlp_width] * mlp_depth + [weight_numel]
        total += sum(a * b for a, b in zip(dims, dims[1:]))
        irs = {(l, p) for _, l, p in x}
        total += sum(_mul(x, ir) ** 2 for ir in irs)                                  # linear_1
        mid_mul = {}
        for m, ir in mid:
            mid_mul[ir] = mid_mul.get(ir, 0) + m
        total += sum(mm * _mul(gate_in, ir) for ir, mm in mid_mul.items())            # linear_2
        if layer > 0 or first_layer_sc:
            total += sum(_mul(x, ir) * attrs * _mul(gate_in, ir) for ir in irs)       # sc
        x = scalars + gated
    return total + _mul(x, (0, 1)) * readout_hidden + readout_hidden


def test_independent_count_of_a_small_model():
    """The counter against a model small enough to count by hand (2 layers, l_max 1, 4 features).

    Layer 0 (input 4x0e): linear_1 16; messages 4x0e+4x1o, radial MLP 8·64 + 64·64 + 64·8;
    gate input 8x0e+4x1o: linear_2 4·8 + 4·4 = 48; sc 4·4·8 = 128. Layer 1 (input 4x0e+4x1o):
    linear_1 16 + 16; messages 0e⊗0e, 0e⊗1o, 1o⊗0e, 1o⊗1o → 0e, 1o, 1o, 1e → gate input
    4x0e+4x0o? no: 0o is unreachable, so scalars 4x0e, gated 4x1o+4x1e with 8 gates; paths
    (0e,0e→0e), (0e,1o→1o), (1o,0e→1o), (1o,1o→0e), (1o,1o→1e): 20 weights, radial MLP 8·64 + 64·64
    + 64·20; linear_2 0e 8·12 + 1o 8·4 + 1e 4·4 = 144; sc 4·4·12 + 4·4·4 = 256.
    Embedding 2·4, Bessel 8, readout 4·2 + 2.
    """
    by_hand = (8 + 8 + 16 + (512 + 4096 + 512) + 48 + 128
               + 32 + (512 + 4096 + 1280) + 144 + 256 + 8 + 2)
    assert nequip_parameter_count(2, 1, True, 4, 2, 8, 2, 64, 2) == by_hand


def test_paper_nequip_is_table_a5(paper, tmp_path):
    from gnnff_stability.train.features import FeatureRecorder

    model = build_from_paper_config(paper, "nequip", 4, tmp_path)
    func = model.model.func
    layers = [getattr(func, f"layer{i}_convnet") for i in range(4)]
    hidden = "32x0e+32x0o+32x1e+32x1o+32x2e+32x2o"
    # num_layers 4, l_max 2, parity true, num_features 32 in *every* layer (the pre-0.7 layout); an
    # irrep appears once a tensor product can reach it (0o needs 1e⊗1o or 2o⊗2e, from layer 2 on)
    assert [str(layer.irreps_out["node_features"]) for layer in layers] == [
        "32x0e+32x1o+32x2e", "32x0e+32x1e+32x1o+32x2e+32x2o", hidden, hidden]
    assert str(func.spharm.irreps_out["edge_attrs"]) == "1x0e+1x1o+1x2e"
    assert func.edge_norm._rmax_recip.item() == pytest.approx(1 / 6.0)            # r_max 6
    assert func.bessel_encode.bessel_weights.shape[-1] == 8                       # num_basis 8
    assert func.bessel_encode.bessel_weights.requires_grad                        # trainable
    for layer in layers:
        conv = layer.conv
        assert conv.edge_mlp.dims[1:-1] == [64, 64]          # invariant_layers 2, neurons 64
        assert conv.sc is not None and not layer.resnet      # use_sc true, resnet false
    assert str(func.conv_to_output_hidden.irreps_out["node_features"]) == "16x0e"
    # the last layer carries 1o messages: edge_1o taps all four layers
    assert FeatureRecorder(model, "nequip", "edge_1o").layers == [0, 1, 2, 3]
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n_params == nequip_parameter_count(4, 2, True, 32, 2, 8, 2, 64, 16)


def test_paper_allegro_is_table_a6(paper, tmp_path):
    model = build_from_paper_config(paper, "allegro", 3, tmp_path)
    func = model.model.func
    allegro = func.allegro
    assert allegro.num_layers == 3
    # parity o3_restricted: the tensor track holds only the irreps of the spherical harmonics
    assert str(allegro.tensor_track_allowed_irreps) == "1x0e+1x1o+1x2e"
    assert allegro.num_scalar_features == 32
    assert allegro.num_tensor_features == 16                                      # env_embed_multiplicity
    # two-body latent MLP [32, 32, 32, 32]: four linear maps, 32 wide, after the 32-wide embedding
    assert func.scalar_embed_mlp.mlp_module.dims == [32, 32, 32, 32, 32]
    # latent MLP [32]: one linear map per layer to the 32 latents (+ the next layer's env weights)
    for i, latent in enumerate(allegro.latents):
        assert len(latent.dims) == 2 and not latent.is_nonlinear
        assert latent.dims[1] == 32 + (allegro._env_weighter.weight_numel if i < 2 else 0)
    # edge energy MLP [32]: one hidden layer of 32. allegro 0.8 reads the two-body latent and the
    # latents of all three layers side by side (4 x 32 inputs) where allegro < 0.4 read the last one
    assert func.edge_readout.mlp_module.dims == [4 * 32, 32, 1]
    assert func.edge_norm._rmax_recip.item() == pytest.approx(1 / 6.0)
    assert func.radial_chemical_embed.bessel_encode.bessel_weights.shape[-1] == 8
    # parameters of the MLPs above from their shapes (no biases): 4·32·32 and 128·32 + 32
    assert sum(p.numel() for p in func.scalar_embed_mlp.parameters()) == 4 * 32 * 32
    assert sum(p.numel() for p in func.edge_readout.parameters()) == 128 * 32 + 32


def test_embedded_config_keeps_nequips_own_layout(tmp_path):
    from gnnff_stability.train.features import FeatureRecorder

    config = load_config(REPO / "config" / "config.yaml")
    model = build_from_paper_config(config, "nequip", 2, tmp_path)
    assert str(model.model.func.layer1_convnet.irreps_out["node_features"]) == "16x0e"
    assert FeatureRecorder(model, "nequip", "edge_1o").layers == [0]
