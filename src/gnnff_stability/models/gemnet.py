"""GemNet-T, the triplets-only GemNet (Gasteiger, Becker, Günnemann, NeurIPS 2021), as a nequip model.

:func:`GemNetTModel` is a nequip model builder (``@model_builder``: nequip owns the seed, the dtype and
the ``GraphModel`` wrapper), selected in a Hydra template with
``_target_: gnnff_stability.models.gemnet.GemNetTModel``. It reads nequip's ``AtomicDataDict``
(positions, atom types, nequip's neighbour list with its cell shifts) and is composed of::

    GraphModel
    └─ model: ForceStressOutput                (forces = -dE/dr, stress, from nequip)
       └─ func: SequentialGraphNetwork
          ├─ gemnet: GemNetTEnergy             (per-atom energy, this module)
          │  ├─ blocks.{i}: InteractionBlock   (i = 0 .. num_blocks-1)
          │  │  └─ edge_features: EdgeFeatures (identity; its output is the edge embedding after block i)
          │  └─ out_blocks.{i}: OutputBlock    (i = 0 .. num_blocks)
          ├─ per_type_energy_scale_shift: PerTypeScaleShift
          └─ total_energy_sum: AtomwiseReduce

The correlation loss's "edge features of layer l" are the directed edge embeddings after interaction
block ``l``: the output of ``model.func.gemnet.blocks.{l}.edge_features`` (relative to the
``GraphModel``), ``[n_edges, emb_size_edge]``, rows in the order of nequip's ``edge_index``.

The modules live in :mod:`.gemnet_blocks` (bases in :mod:`.gemnet_basis`, triplets in
:mod:`.gemnet_graph`); ``nequip-package`` carries them inside the package, through this project's
``nequip.extension`` entry point. What follows the paper and fairchem's ``gemnet_t`` and what is this
project's choice is written out in ``docs/gemnet.md``. Units: Å, eV.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import entry_points

from nequip.data import AtomicDataDict
from nequip.model import model_builder
from nequip.nn import AtomwiseReduce, ForceStressOutput, PerTypeScaleShift, SequentialGraphNetwork

from .gemnet_blocks import GemNetTEnergy

__all__ = ["GemNetTModel"]

logger = logging.getLogger(__name__)


#: The ``nequip.extension`` entry point (pyproject.toml) that makes nequip-package intern this code.
_EXTENSION_MODULE = "gnnff_stability.models"


def _warn_if_not_packageable() -> None:
    if not any(ep.value == _EXTENSION_MODULE for ep in entry_points(group="nequip.extension")):
        logger.warning(
            "%s is not registered as a nequip extension (entry point group 'nequip.extension'), so "
            "nequip-package cannot package GemNet-T models; reinstall this project (pip install -e .)",
            _EXTENSION_MODULE,
        )


def _check_arguments(r_max, num_blocks, sizes: dict[str, int], max_neighbors, avg_num_neighbors,
                     output_init, envelope_exponent) -> None:
    if not (isinstance(r_max, (int, float)) and r_max > 0):
        raise ValueError(f"r_max must be a positive number of Å, got {r_max!r}")
    if int(num_blocks) < 1:
        raise ValueError(f"num_blocks must be >= 1, got {num_blocks!r}")
    for name, value in sizes.items():
        minimum = 0 if name in ("num_before_skip", "num_after_skip", "num_concat", "num_atom") else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if max_neighbors is not None and (not isinstance(max_neighbors, int) or max_neighbors < 1):
        raise ValueError(f"max_neighbors must be a positive integer or null, got {max_neighbors!r}")
    if avg_num_neighbors is not None and not (
        isinstance(avg_num_neighbors, (int, float)) and avg_num_neighbors > 0
    ):
        raise ValueError(
            f"avg_num_neighbors must be a positive number or null, got {avg_num_neighbors!r} "
            "(per-type values are not supported by GemNet-T)"
        )
    if output_init not in ("HeOrthogonal", "zeros"):
        raise ValueError(f"output_init must be 'HeOrthogonal' or 'zeros', got {output_init!r}")
    if int(envelope_exponent) < 1:
        raise ValueError(f"envelope_exponent must be >= 1, got {envelope_exponent!r}")


@model_builder
def GemNetTModel(
    r_max: float,
    type_names: Sequence[str],
    *,
    emb_size_atom: int,
    emb_size_edge: int,
    emb_size_trip: int,
    emb_size_rbf: int,
    emb_size_cbf: int,
    emb_size_bil_trip: int,
    num_blocks: int = 4,
    num_spherical: int = 7,
    num_radial: int = 6,
    num_before_skip: int = 1,
    num_after_skip: int = 2,
    num_concat: int = 1,
    num_atom: int = 3,
    envelope_exponent: int = 5,
    max_neighbors: int | None = 50,
    avg_num_neighbors: float | None = None,
    output_init: str = "HeOrthogonal",
    per_type_energy_scales: float | dict[str, float] | None = None,
    per_type_energy_shifts: float | dict[str, float] | None = None,
    per_type_energy_scales_trainable: bool = False,
    per_type_energy_shifts_trainable: bool = False,
    do_derivatives: bool = True,
):
    """GemNet-T (triplets only) predicting energies, forces (``-dE/dr``) and stresses.

    The widths a campaign sets (``models.<name>.emb_size_*``) have no default here: the schema owns
    them (the paper's Table A7 values are in ``config/paper.yaml``). The other defaults are fairchem's
    ``gemnet_t``.

    Args:
        seed (int): seed of the initialisation (consumed by nequip's ``model_builder``)
        model_dtype (str): ``float32`` or ``float64`` (consumed by ``model_builder``)
        r_max (float): cutoff radius, Å, of the neighbour list and of both radial bases (paper: 6.0)
        type_names (Sequence[str]): atom type names
        num_blocks (int): interaction blocks, the grid's ``layers`` (paper: 1 and 4; default ``4``)
        emb_size_atom, emb_size_edge (int): atom and directed-edge embedding widths (paper: 128)
        emb_size_trip (int): down-projected edge width in the triplet interaction (paper: 64)
        emb_size_rbf, emb_size_cbf (int): projected radial / circular basis widths (paper: 16)
        emb_size_bil_trip (int): output width of the bilinear layer (paper: 64)
        num_spherical (int): degrees ``l = 0 .. num_spherical-1`` of the circular basis (default ``7``)
        num_radial (int): spherical Bessel functions (default ``6``)
        num_before_skip, num_after_skip (int): residual layers before / after the edge skip (``1``/``2``)
        num_concat (int): residual layers after the edge update from atoms (default ``1``)
        num_atom (int): residual layers of every atom update and output MLP (default ``3``)
        envelope_exponent (int): ``p`` of the polynomial envelope (default ``5``)
        max_neighbors (int): neighbours kept per atom, nearest first, ties within 0.01 Å kept and made
            symmetric; ``None`` keeps all edges within ``r_max`` (default ``50``)
        avg_num_neighbors (float): neighbour and triplet sums are divided by its square root; use
            nequip's ``${training_data_stats:num_neighbors_mean}`` (default ``None``: no division)
        output_init (str): ``HeOrthogonal`` or ``zeros``, the last layer of every output block
        per_type_energy_scales, per_type_energy_shifts: nequip's per-type scale and shift of the
            per-atom energy (eV; e.g. the force RMS and the mean per-atom energy of the data)
        per_type_energy_scales_trainable, per_type_energy_shifts_trainable (bool): default ``False``
        do_derivatives (bool): compute forces and stresses with autograd (default ``True``)
    """
    sizes = dict(
        emb_size_atom=emb_size_atom, emb_size_edge=emb_size_edge, emb_size_trip=emb_size_trip,
        emb_size_rbf=emb_size_rbf, emb_size_cbf=emb_size_cbf, emb_size_bil_trip=emb_size_bil_trip,
        num_spherical=num_spherical, num_radial=num_radial, num_before_skip=num_before_skip,
        num_after_skip=num_after_skip, num_concat=num_concat, num_atom=num_atom,
    )
    _check_arguments(r_max, num_blocks, sizes, max_neighbors, avg_num_neighbors, output_init,
                     envelope_exponent)
    _warn_if_not_packageable()
    type_names = list(type_names)
    gemnet = GemNetTEnergy(
        type_names=type_names, r_max=float(r_max), num_blocks=int(num_blocks), **sizes,
        envelope_exponent=int(envelope_exponent), max_neighbors=max_neighbors,
        avg_num_neighbors=None if avg_num_neighbors is None else float(avg_num_neighbors),
        output_init=output_init,
    )
    scale_shift = PerTypeScaleShift(
        type_names=type_names,
        field=AtomicDataDict.PER_ATOM_ENERGY_KEY,
        out_field=AtomicDataDict.PER_ATOM_ENERGY_KEY,
        scales=per_type_energy_scales,
        shifts=per_type_energy_shifts,
        scales_trainable=per_type_energy_scales_trainable,
        shifts_trainable=per_type_energy_shifts_trainable,
        irreps_in=gemnet.irreps_out,
    )
    total = AtomwiseReduce(
        irreps_in=scale_shift.irreps_out,
        reduce="sum",
        field=AtomicDataDict.PER_ATOM_ENERGY_KEY,
        out_field=AtomicDataDict.TOTAL_ENERGY_KEY,
    )
    energy_model = SequentialGraphNetwork(
        {"gemnet": gemnet, "per_type_energy_scale_shift": scale_shift, "total_energy_sum": total}
    )
    return ForceStressOutput(energy_model, do_derivatives)
