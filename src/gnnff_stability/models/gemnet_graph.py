"""Directed-edge graph operations of GemNet-T on nequip's neighbour list, vectorised in torch.

nequip's neighbour list is a full list of directed edges ``e = (a, c, S)``: ``edge_index[:, e] =
(a, c)`` with the edge vector ``r_c + S @ cell - r_a`` (``S`` = ``edge_cell_shift``, integer lattice
translations). GemNet's edge ``c -> a`` is that edge: ``a`` (``edge_index[0]``) is the atom that
aggregates, ``c`` (``edge_index[1]``) the neighbour. A *triplet* ``b -> a <- c`` is an ordered pair
of distinct edges ``(ba, ca)`` with the same centre ``a``; ``b`` and ``c`` may be the same atom in
two periodic images (the edges differ by their shifts), as in GemNet's periodic implementation.

All functions run once per force call, without Python loops over atoms or edges. Triplets are held
in a padded layout, ``[n_edges, K]`` (``K`` the largest number of triplets of an edge), which is what
GemNet's efficient bilinear layer consumes; :func:`triplet_list` flattens it for inspection.
"""

from __future__ import annotations

import torch

__all__ = ["build_triplets", "nearest_neighbour_mask", "reverse_edges", "triplet_list"]


def reverse_edges(
    edge_index: torch.Tensor, edge_cell_shift: torch.Tensor | None, num_nodes: int
) -> torch.Tensor:
    """Index of the reverse edge ``(c, a, -S)`` of every edge ``(a, c, S)``.

    Parameters
    ----------
    edge_index
        ``[2, n_edges]`` long.
    edge_cell_shift
        ``[n_edges, 3]`` integer-valued lattice shifts (any dtype), or ``None`` (no periodicity).
    num_nodes
        Number of atoms (of the whole batch).

    Returns
    -------
    torch.Tensor
        ``[n_edges]`` long, ``swap[e]`` is the reverse of ``e``.

    Raises
    ------
    ValueError
        If some edge has no reverse (the neighbour list is not a full, symmetric list).
    """
    n_edges = edge_index.shape[1]
    if n_edges == 0:
        return edge_index.new_zeros(0)
    if edge_cell_shift is None:
        shift = edge_index.new_zeros(n_edges, 3)
    else:
        shift = edge_cell_shift.round().long()
    smax = int(shift.abs().max())
    base = 2 * smax + 1
    digits = shift + smax  # every component in 0 .. base-1
    code = (digits[:, 0] * base + digits[:, 1]) * base + digits[:, 2]
    n_codes = base**3
    # the code of -S is n_codes - 1 - code (every base-`base` digit d becomes base - 1 - d)
    key = (edge_index[0] * num_nodes + edge_index[1]) * n_codes + code
    reverse_key = (edge_index[1] * num_nodes + edge_index[0]) * n_codes + (n_codes - 1 - code)
    # keys are unique; in a symmetric list the reverse keys are the same set, so the two sorted
    # orders pair every edge with its reverse
    sorted_key, perm = torch.sort(key)
    sorted_reverse, perm_reverse = torch.sort(reverse_key)
    matched = sorted_key == sorted_reverse
    if not bool(matched.all()):
        missing = int(torch.isin(reverse_key, key, invert=True).sum())
        raise ValueError(
            f"{missing} of {n_edges} edges have no reverse edge; GemNet-T needs a full, symmetric "
            "neighbour list (every (i, j, S) with its (j, i, -S)), as nequip's NeighborListTransform "
            "builds"
        )
    swap = torch.empty_like(perm)
    swap[perm_reverse] = perm
    return swap


