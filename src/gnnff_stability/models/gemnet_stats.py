"""Training-data statistics of GemNet-T: the neighbour count its sums are normalised by.

GemNet-T divides its neighbour and triplet sums by ``sqrt(avg_num_neighbors)``. With
``max_neighbors`` active, an atom sums over its kept neighbours only (:func:`.gemnet_graph.
nearest_neighbour_mask`), not over every edge within ``r_max`` that nequip's ``num_neighbors_mean``
counts (at 6 Å in HfO2 about a third more). :func:`GemNetStatisticsManager` adds
``kept_num_neighbors_mean``, the mean number of kept neighbours per atom, to nequip's common
statistics; the GemNet-T template interpolates it as ``${training_data_stats:kept_num_neighbors_mean}``.
"""

from __future__ import annotations

from typing import Any

import torch
from nequip.data import AtomicDataDict, BaseModifier, DataStatisticsManager, Mean
from nequip.data import CommonDataStatisticsManager as _common
from nequip.nn import with_edge_vectors_

from .gemnet_graph import nearest_neighbour_mask, reverse_edges

__all__ = ["GemNetStatisticsManager", "KeptNumNeighbors", "kept_neighbour_counts"]


def kept_neighbour_counts(data: AtomicDataDict.Type, max_neighbors: int | None) -> torch.Tensor:
    """Neighbours each atom sums over in GemNet-T: ``[n_atoms]`` long (``data`` is not modified).

    Parameters
    ----------
    data
        A nequip graph (one structure or a batch) with its neighbour list.
    max_neighbors
        The model's ``max_neighbors``; ``None`` counts every edge within ``r_max``.
    """
    edge_index = data[AtomicDataDict.EDGE_INDEX_KEY]
    n_atoms = data[AtomicDataDict.POSITIONS_KEY].shape[0]
    keep = None
    if max_neighbors is not None:
        with torch.no_grad():
            graph = with_edge_vectors_(dict(data), with_lengths=True)
            length = graph[AtomicDataDict.EDGE_LENGTH_KEY].view(-1)
            swap = reverse_edges(edge_index, data.get(AtomicDataDict.EDGE_CELL_SHIFT_KEY), n_atoms)
            keep = nearest_neighbour_mask(edge_index, length, swap, n_atoms, int(max_neighbors))
    centre = edge_index[0] if keep is None else edge_index[0][keep]
    return torch.bincount(centre, minlength=n_atoms)


class KeptNumNeighbors(BaseModifier):
    """nequip statistics field: :func:`kept_neighbour_counts` per atom (a node field)."""

    def __init__(self, max_neighbors: int | None) -> None:
        super().__init__(AtomicDataDict.EDGE_INDEX_KEY)
        self.max_neighbors = max_neighbors

    def _func(self, data: AtomicDataDict.Type) -> torch.Tensor:
        return kept_neighbour_counts(data, self.max_neighbors)

    def __str__(self) -> str:
        return "kept_num_neighbors"

    @property
    def type(self) -> str:
        return "node"


def GemNetStatisticsManager(max_neighbors: int | None, type_names: list[str] | None = None,
                            dataloader_kwargs: dict[str, Any] | None = None) -> DataStatisticsManager:
    """nequip's ``CommonDataStatisticsManager`` plus ``kept_num_neighbors_mean``.

    Parameters
    ----------
    max_neighbors
        The model's ``max_neighbors`` (``None``: the statistic equals ``num_neighbors_mean``).
    type_names, dataloader_kwargs
        As nequip's ``CommonDataStatisticsManager``.
    """
    common = _common(dataloader_kwargs=dataloader_kwargs, type_names=type_names)
    # nequip's own list, read back from its manager (a per-type metric is held as one copy per type)
    metrics = [
        {"name": name, "field": field, "metric": metric[0] if per_type else metric,
         "per_type": per_type}
        for name, field, metric, per_type in zip(common.names, common.fields, common, common.per_type)
    ]
    metrics.append({"name": "kept_num_neighbors_mean", "field": KeptNumNeighbors(max_neighbors),
                    "metric": Mean()})
    return DataStatisticsManager(metrics, dataloader_kwargs, type_names)
