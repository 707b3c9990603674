"""The modules of GemNet-T (Gasteiger, Becker, Günnemann, NeurIPS 2021) on a nequip graph.

:class:`GemNetTEnergy` maps nequip's ``AtomicDataDict`` to the per-atom energy; its interaction blocks
(:class:`InteractionBlock`) and output blocks (:class:`OutputBlock`) follow the paper's GemNet-T with
its efficient bilinear layer. The model builder is :func:`gnnff_stability.models.gemnet.GemNetTModel`.
These modules import only torch and nequip's ``data`` and ``nn`` packages, so that ``nequip-package``
can carry them inside a packaged model.

Shapes: ``N`` atoms, ``E`` directed edges, ``K`` triplets per edge at most (padded), ``S``
``num_spherical``, ``R`` ``num_radial``. Units: Å; embeddings are dimensionless.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from nequip.data import AtomicDataDict
from nequip.nn import GraphModuleMixin, with_edge_vectors_

from .gemnet_basis import Dense, ResidualLayer, SphericalBesselBasis, circular_basis, he_orthogonal_init
from .gemnet_graph import build_triplets, nearest_neighbour_mask, reverse_edges

__all__ = [
    "AtomUpdate",
    "EdgeEmbedding",
    "EdgeFeatures",
    "GemNetTEnergy",
    "InteractionBlock",
    "OutputBlock",
    "TripletInteraction",
]

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)


class EdgeFeatures(torch.nn.Module):
    """Identity: marks the edge embedding after an interaction block, for forward hooks.

    Parameters
    ----------
    num_features
        Width of the edge embedding (``emb_size_edge``), recorded for the hooks.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        return m


class EdgeEmbedding(torch.nn.Module):
    """``m_ca = act(W [h_c, h_a, x_ca])``: directed edge embedding from both atoms and an edge input.

    ``W`` is one He-orthogonal ``[edge_out, 2 atom_features + edge_in]`` matrix; it is applied as
    ``(h W_c^T)[c] + (h W_a^T)[a] + x W_x^T``, which multiplies atom rows instead of edge rows.
    """

    def __init__(self, atom_features: int, edge_in: int, edge_out: int) -> None:
        super().__init__()
        self.atom_features = int(atom_features)
        self.dense = Dense(2 * atom_features + edge_in, edge_out, activation=True)

    def forward(self, h: torch.Tensor, x: torch.Tensor, idx_s: torch.Tensor, idx_t: torch.Tensor):
        weight = self.dense.linear.weight
        n = self.atom_features
        h_s = h @ weight[:, :n].t()
        h_t = h @ weight[:, n : 2 * n].t()
        y = h_s.index_select(0, idx_s) + h_t.index_select(0, idx_t) + x @ weight[:, 2 * n :].t()
        return self.dense.activation(y)


class AtomUpdate(torch.nn.Module):
    """Sum of the edge embeddings (times a radial filter) onto their centre atom, then an MLP.

    Parameters
    ----------
    emb_size_atom, emb_size_edge, emb_size_rbf
        Widths.
    num_atom
        Residual layers after the first dense layer.
    sum_norm
        Factor applied to the neighbour sum (``1 / sqrt(avg_num_neighbors)``).
    """

    def __init__(self, emb_size_atom: int, emb_size_edge: int, emb_size_rbf: int, num_atom: int,
                 sum_norm: float) -> None:
        super().__init__()
        self.sum_norm = float(sum_norm)
        self.dense_rbf = Dense(emb_size_rbf, emb_size_edge)
        self.layers = torch.nn.Sequential(
            Dense(emb_size_edge, emb_size_atom, activation=True),
            *[ResidualLayer(emb_size_atom) for _ in range(num_atom)],
        )

    def forward(self, n_atoms: int, m: torch.Tensor, rbf: torch.Tensor, idx_t: torch.Tensor):
        """``m`` ``[E, edge]``, ``rbf`` ``[E, rbf]``, ``idx_t`` ``[E]``. Returns ``[n_atoms, atom]``."""
        x = m * self.dense_rbf(rbf)
        out = x.new_zeros(n_atoms, x.shape[1]).index_add(0, idx_t, x)
        return self.layers(out * self.sum_norm)


