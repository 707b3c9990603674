"""GemNet-T graph operations (gnnff_stability.models.gemnet_graph): reverse edges, triplets across
periodic boundaries, the neighbour limit, against hand-counted cases and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from ase import Atoms
from gemnet_builders import graph, rattled_cell

from gnnff_stability.models.gemnet_graph import (
    build_triplets,
    nearest_neighbour_mask,
    reverse_edges,
    triplet_list,
)


def _edges(atoms: Atoms, r_max: float):
    data = graph(atoms, r_max)
    return data["edge_index"], data["edge_cell_shift"].round().long()


def _edge_names(edge_index, shift):
    return [(int(i), int(j), tuple(int(v) for v in s)) for i, j, s in zip(*edge_index, shift)]


def test_triplets_of_a_chain_across_the_boundary():
    """Two atoms, 1.2 Å apart along a 3 Å periodic axis, r_max 2 Å: each atom has one neighbour on
    each side (one edge crosses the boundary), so 4 edges and 4 triplets, all straight angles with
    b and c the same atom in two images."""
    atoms = Atoms("HfO", positions=[[0.3, 5, 5], [1.5, 5, 5]], cell=[3.0, 10.0, 10.0], pbc=True)
    edge_index, shift = _edges(atoms, 2.0)
    names = _edge_names(edge_index, shift)
    assert sorted(names) == sorted([(0, 1, (0, 0, 0)), (0, 1, (-1, 0, 0)),
                                    (1, 0, (0, 0, 0)), (1, 0, (1, 0, 0))])
    swap = reverse_edges(edge_index, shift, 2)
    for e, (i, j, s) in enumerate(names):
        assert names[int(swap[e])] == (j, i, tuple(-v for v in s))
    pad_index, pad_mask = build_triplets(edge_index, 2)
    ba, ca = triplet_list(pad_index, pad_mask)
    pairs = sorted((names[int(b)], names[int(c)]) for b, c in zip(ba, ca))
    assert pairs == sorted([
        ((0, 1, (-1, 0, 0)), (0, 1, (0, 0, 0))), ((0, 1, (0, 0, 0)), (0, 1, (-1, 0, 0))),
        ((1, 0, (1, 0, 0)), (1, 0, (0, 0, 0))), ((1, 0, (0, 0, 0)), (1, 0, (1, 0, 0))),
    ])


def test_triplets_of_a_simple_cubic_atom_and_a_molecule():
    """One atom in a 3 Å cubic cell, r_max 3.5 Å: its 6 images are its neighbours (6 self-image edges),
    each edge pairs with the 5 others: 30 triplets. A bent three-atom molecule without cell, r_max
    1.2 Å: only the apex has two neighbours, so 2 triplets."""
    atoms = Atoms("Hf", positions=[[0.2, 0.4, 0.1]], cell=np.eye(3) * 3.0, pbc=True)
    edge_index, shift = _edges(atoms, 3.5)
    assert edge_index.shape[1] == 6 and (edge_index == 0).all()
    pad_index, pad_mask = build_triplets(edge_index, 1)
    assert pad_index.shape == (6, 5) and int(pad_mask.sum()) == 30
    ba, ca = triplet_list(pad_index, pad_mask)
    assert len(set(zip(ba.tolist(), ca.tolist()))) == 30 and bool((ba != ca).all())
    # the straight angle: every edge has exactly one partner with the opposite shift
    opposite = [(shift[int(b)] == -shift[int(c)]).all().item() for b, c in zip(ba, ca)]
    assert sum(opposite) == 6

    molecule = Atoms("OHfO", positions=[[1, 0, 0], [0, 0, 0], [0, 1, 0]], pbc=False)
    edge_index = graph(molecule, 1.2)["edge_index"]
    assert edge_index.shape[1] == 4
    ba, ca = triplet_list(*build_triplets(edge_index, 3))
    assert len(ba) == 2
    assert all(int(edge_index[0, b]) == int(edge_index[0, c]) == 1 for b, c in zip(ba, ca))


@pytest.mark.parametrize("max_neighbors", [None, 9])
def test_triplets_match_a_brute_force_enumeration(max_neighbors):
    """Padded triplets against every ordered pair of distinct (kept) edges with a common centre."""
    atoms = rattled_cell(seed=4)
    edge_index, shift = _edges(atoms, 4.0)
    data = graph(atoms, 4.0)
    lengths = (data["pos"][edge_index[1]] - data["pos"][edge_index[0]]
               + shift.to(data["pos"].dtype) @ data["cell"].view(3, 3).to(data["pos"].dtype)).norm(dim=1)
    swap = reverse_edges(edge_index, shift, len(atoms))
    mask = (nearest_neighbour_mask(edge_index, lengths, swap, len(atoms), max_neighbors)
            if max_neighbors else None)
    kept = torch.ones(edge_index.shape[1], dtype=torch.bool) if mask is None else mask
    if max_neighbors:
        assert 0 < int(kept.sum()) < edge_index.shape[1]
    ba, ca = triplet_list(*build_triplets(edge_index, len(atoms), mask))
    expected = {
        (b, c) for b, c in itertools.permutations(range(edge_index.shape[1]), 2)
        if kept[b] and kept[c] and edge_index[0, b] == edge_index[0, c]
    }
    got = list(zip(ba.tolist(), ca.tolist()))
    assert len(got) == len(expected) and set(got) == expected


def test_neighbour_limit_keeps_whole_shells():
    """Simple cubic, a = 3 Å, r_max 4.5 Å: 6 neighbours at 3 Å, 12 at 4.24 Å. A limit of 3 or 6 keeps
    the first shell (ties are kept), 7 keeps both shells, 18 or more needs no mask."""
    atoms = Atoms("Hf", positions=[[0, 0, 0]], cell=np.eye(3) * 3.0, pbc=True)
    edge_index, shift = _edges(atoms, 4.5)
    lengths = (shift.double() * 3.0).norm(dim=1)
    assert edge_index.shape[1] == 18
    swap = reverse_edges(edge_index, shift, 1)
    for limit, n_kept in [(3, 6), (6, 6), (7, 18)]:
        mask = nearest_neighbour_mask(edge_index, lengths, swap, 1, limit)
        assert int(mask.sum()) == n_kept
        assert bool((lengths[mask] < 3.01).all()) or n_kept == 18
    assert nearest_neighbour_mask(edge_index, lengths, swap, 1, 18) is None


def test_non_symmetric_neighbour_list_is_refused():
    edge_index = torch.tensor([[0, 1, 0], [1, 0, 2]])
    with pytest.raises(ValueError, match="1 of 3 edges have no reverse edge"):
        reverse_edges(edge_index, None, 3)
