"""Which tensor is "the feature of layer l", and forward hooks that capture it.

A *feature selection* names, per model family, the per-layer tensor the correlation loss acts on and
the columns (irreps) it uses. The module paths below were read off models built by
``nequip.model.NequIPGNNModel`` (nequip 0.19.1) and ``allegro.model.AllegroModel`` (allegro 0.8.3);
they are found by name, so the same code works on a model from a checkpoint, from a
``nequip-package`` file (whose classes are package-imported copies) and inside a training module.

NequIP (``<graph model>.model.func.layer{i}_convnet``, ``i = 0 .. num_layers-1``)
    ``edge``
        The per-edge message before the neighbour sum: the output of
        ``layer{i}_convnet.conv.tp_scatter.tp`` (e3nn ``TensorProduct`` of the source-node features
        and the edge spherical harmonics, weighted by the radial MLP), ``[n_edges, irreps_mid.dim]``,
        all irreps columns. Its irreps are ``conv.tp_scatter.irreps_mid`` (sorted, so equal irreps are
        adjacent columns).
    ``edge_0e`` / ``edge_1o``
        The ``0e`` (invariant scalar) / ``1o`` (polar vector) columns of that message. ``1o`` irreps
        enter as their three Cartesian components, flattened (``mul * 3`` columns): that is the
        tensor the model computes, no extra norm (whose gradient is singular at 0) is inserted, and
        two channels carrying the same vector give ``|pearson| = 1`` on every component pair.
    ``edge_0e+1o``
        Two column groups per layer, ``0e`` and ``1o``, each with its own correlation matrix; the
        two losses are summed (the paper's "1o+0e" ablation read as the sum of the two penalties,
        not one matrix over the union of columns, which would also penalise 0e-1o cross terms).
    ``node``
        The node features after the layer (``NODE_FEATURES`` in the output of
        ``layer{i}_convnet``, after the gate), ``[n_atoms, dim]``, all columns; rows are atoms.

    nequip 0.19's own builder makes the last interaction layer output scalars only, so its message
    has only ``0e`` irreps: ``edge_1o`` covers layers ``0 .. num_layers-2`` (a 2-layer model has one
    ``1o`` layer), and ``edge_0e+1o`` has only its ``0e`` group in the last layer. The paper's layout
    (:func:`gnnff_stability.models.nequip_layout.HiddenIrrepsNequIPModel`) keeps the hidden irreps
    in every layer, so there ``edge_1o`` covers every layer. A layer with no selected columns is
    skipped; "the last layer" of a selection is the last layer that has columns.

Allegro (``<graph model>.model.func.allegro``, an ``Allegro_Module``)
    ``edge``
        The scalar edge latent of every layer: the output of ``allegro.latents[i]`` sliced to its
        first ``num_scalar_features`` columns ``[n_edges, num_scalar_features]`` (the densely
        accumulated latent that the edge energy readout sees).
    ``edge+env``
        The full ``allegro.latents[i]`` output: the scalar latent plus, for every layer but the last,
        the environment-embedding weights that layer produces for the next layer's tensor product
        (``[n_edges, num_scalar_features + env_weight_numel]``). The last layer has no env part, so
        its columns equal ``edge``. The tensor track (``allegro.tps[i]``) is not included.

GemNet-T (``<graph model>.model.func.gemnet``, a ``GemNetTEnergy``)
    ``edge``
        The directed edge embedding after interaction block ``i``: the output of
        ``gemnet.blocks.{i}.edge_features`` (an identity module), ``[n_edges, emb_size_edge]``, all
        columns, rows in the order of nequip's ``edge_index``. With ``max_neighbors`` active the
        tensor also has rows for the edges beyond each atom's kept neighbours (within ``r_max``, but
        outside the model: zero radial bases, no triplets); :meth:`FeatureRecorder.samples` draws
        only kept edges (``GemNetTEnergy.kept_edges``), so those rows never enter the correlation.

Which selections a family has, and the module paths they hook, are the family's record in
:data:`gnnff_stability.families.FAMILIES` (``selections``, ``hook_path``). The selection a baseline
model's Corr value is measured on is resolved in the run table (the record's ``default_corr_selection``). The model family is never guessed from the module
tree: the caller passes the family resolved in the run table.
"""

from __future__ import annotations

import logging
import re

import torch