def _group_pointers(center: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges per centre atom ``[num_nodes]`` and the start of each centre's group in sorted order."""
    count = torch.bincount(center, minlength=num_nodes)
    return count, torch.cumsum(count, 0) - count


def nearest_neighbour_mask(
    edge_index: torch.Tensor,
    lengths: torch.Tensor,
    swap: torch.Tensor,
    num_nodes: int,
    max_neighbors: int,
    tolerance: float = 0.01,
) -> torch.Tensor | None:
    """Edges kept by a ``max_neighbors`` limit: each atom's nearest neighbours, made symmetric.

    An edge of centre ``a`` is kept if it is no longer than ``a``'s ``max_neighbors``-th shortest edge
    plus ``tolerance`` (so a shell of equal distances is kept or dropped as a whole, whatever the
    rounding), or if its reverse edge is kept.

    Parameters
    ----------
    edge_index
        ``[2, n_edges]`` long.
    lengths
        ``[n_edges]`` edge lengths, Å (not differentiated).
    swap
        ``[n_edges]`` reverse edges (:func:`reverse_edges`).
    num_nodes
        Number of atoms.
    max_neighbors
        Neighbours kept per atom (GemNet-T: 50).
    tolerance
        Å, see above.

    Returns
    -------
    torch.Tensor or None
        ``[n_edges]`` bool, or ``None`` when no atom has more than ``max_neighbors`` edges.
    """
    center = edge_index[0]
    count, start = _group_pointers(center, num_nodes)
    if center.numel() == 0 or int(count.max()) <= max_neighbors:
        return None
    lengths = lengths.detach()
    by_length = torch.argsort(lengths, stable=True)
    order = by_length[torch.argsort(center[by_length], stable=True)]  # by centre, then length
    kth_pos = (start + max_neighbors - 1).clamp(max=center.numel() - 1)
    over = count > max_neighbors
    kth = torch.full((num_nodes,), float("inf"), dtype=lengths.dtype, device=lengths.device)
    kth[over] = lengths[order][kth_pos[over]]
    keep = lengths <= kth[center] + tolerance
    return keep | keep[swap]


def build_triplets(
    edge_index: torch.Tensor, num_nodes: int, edge_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triplets ``b -> a <- c`` in the padded layout of GemNet's efficient bilinear layer.

    Parameters
    ----------
    edge_index
        ``[2, n_edges]`` long; ``edge_index[0]`` is the centre ``a``.
    num_nodes
        Number of atoms.
    edge_mask
        ``[n_edges]`` bool, edges that take part (:func:`nearest_neighbour_mask`); ``None``: all.
        A masked edge has no triplets and is nobody's partner.

    Returns
    -------
    pad_index
        ``[n_edges, K]`` long: ``pad_index[ca, k]`` is the edge ``ba`` of the ``k``-th triplet of edge
        ``ca``, or ``n_edges`` in padding slots (gather from a table with one extra zero row).
    pad_mask
        ``[n_edges, K]`` bool, the real triplets.

    ``K`` is the largest number of triplets of one edge (its centre's edge count minus one).
    """
    center = edge_index[0]
    n_edges = center.numel()
    count, start = _group_pointers(center, num_nodes)
    if edge_mask is None:
        order = torch.argsort(center, stable=True)  # edges sorted by centre
        n_partners = count[center] - 1
    else:
        # edges sorted by centre, the kept ones first within each centre's group
        order = torch.argsort(center * 2 + (~edge_mask).long(), stable=True)
        kept_count = torch.zeros_like(count).index_add_(0, center, edge_mask.long())
        n_partners = torch.where(edge_mask, kept_count[center] - 1, torch.zeros_like(center))
    position = torch.empty_like(order)
    position[order] = torch.arange(n_edges, device=center.device)
    position = position - start[center]  # rank of an edge inside its centre's group
    width = int(n_partners.max()) if n_edges else 0
    k = torch.arange(width, device=center.device).unsqueeze(0)  # [1, K]
    # skip the edge itself (a kept edge ranks among the first n_partners + 1 of its group)
    slot = k + (k >= position.unsqueeze(1)).long()
    valid = k < n_partners.unsqueeze(1)
    flat = (start[center].unsqueeze(1) + slot).clamp(max=max(n_edges - 1, 0))
    partner = order[flat] if n_edges else flat
    pad_index = torch.where(valid, partner, torch.full_like(partner, n_edges))
    return pad_index, valid


def triplet_list(pad_index: torch.Tensor, pad_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The padded triplets as two flat lists ``(id3_ba, id3_ca)``, each ``[n_triplets]`` long."""
    ca = torch.arange(pad_index.shape[0], device=pad_index.device).unsqueeze(1).expand_as(pad_index)
    return pad_index[pad_mask], ca[pad_mask]
