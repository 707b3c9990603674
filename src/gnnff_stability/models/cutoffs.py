"""Per-bond-type cutoffs of the body terms of the decomposed model (standard library only).

A cutoff setting is one number for every species pair (Rajak et al.'s single ``R_c``), or a mapping
from pair names (``"Hf-Hf"``, ``"Hf-O"``, ``"O-O"``; either species order) to numbers, one per
unordered pair. :func:`pair_cutoffs` turns either into the mapping, keyed by the canonical names of
:func:`pair_name`. ``"auto"`` (the two-body cutoff taken from the reference RDF) is resolved in
phase 1, from the training frames (:func:`gnnff_stability.models.prefit.rdf_cutoffs`).

Kept free of torch so that :func:`gnnff_stability.config.validate_config` checks cutoffs without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

_T = TypeVar("_T")

__all__ = ["AUTO", "BODY_KEYS", "NN3_GROUPINGS", "check_body", "nn3_types", "pair_cutoffs", "pair_name", "pair_types"]

#: The two-body cutoff taken from the reference RDF (first minimum after the first peak, per pair).
AUTO = "auto"

#: Keys of a body-term settings block (``methods.<name>.decomposition.body``), all required here:
#: their defaults live in the configuration schema.
BODY_KEYS: tuple[str, ...] = ("r_cut", "r_cut_three_body", "three_body", "nn3_types", "hidden", "polynomial_cutoff_p")

#: Groupings of the three-body types into NN3 networks: ``neighbour_pair``: one per unordered
#: neighbour-species pair ``{j, k}`` (3 for Hf/O: the paper's 6 networks with the 3 NN2);
#: ``centre_and_neighbour_pair``: one per centre species and neighbour pair (6 for Hf/O, 9 in all).
NN3_GROUPINGS: tuple[str, ...] = ("neighbour_pair", "centre_and_neighbour_pair")


def pair_types(type_names: Sequence[_T]) -> list[tuple[_T, _T]]:
    """Unordered species pairs in the order of the NN2 MLPs: ``(a, b)`` with ``index(a) <= index(b)``."""
    n = len(type_names)
    return [(type_names[a], type_names[b]) for a in range(n) for b in range(a, n)]


def nn3_types(type_names: Sequence[str], grouping: str) -> list[tuple[str, ...]]:
    """The NN3 networks in order: ``(j, k)`` neighbour pairs, or ``(centre, j, k)`` triples."""
    if grouping == "neighbour_pair":
        return list(pair_types(type_names))
    if grouping == "centre_and_neighbour_pair":
        return [(c, a, b) for c in type_names for a, b in pair_types(type_names)]
    raise ValueError(f"nn3_types must be one of {', '.join(NN3_GROUPINGS)}; got {grouping!r}")


def pair_name(a: str, b: str, type_names: Sequence[str]) -> str:
    """``"A-B"`` with the species in type order (``pair_name("O", "Hf", ["Hf", "O"]) == "Hf-O"``)."""
    a, b = sorted((a, b), key=list(type_names).index)
    return f"{a}-{b}"


def pair_cutoffs(value: Any, type_names: Sequence[str], name: str = "r_cut") -> dict[str, float]:
    """A cutoff setting as ``{pair name: Å}`` over every unordered species pair, in type order.

    Raises
    ------
    ValueError
        For a cutoff that is not a positive number, a pair name that is not ``A-B`` of known species,
        a pair given twice or missing; the message names ``name`` and the allowed pairs.
    """
    names = [pair_name(a, b, type_names) for a, b in pair_types(type_names)]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise ValueError(f"{name} must be a number of Å or a mapping over {', '.join(names)}; got {value!r}")
    if not isinstance(value, Mapping):
        value = dict.fromkeys(names, value)
    out: dict[str, float] = {}
    for key, cut in value.items():
        parts = str(key).split("-")
        if len(parts) != 2 or any(p not in type_names for p in parts):
            raise ValueError(f"{name}: {key!r} is not a species pair; allowed: {', '.join(names)}")
        canon = pair_name(parts[0], parts[1], type_names)
        if canon in out:
            raise ValueError(f"{name}: the pair {canon} is given twice")
        if isinstance(cut, bool) or not isinstance(cut, (int, float)) or not cut > 0:
            raise ValueError(f"{name}.{canon} must be a number of Å > 0; got {cut!r}")
        out[canon] = float(cut)
    missing = [n for n in names if n not in out]
    if missing:
        raise ValueError(f"{name}: no cutoff for {', '.join(missing)}; give every pair of {', '.join(names)}")
    return {n: out[n] for n in names}


def check_body(body: Mapping[str, Any], type_names: Sequence[str]) -> dict[str, Any]:
    """Check a body-term settings block whose cutoffs are known (no ``auto``) and resolve them.

    Returns the block with ``r_cut`` and ``r_cut_three_body`` as ``{pair name: Å}`` (the three-body
    cutoff of a pair bounds the legs ``i-j`` of that pair type; ``null`` means the two-body one).

    Raises
    ------
    ValueError
        For a missing or unknown key, ``r_cut: auto`` (resolved in phase 1 only), a three-body
        cutoff above its pair's two-body cutoff, a bad ``nn3_types``, ``hidden`` or ``polynomial_cutoff_p``.
    """
    unknown = sorted(set(body) - set(BODY_KEYS))
    missing = sorted(set(BODY_KEYS) - set(body))
    if unknown or missing:
        raise ValueError(f"body-term settings: unknown {unknown}, missing {missing}; the keys are {list(BODY_KEYS)}")
    out = dict(body)
    if out["r_cut"] == AUTO:
        raise ValueError("r_cut: auto is resolved from the training frames in phase 1 (prefit_body_terms); "
                         "the body terms need numbers here")
    out["r_cut"] = pair_cutoffs(out["r_cut"], type_names, "r_cut")
    if out["r_cut_three_body"] is None:
        out["r_cut_three_body"] = dict(out["r_cut"])
    out["r_cut_three_body"] = pair_cutoffs(out["r_cut_three_body"], type_names, "r_cut_three_body")
    for pair, cut3 in out["r_cut_three_body"].items():
        if cut3 > out["r_cut"][pair]:
            raise ValueError(f"r_cut_three_body.{pair} = {cut3} Å exceeds r_cut.{pair} = {out['r_cut'][pair]} Å; "
                             "the three-body cutoff of a pair must not exceed its two-body cutoff")
    if not isinstance(out["three_body"], bool):
        raise ValueError(f"three_body must be true or false, got {out['three_body']!r}")
    nn3_types(type_names, out["nn3_types"])
    hidden = out["hidden"]
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden or any(
        isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden
    ):
        raise ValueError(f"hidden must list at least one positive integer layer width, got {hidden!r}")
    out["hidden"] = [int(h) for h in hidden]
    if isinstance(out["polynomial_cutoff_p"], bool) or not float(out["polynomial_cutoff_p"]) >= 2:
        raise ValueError(f"polynomial_cutoff_p must be >= 2, got {out['polynomial_cutoff_p']}")
    return {k: out[k] for k in BODY_KEYS}