from .corr import (
    DEFAULT_EPS,
    SampleSize,
    correlation_loss,
    sample_per_structure,
    sampled_correlation_loss,
    tap_gather,
)
from gnnff_stability.families import FAMILIES

from .taps import LayerTap, as_group, group_sizes, irreps_columns  # noqa: F401 (group_sizes re-exported)

__all__ = [
    "FeatureRecorder",
    "LayerTap",
    "build_taps",
    "group_sizes",
]

logger = logging.getLogger(__name__)

_NODE_FEATURES = "node_features"
_EDGE_INDEX = "edge_index"
_BATCH = "batch"
_NUM_NODES = "num_atoms"


def _identity(output: object) -> torch.Tensor:
    return output  # type: ignore[return-value]


def _node_features(output: object) -> torch.Tensor:
    return output[_NODE_FEATURES]  # type: ignore[index]


def build_taps(model: torch.nn.Module, family: str, selection: str) -> list[LayerTap]:
    """Find the per-layer tensors of a feature selection in a built model.

    Parameters
    ----------
    model
        A NequIP or Allegro graph model (``GraphModel``, or any module containing one).
    family
        Its family (``"nequip"`` or ``"allegro"``), as resolved in the run table.
    selection
        One of the family's ``selections`` (:data:`gnnff_stability.families.FAMILIES`).

    Returns
    -------
    list[LayerTap]
        One tap per layer that has selected columns, ordered by layer.

    Raises
    ------
    ValueError
        If the selection does not exist for the family or selects no column in any layer.
    """
    if family not in FAMILIES:
        raise ValueError(f"no feature selections for model family {family!r}; known: {', '.join(FAMILIES)}")
    record = FAMILIES[family]
    if selection not in record.selections:
        raise ValueError(
            f"feature selection {selection!r} is not defined for {family}; "
            f"allowed: {', '.join(record.selections)}"
        )
    hook_path = re.compile(record.hook_path)
    hooked = sorted(
        ((int(m.group(1)), name, module) for name, module in model.named_modules()
         if (m := hook_path.search(name))),
        key=lambda t: (t[0], t[1]),
    )
    taps: list[LayerTap] = []
    if family == "nequip":
        for index, name, layer in hooked:
            if selection == "node":
                irreps = layer.irreps_out[_NODE_FEATURES]
                taps.append(
                    LayerTap(index, name, layer, "node", [slice(None)], ["all"], irreps.dim,
                             _node_features)
                )
                continue
            tp_scatter = layer.conv.tp_scatter
            irreps = tp_scatter.irreps_mid
            wanted = {
                "edge": [("all", None)],
                "edge_0e": [("0e", "0e")],
                "edge_1o": [("1o", "1o")],
                "edge_0e+1o": [("0e", "0e"), ("1o", "1o")],
            }[selection]
            groups, names = [], []
            for label, ir in wanted:
                columns = irreps_columns(irreps, ir)
                if len(columns) >= 2:
                    groups.append(as_group(columns))
                    names.append(label)
            if groups:
                taps.append(
                    LayerTap(index, f"{name}.conv.tp_scatter.tp", tp_scatter.tp, "edge", groups,
                             names, irreps.dim, _identity)
                )
    elif family == "gemnet":
        for index, name, module in hooked:
            taps.append(LayerTap(index, name, module, "edge", [slice(None)], ["all"],
                                 int(module.num_features), _identity))
    else:
        modules = dict(model.named_modules())
        for index, name, latent in hooked:
            # the Allegro module holding the latents: it knows the scalar width
            parent = name.removesuffix(f"latents.{index}").rstrip(".")
            n_scalar = int(modules[parent].num_scalar_features)
            width = int(latent.dims[-1])  # ScalarMLPFunction: [in, hidden..., out]
            if selection == "edge":
                group, label = slice(0, n_scalar), "scalar"
            else:
                group, label = slice(None), "scalar+env"
            taps.append(LayerTap(index, name, latent, "edge", [group], [label], width, _identity))
    if not taps:
        raise ValueError(
            f"feature selection {selection!r} selects no columns in any layer of this {family} model "
            "(e.g. edge_1o needs l_max >= 1 and at least 2 layers)"
        )
    return taps