class OutputBlock(AtomUpdate):
    """An :class:`AtomUpdate` followed by a dense layer to one per-atom energy ``[n_atoms, 1]``."""

    def __init__(self, emb_size_atom: int, emb_size_edge: int, emb_size_rbf: int, num_atom: int,
                 sum_norm: float, output_init: str) -> None:
        super().__init__(emb_size_atom, emb_size_edge, emb_size_rbf, num_atom, sum_norm)
        self.out_energy = Dense(emb_size_atom, 1)
        if output_init == "zeros":
            torch.nn.init.zeros_(self.out_energy.linear.weight)

    def forward(self, n_atoms: int, m: torch.Tensor, rbf: torch.Tensor, idx_t: torch.Tensor):
        return self.out_energy(super().forward(n_atoms, m, rbf, idx_t))


class TripletInteraction(torch.nn.Module):
    """Triplet message passing with GemNet's efficient bilinear layer.

    For every edge ``ca``: ``sum_b [W_bil (rbf_W1(d_ca) Y(angle_cab)) (x_ba)]`` with ``x_ba`` the
    down-projected, radially filtered embedding of the edge ``ba``, then projected up for ``ca`` and,
    through the reverse-edge index, for ``ac``.
    """

    def __init__(self, emb_size_edge: int, emb_size_trip: int, emb_size_bil_trip: int,
                 emb_size_rbf: int, emb_size_cbf: int, sum_norm: float) -> None:
        super().__init__()
        self.sum_norm = float(sum_norm)
        self.dense_ba = Dense(emb_size_edge, emb_size_edge, activation=True)
        self.mlp_rbf = Dense(emb_size_rbf, emb_size_edge)
        self.down_projection = Dense(emb_size_edge, emb_size_trip, activation=True)
        # bilinear weight [emb_size_cbf, emb_size_trip, emb_size_bil_trip]
        self.bilinear = torch.nn.Parameter(torch.empty(emb_size_cbf, emb_size_trip, emb_size_bil_trip))
        he_orthogonal_init(self.bilinear)
        self.up_projection_ca = Dense(emb_size_bil_trip, emb_size_edge, activation=True)
        self.up_projection_ac = Dense(emb_size_bil_trip, emb_size_edge, activation=True)

    def forward(self, m, rbf3, rbf_w1, sph, pad_index, swap):
        """``m`` ``[E, edge]``, ``rbf3`` ``[E, rbf]``, ``rbf_w1`` ``[E, cbf, S]``, ``sph`` ``[E, S, K]``,
        ``pad_index`` ``[E, K]``, ``swap`` ``[E]``. Returns ``[E, edge]``."""
        n_edges, width = pad_index.shape
        x_ba = self.down_projection(self.dense_ba(m) * self.mlp_rbf(rbf3))  # [E, trip]
        table = torch.cat([x_ba, x_ba.new_zeros(1, x_ba.shape[1])])
        x_pad = table.index_select(0, pad_index.reshape(-1)).view(n_edges, width, x_ba.shape[1])
        sum_k = torch.bmm(sph, x_pad)  # [E, S, trip]: sum over triplets of Y_l(angle) x_ba
        z = torch.bmm(rbf_w1, sum_k)  # [E, cbf, trip]
        x = z.reshape(n_edges, z.shape[1] * z.shape[2]) @ self.bilinear.flatten(0, 1)
        x = x * self.sum_norm
        x_ca = self.up_projection_ca(x)
        x_ac = self.up_projection_ac(x)
        return (x_ca + x_ac[swap]) * _INV_SQRT_2


