"""The learned two- and three-body energy terms of the decomposed model (pure torch / nequip.nn).

Kept apart from the builders (:mod:`gnnff_stability.models.decomposition`) so that a model holding
:class:`BodyTermsEnergy` can be written by ``nequip-package``: this module imports only torch,
nequip's ``nn`` and ``data`` packages, the standard library and :mod:`.cutoffs` (standard library).

Every species pair ``p`` has its own two-body cutoff ``r_c[p]`` and three-body cutoff
``r_c3[p] <= r_c[p]`` (:func:`~.cutoffs.check_body`). ``E_NN2``: one MLP per unordered species pair
on ``x = r^2 / r_c[p]^2``, times the polynomial envelope ``u(r / r_c[p])`` (nequip's
``PolynomialCutoff``); half of each pair's energy on each directed edge, assigned to its centre
atom. ``E_NN3``: one MLP per NN3 type (``nn3_types``: the unordered neighbour-species pair
``{j, k}``, or the centre species with it) on ``(r_ij^2, r_ik^2, r_jk^2) / s^2`` (``s`` the
largest three-body cutoff) and ``cos theta_ijk``, times ``u(r_ij / r_c3[ij]) u(r_ik / r_c3[ik])``,
once per unordered triplet (centre ``i``, neighbours ``j != k``), assigned to the centre. Neighbours
of different species enter in type order; for two of the same species the MLP sees
``(x_ij + x_ik, (x_ij - x_ik)^2)`` in place of ``(x_ij, x_ik)``, so the term is exactly invariant to
swapping ``j`` and ``k``. The output layer of every MLP starts at zero: a term that never sees data
contributes exactly nothing. Distances in Å, energies in eV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from nequip.data import AtomicDataDict
from nequip.nn import GraphModuleMixin
from nequip.nn.embedding import PolynomialCutoff
from nequip.nn.utils import scatter, with_edge_vectors_

from .cutoffs import BODY_KEYS, check_body, nn3_types, pair_types

__all__ = ["BodyTermsEnergy", "nn3_types", "pair_types", "triplets"]

_network_types = nn3_types  # the constructor argument `nn3_types` shadows the function


def triplets(center: torch.Tensor, num_nodes: int, ordered: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs of distinct edges that share their centre atom.

    Parameters
    ----------
    center
        ``[n_edges]`` int64, the centre atom of every edge.
    num_nodes
        Number of atoms.
    ordered
        True: every unordered pair twice, as ``(e1, e2)`` and ``(e2, e1)``; False: once.

    Returns
    -------
    (e1, e2)
        ``[n_triplets]`` int64 edge indices with ``center[e1] == center[e2]`` and ``e1 != e2``.
        Index operations only.
    """
    order = torch.argsort(center, stable=True)
    counts = torch.bincount(center, minlength=num_nodes)
    starts = torch.cumsum(counts, 0) - counts  # first sorted position of each centre
    per_edge = counts[center[order]]  # group size of every sorted edge
    first = torch.repeat_interleave(torch.arange(order.numel(), device=center.device), per_edge)
    offsets = torch.cumsum(per_edge, 0) - per_edge
    within = torch.arange(first.numel(), device=center.device) - torch.repeat_interleave(offsets, per_edge)
    second = starts[center[order][first]] + within
    keep = first != second if ordered else first < second
    return order[first[keep]], order[second[keep]]