class FeatureRecorder:
    """Forward hooks that capture each selected layer tensor, or only its sampled rows.

    Use :meth:`attach` / :meth:`remove` around training (a hooked model cannot be pickled by
    ``nequip-package``) and record only inside the training step::

        samples = recorder.samples(batch, 1024, generator)   # before the forward pass
        with recorder.recording(samples):
            output = model(batch)
        loss, per_layer, _ = recorder.losses(samples)

    With ``samples`` the hooks gather the sampled rows right where the tensor is produced
    (:func:`gnnff_stability.train.corr.tap_gather`: the layer's output passes through unchanged, and the
    backward adds the sample's gradient with one ``index_add``); without, they keep a reference to
    the whole tensor (nothing is copied). Outside :meth:`recording` the hooks do nothing.

    Parameters
    ----------
    model
        Graph model to hook.
    family
        Its family (``"nequip"`` or ``"allegro"``).
    selection
        Feature selection name (one of the family's ``selections``).
    """

    def __init__(self, model: torch.nn.Module, family: str, selection: str):
        self.family = family
        self.selection = selection
        self.taps = build_taps(model, family, selection)
        self.outputs: list[torch.Tensor | None] = [None] * len(self.taps)
        self.row_counts: list[int | None] = [None] * len(self.taps)
        self.gathered: list[bool] = [False] * len(self.taps)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._enabled = False
        self._flat: dict[str, torch.Tensor] = {}
        self._kept_edges = _kept_edges_source(model) if family == "gemnet" else None

    @property
    def layers(self) -> list[int]:
        """Layer index of every tap."""
        return [tap.layer for tap in self.taps]

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self) -> FeatureRecorder:
        """Register the forward hooks (idempotent)."""
        if self._handles:
            return self
        for slot, tap in enumerate(self.taps):
            self._handles.append(tap.module.register_forward_hook(self._make_hook(slot, tap)))
        return self

    def remove(self) -> None:
        """Remove the hooks and drop captured tensors."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.clear()

    def clear(self) -> None:
        self.outputs = [None] * len(self.taps)
        self.row_counts = [None] * len(self.taps)
        self.gathered = [False] * len(self.taps)

    def _make_hook(self, slot: int, tap: LayerTap):
        def hook(module, args, output):
            if not self._enabled:
                return None
            tensor = tap.extract(output)
            self.row_counts[slot] = tensor.shape[0]
            flat = self._flat.get(tap.rows)
            if flat is None:
                self.outputs[slot] = tensor
                return None
            full, sampled = tap_gather(tensor, flat, tap.span)
            self.outputs[slot] = sampled
            self.gathered[slot] = True
            if isinstance(output, dict):
                output[_NODE_FEATURES] = full
                return output
            return full

        return hook

    class _Recording:
        def __init__(self, recorder: FeatureRecorder, samples):
            self.recorder = recorder
            self.samples = samples

        def __enter__(self):
            recorder = self.recorder
            recorder.clear()
            recorder._flat = (
                {kind: index.reshape(-1) for kind, (index, _) in self.samples.items()}
                if self.samples is not None
                else {}
            )
            recorder._enabled = True
            return recorder

        def __exit__(self, *exc):
            self.recorder._enabled = False
            self.recorder._flat = {}
            return False

    def recording(self, samples: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None):
        """Context manager: capture during the forward passes inside it.

        Parameters
        ----------
        samples
            From :meth:`samples`: gather only these rows in the hooks. ``None`` keeps the whole
            tensors (then pass the samples to :meth:`losses`, which gathers).
        """
        return FeatureRecorder._Recording(self, samples)

    def captured(self) -> list[torch.Tensor]:
        """The captured tensors, one per tap (raises if a forward pass did not reach a tap)."""
        missing = [self.taps[i].path for i, out in enumerate(self.outputs) if out is None]
        if missing:
            raise RuntimeError(f"no tensor was captured at {missing}; did the forward pass run?")
        return self.outputs  # type: ignore[return-value]

    def samples(
        self,
        data: dict[str, torch.Tensor],
        sample: SampleSize,
        generator: torch.Generator | None = None,
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per-structure row samples for the row kinds of the taps (``"edge"`` and/or ``"node"``).

        Parameters
        ----------
        data
            The batch (an ``AtomicDataDict``): ``edge_index`` ``[2, n_edges]``, optionally
            ``batch`` ``[n_atoms]`` and ``num_atoms`` ``[n_structures]``.
        sample, generator
            See :func:`gnnff_stability.train.corr.sample_per_structure`.
        """
        n_atoms = _num_atoms(data)
        node_segment = data.get(_BATCH)
        if node_segment is None:
            node_segment = torch.zeros(n_atoms, dtype=torch.long, device=data[_EDGE_INDEX].device)
        n_structures = data[_NUM_NODES].shape[0] if _NUM_NODES in data else 1
        out = {}
        kinds = {tap.rows for tap in self.taps}
        if "edge" in kinds:
            # an edge belongs to the structure of its centre atom
            edge_segment = node_segment[data[_EDGE_INDEX][0]]
            kept = None if self._kept_edges is None else self._kept_edges(data)
            if kept is None:
                out["edge"] = sample_per_structure(edge_segment, n_structures, sample, generator)
            else:
                out["edge"] = _sample_kept(edge_segment, kept, n_structures, sample, generator)
        if "node" in kinds:
            out["node"] = sample_per_structure(node_segment, n_structures, sample, generator)
        return out

    def losses(
        self,
        samples: dict[str, tuple[torch.Tensor, torch.Tensor]],
        eps: float = DEFAULT_EPS,
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Correlation loss of the captured tensors on the given samples.

        Parameters
        ----------
        samples
            The samples given to :meth:`recording` (or any samples, if it kept whole tensors).
        eps
            See :func:`gnnff_stability.train.corr.pearson_matrix`.
        dtype
            Compute the correlations in this dtype (e.g. ``torch.float64`` for evaluation).

        Returns
        -------
        total
            Scalar: sum over layers (and groups) of the mean off-diagonal ``|pearson|``.
        per_layer
            ``[n_taps]`` loss of every tap (sum over its groups).
        per_structure
            For every tap, ``[n_structures, n_groups]`` per-structure values.
        """
        per_layer, per_structure = [], []
        for tap, rows, gathered in zip(self.taps, self.captured(), self.gathered):
            index, mask = samples[tap.rows]
            if dtype is not None:
                rows = rows.to(dtype)
            if gathered:
                loss, stacked = sampled_correlation_loss(rows, mask, tap.span_groups, eps)
            else:
                loss, stacked = correlation_loss(rows, index, mask, tap.groups, eps)
            per_layer.append(loss)
            per_structure.append(stacked)
        per_layer_t = torch.stack(per_layer)
        return per_layer_t.sum(), per_layer_t, per_structure

    def check_rows(self, data: dict[str, torch.Tensor]) -> None:
        """Raise if a hooked tensor's row count differs from the batch's edges / atoms."""
        n_edges = data[_EDGE_INDEX].shape[1]
        n_atoms = _num_atoms(data)
        for tap, count in zip(self.taps, self.row_counts):
            expected = n_edges if tap.rows == "edge" else n_atoms
            if count is None:
                raise RuntimeError(f"no tensor was captured at {tap.path}; did the forward pass run?")
            if count != expected:
                raise RuntimeError(
                    f"{tap.path} produced {count} rows but the batch has {expected} "
                    f"{tap.rows}s; the model prunes or reorders rows (per-edge-type cutoffs?), which "
                    "the correlation loss does not support"
                )


def _kept_edges_source(model: torch.nn.Module):
    """The ``kept_edges`` method of the model's ``GemNetTEnergy`` (found by name, like the taps)."""
    for name, module in model.named_modules():
        if re.search(r"(?:^|\.)gemnet$", name) and callable(getattr(module, "kept_edges", None)):
            return module.kept_edges
    logger.warning("this GemNet-T model has no kept_edges(); the correlation is sampled over every "
                   "edge within r_max, including those beyond max_neighbors")
    return None


def _sample_kept(segment: torch.Tensor, kept: torch.Tensor, n_structures: int, sample: SampleSize,
                 generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sample_per_structure` over the kept rows only; indices are into all rows."""
    kept_rows = torch.nonzero(kept, as_tuple=True)[0]
    index, mask = sample_per_structure(segment[kept_rows], n_structures, sample, generator)
    if kept_rows.numel() == 0:
        return index, mask & False
    return kept_rows[index], mask


def _num_atoms(data: dict[str, torch.Tensor]) -> int:
    return data["pos"].shape[0] if "pos" in data else data["atom_types"].shape[0]