class InteractionBlock(torch.nn.Module):
    """One GemNet-T interaction block: triplet interaction, edge update with skips, atom update,
    edge update from the new atom embeddings. Returns ``(h [N, atom], m [E, edge])``."""

    def __init__(self, emb_size_atom: int, emb_size_edge: int, emb_size_trip: int, emb_size_rbf: int,
                 emb_size_cbf: int, emb_size_bil_trip: int, num_before_skip: int,
                 num_after_skip: int, num_concat: int, num_atom: int, sum_norm: float) -> None:
        super().__init__()
        self.dense_ca = Dense(emb_size_edge, emb_size_edge, activation=True)
        self.trip_interaction = TripletInteraction(
            emb_size_edge, emb_size_trip, emb_size_bil_trip, emb_size_rbf, emb_size_cbf, sum_norm
        )
        self.layers_before_skip = torch.nn.Sequential(
            *[ResidualLayer(emb_size_edge) for _ in range(num_before_skip)])
        self.layers_after_skip = torch.nn.Sequential(
            *[ResidualLayer(emb_size_edge) for _ in range(num_after_skip)])
        self.atom_update = AtomUpdate(emb_size_atom, emb_size_edge, emb_size_rbf, num_atom, sum_norm)
        self.concat_layer = EdgeEmbedding(emb_size_atom, emb_size_edge, emb_size_edge)
        self.residual_m = torch.nn.Sequential(*[ResidualLayer(emb_size_edge) for _ in range(num_concat)])
        self.edge_features = EdgeFeatures(emb_size_edge)

    def forward(self, h, m, rbf3, rbf_w1, sph, pad_index, swap, rbf_h, idx_s, idx_t):
        x = self.dense_ca(m) + self.trip_interaction(m, rbf3, rbf_w1, sph, pad_index, swap)
        x = self.layers_before_skip(x * _INV_SQRT_2)
        m = self.layers_after_skip((m + x) * _INV_SQRT_2)
        h = (h + self.atom_update(h.shape[0], m, rbf_h, idx_t)) * _INV_SQRT_2
        m2 = self.residual_m(self.concat_layer(h, m, idx_s, idx_t))
        m = self.edge_features((m + m2) * _INV_SQRT_2)
        return h, m