def _tracing() -> bool:
    """True under ``torch.compile`` / ``torch.export`` and under ``make_fx`` (``nequip-compile``'s tracer)."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    return torch.compiler.is_compiling() or get_proxy_mode() is not None


class _TypedMLP(torch.nn.Module):
    """One SiLU MLP per type; every row goes through the MLP of its own type.

    ``forward(x [n, d_in], t [n] int64) -> [n]``. Eagerly, rows are sorted by type and each type's
    rows go through plain matrix products. Under ``torch.compile`` / ``torch.export``
    (``nequip-compile``), where the row count per type is data-dependent, each row's weights are
    gathered and applied as a broadcast product and sum instead (AOTInductor cannot lower a matrix
    product over a data-dependent row count). Both compute the same function; the eager path is about
    twice as fast.
    """

    def __init__(self, n_types: int, d_in: int, hidden: Sequence[int]):
        super().__init__()
        dims = [d_in, *hidden, 1]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for k, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            # the output layer starts at zero: an MLP that never sees data gives exactly 0
            std = 0.0 if k == len(dims) - 2 else (1.0 / a) ** 0.5
            self.weights.append(torch.nn.Parameter(torch.randn(n_types, a, b) * std))
            self.biases.append(torch.nn.Parameter(torch.zeros(n_types, 1, b)))
        self.n_layers = len(dims) - 1
        self.n_types = n_types

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if _tracing():
            return self._gathered(x, t)
        return self._segmented(x, t)

    def _gathered(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = x
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = (h.unsqueeze(-1) * w.index_select(0, t)).sum(1) + b.index_select(0, t).squeeze(1)
            if k < self.n_layers - 1:
                h = torch.nn.functional.silu(h)
        return h.view(-1)

    def _segmented(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        order = torch.argsort(t)
        counts = torch.bincount(t, minlength=self.n_types).tolist()
        outs = []
        for kind, rows in enumerate(torch.split(x.index_select(0, order), counts)):
            h = rows
            for k, (w, b) in enumerate(zip(self.weights, self.biases)):
                h = torch.addmm(b[kind], h, w[kind])
                if k < self.n_layers - 1:
                    h = torch.nn.functional.silu(h)
            outs.append(h)
        out = torch.cat(outs).view(-1)
        return out.index_select(0, torch.argsort(order))


class BodyTermsEnergy(GraphModuleMixin, torch.nn.Module):
    """Learned two- and three-body energies added to the per-atom energy field.

    Parameters
    ----------
    type_names
        Model type names (their order fixes the MLP order, see :func:`~.cutoffs.pair_types`).
    r_cut
        Two-body cutoff in Å: one number for every pair, or ``{"Hf-Hf": .., "Hf-O": .., "O-O": ..}``;
        must not exceed the neighbour-list radius of the data.
    r_cut_three_body
        Three-body cutoff of each leg ``i-j`` by its pair type (same forms; ``None``: ``r_cut``).
    three_body
        Include ``E_NN3``.
    nn3_types
        Grouping of the three-body types into NN3 MLPs (:data:`~.cutoffs.NN3_GROUPINGS`).
    hidden
        Hidden layer widths of every MLP.
    polynomial_cutoff_p
        Exponent of the envelope.
    per_atom_energy_field
        The field the energies are added to (created if absent).
    irreps_in
        From the preceding module.

    The settings' defaults live in the configuration schema (``methods.<name>.decomposition.body``).
    """

    def __init__(
        self,
        type_names: Sequence[str],
        r_cut: float | Mapping[str, float],
        r_cut_three_body: float | Mapping[str, float] | None,
        three_body: bool,
        nn3_types: str,
        hidden: Sequence[int],
        polynomial_cutoff_p: float,
        per_atom_energy_field: str = AtomicDataDict.PER_ATOM_ENERGY_KEY,
        irreps_in=None,
    ):
        super().__init__()
        self.type_names = list(type_names)
        s = check_body(
            {"r_cut": r_cut, "r_cut_three_body": r_cut_three_body, "three_body": three_body,
             "nn3_types": nn3_types, "hidden": list(hidden), "polynomial_cutoff_p": polynomial_cutoff_p},
            self.type_names,
        )
        self.settings = s
        self.per_atom_energy_field = per_atom_energy_field
        self._init_irreps(irreps_in=irreps_in, irreps_out={per_atom_energy_field: "0e"})
        if per_atom_energy_field in self.irreps_in:
            self.irreps_out[per_atom_energy_field] = self.irreps_in[per_atom_energy_field]
        n = len(self.type_names)
        self.three_body = s["three_body"]
        self.cutoff = PolynomialCutoff(s["polynomial_cutoff_p"])
        self.model_dtype = torch.get_default_dtype()  # geometry arrives in the data's dtype
        pair_index = torch.zeros(n, n, dtype=torch.long)
        cut2 = torch.zeros(n, n, dtype=self.model_dtype)
        cut3 = torch.zeros(n, n, dtype=self.model_dtype)
        for k, (a, b) in enumerate(pair_types(range(n))):
            pair_index[a, b] = pair_index[b, a] = k
            name = f"{self.type_names[a]}-{self.type_names[b]}"
            cut2[a, b] = cut2[b, a] = s["r_cut"][name]
            cut3[a, b] = cut3[b, a] = s["r_cut_three_body"][name]
        self.register_buffer("pair_index", pair_index)
        self.register_buffer("pair_cut", cut2)
        self.register_buffer("pair_cut3", cut3)
        self.r_cut_max = max(s["r_cut"].values())  # the neighbour-list radius the terms need
        self.scale3 = max(s["r_cut_three_body"].values())  # length scale of the NN3 inputs
        self.nn2 = _TypedMLP(len(pair_types(self.type_names)), 1, s["hidden"])
        self.n3_per_centre = len(pair_types(self.type_names)) if s["nn3_types"] == "centre_and_neighbour_pair" else 0
        if self.three_body:
            self.nn3 = _TypedMLP(len(_network_types(self.type_names, s["nn3_types"])), 4, s["hidden"])

    def pair_energy(self, r: torch.Tensor, type_i: torch.Tensor, type_j: torch.Tensor) -> torch.Tensor:
        """``E_NN2`` of pairs at distances ``r`` [n] (Å) with types ``type_i``, ``type_j`` [n]: ``[n]`` eV."""
        r = r.to(self.model_dtype)
        rc = self.pair_cut[type_i, type_j]
        x = (r / rc).square().unsqueeze(-1)
        return self.nn2(x, self.pair_index[type_i, type_j]) * self.cutoff(r / rc)  # zero beyond r_c

    def forward(self, data: AtomicDataDict.Type) -> AtomicDataDict.Type:
        data = with_edge_vectors_(data, with_lengths=True)
        vec = data[AtomicDataDict.EDGE_VECTORS_KEY]
        r = data[AtomicDataDict.EDGE_LENGTH_KEY].view(-1)
        edge_index = data[AtomicDataDict.EDGE_INDEX_KEY]
        types = data[AtomicDataDict.ATOM_TYPE_KEY].view(-1)
        if self.per_atom_energy_field in data:
            num_nodes = data[self.per_atom_energy_field].size(0)
        else:
            num_nodes = AtomicDataDict.num_nodes(data)

        short = torch.nonzero(r < self.pair_cut[types[edge_index[0]], types[edge_index[1]]]).view(-1)
        vec, r = vec[short].to(self.model_dtype), r[short].to(self.model_dtype)
        center, neighbor = edge_index[0][short], edge_index[1][short]
        t_i, t_j = types[center], types[neighbor]
        energy = scatter(0.5 * self.pair_energy(r, t_i, t_j), center, dim=0, dim_size=num_nodes)

        if self.three_body:
            rc3 = self.pair_cut3[t_i, t_j]
            inner = torch.nonzero(r < rc3).view(-1)
            e1, e2 = triplets(center[inner], num_nodes, ordered=False)
            e1, e2 = inner[e1], inner[e2]
            ta, tb = t_j[e1], t_j[e2]
            swap = ta > tb  # canonical neighbour order: lower type index first
            a = torch.where(swap, e2, e1)
            b = torch.where(swap, e1, e2)
            va, vb = vec[a], vec[b]
            ra, rb = r[a], r[b]
            s2 = self.scale3 * self.scale3
            xa, xb = ra * ra / s2, rb * rb / s2
            # same-species neighbours: a symmetric pair of inputs, so E_NN3 is invariant to j <-> k
            same = ta == tb
            x = torch.stack(
                [torch.where(same, xa + xb, xa), torch.where(same, (xa - xb).square(), xb),
                 (vb - va).square().sum(-1) / s2, (va * vb).sum(-1) / (ra * rb)],
                dim=-1,
            )
            kind = t_i[a] * self.n3_per_centre + self.pair_index[ta, tb]
            e3 = self.nn3(x, kind) * self.cutoff(ra / rc3[a]) * self.cutoff(rb / rc3[b])
            energy = energy + scatter(e3, center[a], dim=0, dim_size=num_nodes)

        energy = energy.unsqueeze(-1)
        if self.per_atom_energy_field in data:
            energy = energy + data[self.per_atom_energy_field]
        data[self.per_atom_energy_field] = energy
        return data

    def settings_dict(self) -> dict[str, Any]:
        """The settings that rebuild this module (what a pre-fit file records), cutoffs per pair."""
        return {"type_names": list(self.type_names), **{k: self.settings[k] for k in BODY_KEYS}}
