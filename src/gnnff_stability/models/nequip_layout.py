"""NequIP with the hidden irreps in every interaction layer: the layout of the paper's NequIP.

nequip 0.19 (:func:`nequip.model.NequIPGNNModel`) makes the **last** interaction layer output scalars
only (``FullNequIPGNNModel`` refuses anything else), so its tensor product makes no ``1o`` messages.
NequIP before 0.7, which the paper trained, kept the hidden irreps in every interaction layer and
mapped to scalars only afterwards, with two linear maps (``conv_to_output_hidden`` to
``num_features // 2`` scalars, then ``output_hidden_to_scalar`` to one per-atom energy).
:func:`HiddenIrrepsNequIPModel` builds that layout from nequip's own modules, in the order and under
the names of ``FullNequIPGNNModel``::

    type_embed (NodeTypeEmbed) → spharm (SphericalHarmonicEdgeAttrs) → edge_norm
    (EdgeLengthNormalizer) → bessel_encode (BesselEdgeLengthEncoding) → factor (ApplyFactor)
    → layer{i}_convnet (ConvNetLayer, i = 0 .. num_layers-1, all with the hidden irreps)
    → conv_to_output_hidden (AtomwiseLinear to readout_hidden_features x 0e)
    → per_atom_energy_readout (ScalarMLP, a linear map to one scalar)
    → per_type_energy_scale_shift (PerTypeScaleShift) → total_energy_sum → ForceStressOutput

so the feature hooks (:mod:`gnnff_stability.train.features`) find ``layer{i}_convnet.conv.tp_scatter.tp``
in every layer and ``edge_1o`` covers all of them. The pre-0.7 self-connection is kept in every
layer, the first included (``convnet_sc``); nequip 0.19 drops it in the first layer to pin the
energy of an isolated atom to its shift.

In this layout the last layer's non-scalar outputs reach neither the energy nor the forces (the map
to scalars reads only the ``0e`` channels), as in the paper's NequIP; its ``1o`` messages share the
radial MLP and the input features with the ``0e`` messages that do.

Select it in the NequIP template (``train/templates/nequip.yaml``) with ``model_builder:
gnnff_stability.models.nequip_layout.HiddenIrrepsNequIPModel`` (the template's
``training_module.model._target_``). A packaged model holds only nequip and e3nn modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from e3nn import o3
from nequip.data import AtomicDataDict
from nequip.model import model_builder
from nequip.model.energy_modules import _append_energy_modules
from nequip.nn import (
    ApplyFactor,
    AtomwiseLinear,
    ConvNetLayer,
    ForceStressOutput,
    GraphModel,
    PerTypeScaleShift,
    ScalarMLP,
    SequentialGraphNetwork,
)
from nequip.nn.embedding import (
    BesselEdgeLengthEncoding,
    EdgeLengthNormalizer,
    NodeTypeEmbed,
    PolynomialCutoff,
    SphericalHarmonicEdgeAttrs,
)

__all__ = ["HiddenIrrepsNequIPModel", "hidden_irreps"]


def hidden_irreps(l_max: int, parity: bool, num_features: int | Sequence[int]) -> o3.Irreps:
    """Hidden feature irreps of every interaction layer (as ``NequIPGNNModel`` spells them).

    Parameters
    ----------
    l_max
        Largest rotation order.
    parity
        ``True``: both parities of every ``l`` (``0e, 0o, 1e, 1o, ...``); ``False``: only the parity
        of the spherical harmonics (``0e, 1o, 2e, ...``).
    num_features
        Multiplicity of every irrep, or one per ``l`` (``l_max + 1`` values).
    """
    if int(l_max) < 0:
        raise ValueError(f"l_max must be >= 0, got {l_max}")
    muls = [int(num_features)] * (l_max + 1) if isinstance(num_features, int) else list(num_features)
    if len(muls) != l_max + 1 or min(muls) < 1:
        raise ValueError(
            f"num_features must be a positive int or {l_max + 1} positive ints (one per l), "
            f"got {num_features!r}"
        )
    return o3.Irreps([
        (muls[ell], (ell, p))
        for ell in range(l_max + 1)
        for p in ((1, -1) if parity else ((1,) if ell % 2 == 0 else (-1,)))
    ])


@model_builder
def HiddenIrrepsNequIPModel(
    r_max: float,
    type_names: Sequence[str],
    *,
    num_features: int | Sequence[int],
    num_layers: int = 4,
    l_max: int = 1,
    parity: bool = True,
    type_embed_num_features: int | None = None,
    radial_mlp_depth: int = 2,
    radial_mlp_width: int = 64,
    readout_hidden_features: int | None = None,
    num_bessels: int = 8,
    bessel_trainable: bool = False,
    polynomial_cutoff_p: int = 6,
    avg_num_neighbors: float | dict[str, float] | None = None,
    per_type_energy_scales: float | dict[str, float] | None = None,
    per_type_energy_shifts: float | dict[str, float] | None = None,
    per_type_energy_scales_trainable: bool = False,
    per_type_energy_shifts_trainable: bool = False,
    pair_potential: dict | None = None,
    do_derivatives: bool = True,
    convnet_sc: bool = True,
    convnet_resnet: bool = False,
    convnet_nonlinearity_scalars: dict[str, str] | None = None,
    convnet_nonlinearity_gates: dict[str, str] | None = None,
) -> GraphModel:
    """NequIP whose every interaction layer carries the hidden irreps (the pre-0.7 layout).

    Takes the keyword arguments of :func:`nequip.model.NequIPGNNModel` (``seed``, ``model_dtype``
    and ``type_names`` are consumed by nequip's ``@model_builder``); the defaults of the radial MLP
    are the paper's (Table A5: ``invariant_layers 2``, ``invariant_neurons 64``).

    Parameters
    ----------
    r_max
        Cutoff radius, Å.
    type_names
        Atom type names (e.g. ``["Hf", "O"]``).
    num_layers
        Interaction layers, all with the hidden irreps (>= 1).
    l_max, parity, num_features
        Hidden irreps, see :func:`hidden_irreps` (``num_features`` has no default: the schema's
        ``models.<name>.num_features`` owns it).
    type_embed_num_features
        Width of the type embedding (default: the ``0e`` multiplicity).
    radial_mlp_depth, radial_mlp_width
        Hidden layers and their width of each layer's radial MLP (old ``invariant_layers`` and
        ``invariant_neurons``).
    readout_hidden_features
        Scalars of the map to scalars after the last layer (old ``conv_to_output_hidden``; default
        ``max(1, num_features_0e // 2)``, as in NequIP before 0.7).
    num_bessels, bessel_trainable, polynomial_cutoff_p
        Radial basis (old ``num_basis``, ``BesselBasis_trainable``, ``PolynomialCutoff_p``).
    avg_num_neighbors, per_type_energy_scales, per_type_energy_shifts
        Normalisation of the neighbour sum, per-type energy scale (eV) and shift (eV/atom).
    per_type_energy_scales_trainable, per_type_energy_shifts_trainable, pair_potential, do_derivatives
        As in ``NequIPGNNModel``.
    convnet_sc
        Self-connection in every interaction layer (old ``use_sc``).
    convnet_resnet
        Residual update where a layer's input and output irreps agree (old ``resnet``).
    convnet_nonlinearity_scalars, convnet_nonlinearity_gates
        Gate nonlinearities by parity (default ``{"e": "silu", "o": "tanh"}``).

    Returns
    -------
    nequip.nn.GraphModel
        Energy, forces and (with a cell) stress.
    """
    if int(num_layers) < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if not all(str(t).isalnum() for t in type_names):
        raise ValueError(f"type_names must be alphanumeric, got {list(type_names)}")
    if radial_mlp_depth < 0 or radial_mlp_width < 1:
        raise ValueError(
            f"radial_mlp_depth must be >= 0 and radial_mlp_width >= 1, got {radial_mlp_depth} "
            f"and {radial_mlp_width}"
        )
    nonlin_scalars = convnet_nonlinearity_scalars or {"e": "silu", "o": "tanh"}
    nonlin_gates = convnet_nonlinearity_gates or {"e": "silu", "o": "tanh"}
    irreps_hidden = hidden_irreps(l_max, parity, num_features)
    n_scalars = irreps_hidden.count("0e")
    if readout_hidden_features is None:
        readout_hidden_features = max(1, n_scalars // 2)
    if int(readout_hidden_features) < 1:
        raise ValueError(f"readout_hidden_features must be >= 1, got {readout_hidden_features}")

    type_embed = NodeTypeEmbed(
        type_names=type_names,
        num_features=type_embed_num_features if type_embed_num_features is not None else n_scalars,
    )
    spharm = SphericalHarmonicEdgeAttrs(
        irreps_edge_sh=repr(o3.Irreps.spherical_harmonics(lmax=l_max)),
        irreps_in=type_embed.irreps_out,
    )
    edge_norm = EdgeLengthNormalizer(r_max=r_max, type_names=type_names, irreps_in=spharm.irreps_out)
    bessel_encode = BesselEdgeLengthEncoding(
        num_bessels=num_bessels,
        trainable=bessel_trainable,
        cutoff=PolynomialCutoff(polynomial_cutoff_p),
        edge_invariant_field=AtomicDataDict.EDGE_EMBEDDING_KEY,
        irreps_in=edge_norm.irreps_out,
    )
    # the Bessel normalisation of NequIP's own builder (2π / r_max²)
    factor = ApplyFactor(
        in_field=AtomicDataDict.EDGE_EMBEDDING_KEY,
        factor=(2 * math.pi) / (r_max * r_max),
        irreps_in=bessel_encode.irreps_out,
    )
    modules = {
        "type_embed": type_embed,
        "spharm": spharm,
        "edge_norm": edge_norm,
        "bessel_encode": bessel_encode,
        "factor": factor,
    }
    irreps = factor.irreps_out
    for i in range(int(num_layers)):
        layer = ConvNetLayer(
            irreps_in=irreps,
            feature_irreps_hidden=repr(irreps_hidden),
            convolution_kwargs={
                "radial_mlp_depth": radial_mlp_depth,
                "radial_mlp_width": radial_mlp_width,
                "use_sc": convnet_sc,
                "is_first_layer": i == 0,
                "avg_num_neighbors": avg_num_neighbors,
                "type_names": type_names,
            },
            resnet=convnet_resnet,
            nonlinearity_type="gate",
            nonlinearity_scalars=nonlin_scalars,
            nonlinearity_gates=nonlin_gates,
        )
        irreps = layer.irreps_out
        modules[f"layer{i}_convnet"] = layer
    to_scalars = AtomwiseLinear(
        irreps_in=irreps, irreps_out=repr(o3.Irreps([(int(readout_hidden_features), (0, 1))]))
    )
    readout = ScalarMLP(
        output_dim=1,
        hidden_layers_depth=0,
        bias=False,
        forward_weight_init=True,
        field=AtomicDataDict.NODE_FEATURES_KEY,
        out_field=AtomicDataDict.PER_ATOM_ENERGY_KEY,
        irreps_in=to_scalars.irreps_out,
    )
    scale_shift = PerTypeScaleShift(
        type_names=type_names,
        field=AtomicDataDict.PER_ATOM_ENERGY_KEY,
        out_field=AtomicDataDict.PER_ATOM_ENERGY_KEY,
        scales=per_type_energy_scales,
        shifts=per_type_energy_shifts,
        scales_trainable=per_type_energy_scales_trainable,
        shifts_trainable=per_type_energy_shifts_trainable,
        irreps_in=readout.irreps_out,
    )
    modules.update({
        "conv_to_output_hidden": to_scalars,
        "per_atom_energy_readout": readout,
        "per_type_energy_scale_shift": scale_shift,
    })
    energy_model = _append_energy_modules(
        model=SequentialGraphNetwork(modules), type_names=type_names, pair_potential=pair_potential
    )
    return ForceStressOutput(energy_model, do_derivatives)