class GemNetTEnergy(GraphModuleMixin, torch.nn.Module):
    """GemNet-T from a nequip graph to the per-atom energy (``AtomicDataDict.PER_ATOM_ENERGY_KEY``,
    ``[n_atoms, 1]``): the sum of the ``num_blocks + 1`` output blocks. See :func:`GemNetTModel`."""

    def __init__(self, type_names: Sequence[str], r_max: float, num_blocks: int, emb_size_atom: int,
                 emb_size_edge: int, emb_size_trip: int, emb_size_rbf: int, emb_size_cbf: int,
                 emb_size_bil_trip: int, num_spherical: int, num_radial: int, num_before_skip: int,
                 num_after_skip: int, num_concat: int, num_atom: int, envelope_exponent: int,
                 max_neighbors: int | None, avg_num_neighbors: float | None, output_init: str,
                 irreps_in=None) -> None:
        super().__init__()
        self._init_irreps(irreps_in=irreps_in,
                          irreps_out={AtomicDataDict.PER_ATOM_ENERGY_KEY: "0e"})
        self.num_spherical = int(num_spherical)
        self.max_neighbors = None if max_neighbors is None else int(max_neighbors)
        self.model_dtype = torch.get_default_dtype()
        sum_norm = 1.0 / math.sqrt(avg_num_neighbors) if avg_num_neighbors else 1.0
        self.radial_basis = SphericalBesselBasis(num_radial, r_max, envelope_exponent)
        self.cbf_radial_basis = SphericalBesselBasis(num_radial, r_max, envelope_exponent)
        # projections of the bases shared by all blocks
        self.mlp_rbf3 = Dense(num_radial, emb_size_rbf)
        self.mlp_cbf3 = torch.nn.Parameter(torch.empty(num_spherical, num_radial, emb_size_cbf))
        he_orthogonal_init(self.mlp_cbf3)
        self.mlp_rbf_h = Dense(num_radial, emb_size_rbf)
        self.mlp_rbf_out = Dense(num_radial, emb_size_rbf)
        self.atom_emb = torch.nn.Embedding(len(type_names), emb_size_atom)
        torch.nn.init.uniform_(self.atom_emb.weight, -math.sqrt(3.0), math.sqrt(3.0))
        self.edge_emb = EdgeEmbedding(emb_size_atom, num_radial, emb_size_edge)
        self.blocks = torch.nn.ModuleList([
            InteractionBlock(emb_size_atom, emb_size_edge, emb_size_trip, emb_size_rbf, emb_size_cbf,
                             emb_size_bil_trip, num_before_skip, num_after_skip, num_concat,
                             num_atom, sum_norm)
            for _ in range(num_blocks)
        ])
        self.out_blocks = torch.nn.ModuleList([
            OutputBlock(emb_size_atom, emb_size_edge, emb_size_rbf, num_atom, sum_norm, output_init)
            for _ in range(num_blocks + 1)
        ])

    def _kept(self, edge_index: torch.Tensor, length: torch.Tensor, swap: torch.Tensor,
              n_atoms: int) -> torch.Tensor | None:
        if self.max_neighbors is None:
            return None
        return nearest_neighbour_mask(edge_index, length, swap, n_atoms, self.max_neighbors)

    def kept_edges(self, data: AtomicDataDict.Type) -> torch.Tensor | None:
        """Edges of ``data`` that take part in the model: ``[n_edges]`` bool, or ``None`` (all).

        With ``max_neighbors`` an edge beyond an atom's kept neighbours still has a row in every edge
        tensor (its embedding is computed, but its radial bases are zero and it has no triplets, so it
        adds nothing to the energy). This is the mask :meth:`forward` uses; ``data`` is not modified.
        """
        with torch.no_grad():
            data = with_edge_vectors_(dict(data), with_lengths=True)
            edge_index = data[AtomicDataDict.EDGE_INDEX_KEY]
            n_atoms = data[AtomicDataDict.ATOM_TYPE_KEY].view(-1).shape[0]
            length = data[AtomicDataDict.EDGE_LENGTH_KEY].view(-1).to(self.model_dtype)
            swap = reverse_edges(edge_index, data.get(AtomicDataDict.EDGE_CELL_SHIFT_KEY), n_atoms)
            return self._kept(edge_index, length, swap, n_atoms)

    def forward(self, data: AtomicDataDict.Type) -> AtomicDataDict.Type:
        data = with_edge_vectors_(data, with_lengths=True)
        edge_index = data[AtomicDataDict.EDGE_INDEX_KEY]
        idx_t, idx_s = edge_index[0], edge_index[1]  # t: centre a (aggregates), s: neighbour c
        atom_types = data[AtomicDataDict.ATOM_TYPE_KEY].view(-1)
        n_atoms = atom_types.shape[0]
        length = data[AtomicDataDict.EDGE_LENGTH_KEY].view(-1)
        unit = (data[AtomicDataDict.EDGE_VECTORS_KEY] / length.unsqueeze(-1)).to(self.model_dtype)
        length = length.to(self.model_dtype)

        swap = reverse_edges(edge_index, data.get(AtomicDataDict.EDGE_CELL_SHIFT_KEY), n_atoms)
        mask = self._kept(edge_index, length, swap, n_atoms)
        pad_index, pad_mask = build_triplets(edge_index, n_atoms, mask)

        rbf = self.radial_basis(length)  # [E, R]
        rad_cbf = self.cbf_radial_basis(length)  # [E, R]
        if mask is not None:  # an edge beyond the neighbour limit contributes nothing
            keep = mask.to(rbf.dtype).unsqueeze(-1)
            rbf, rad_cbf = rbf * keep, rad_cbf * keep
        unit_table = torch.cat([unit, unit.new_zeros(1, 3)])
        unit_ba = unit_table.index_select(0, pad_index.reshape(-1)).view(*pad_index.shape, 3)
        cos_cab = (unit_ba * unit.unsqueeze(1)).sum(-1)  # [E, K]
        sph = circular_basis(cos_cab, self.num_spherical) * pad_mask.unsqueeze(-1).to(unit.dtype)
        sph = sph.transpose(1, 2)  # [E, S, K]
        rbf_w1 = torch.einsum("er,src->ecs", rad_cbf, self.mlp_cbf3)  # [E, cbf, S]
        rbf3, rbf_h, rbf_out = self.mlp_rbf3(rbf), self.mlp_rbf_h(rbf), self.mlp_rbf_out(rbf)

        h = self.atom_emb(atom_types)  # [N, atom]
        m = self.edge_emb(h, rbf, idx_s, idx_t)  # [E, edge]
        energy = self.out_blocks[0](n_atoms, m, rbf_out, idx_t)
        for block, out_block in zip(self.blocks, self.out_blocks[1:]):
            h, m = block(h, m, rbf3, rbf_w1, sph, pad_index, swap, rbf_h, idx_s, idx_t)
            energy = energy + out_block(n_atoms, m, rbf_out, idx_t)
        data[AtomicDataDict.PER_ATOM_ENERGY_KEY] = energy
        return data
