"""Energy decomposition as an inductive bias: a GNN plus learned two- and three-body terms.

After Rajak, Krishnamoorthy, Kalia, Nakano, Vashishta et al., "Graph neural network with inductive
bias for robust molecular dynamics" (SiC, GeSe2)::

    E = E_GNN + sum_(i,j) E_NN2(r_ij^2) + sum_(i,j,k) E_NN3(r_ij^2, r_ik^2, r_jk^2, cos theta_ijk)

- ``E_NN2``: one small MLP per unordered species pair (Hf-Hf, Hf-O, O-O), on ``x = r^2 / r_c^2``,
  times the polynomial envelope ``u(r / r_c)`` (nequip's ``PolynomialCutoff``, p = 6: value, first
  and second derivatives vanish at ``r_c``), with a cutoff ``r_c`` per pair. Each unordered pair is
  counted once (half the energy on each directed edge, assigned to its centre atom).
- ``E_NN3``: one small MLP per NN3 type, on ``(r_ij^2, r_ik^2, r_jk^2)`` and ``cos theta_ijk``, times
  ``u(r_ij / r_c3) u(r_ik / r_c3)`` (``r_c3`` per pair type of each leg), once per triplet: the
  centre ``i`` with two distinct neighbours ``j != k`` inside their three-body cutoffs (periodic
  images count as distinct). ``nn3_types: neighbour_pair`` (the schema's default) gives one MLP per
  unordered neighbour pair ``{j, k}`` (3 for Hf/O: with the 3 NN2, the paper's 6 networks);
  ``centre_and_neighbour_pair`` one per centre species and neighbour pair (6, 9 networks in all).
  See :mod:`gnnff_stability.models.body_terms`.

Units: distances in Å, energies in eV (those of the data). Forces stay conservative: the terms
add to the per-atom energy before nequip's ``AtomwiseReduce`` and ``ForceStressOutput``, which
takes ``-dE/dr`` of the total.

Builders (Hydra ``_target_``)
-----------------------------
- :func:`DecomposedModel` wraps any nequip-style builder (``gnn``: the inner builder's config,
  e.g. ``nequip.model.NequIPGNNModel`` or ``allegro.model.AllegroModel``) and inserts the body
  terms before the inner model's total-energy sum. With ``prefit`` (a file from
  :func:`gnnff_stability.models.prefit.prefit_body_terms`) it loads and freezes them
  (``requires_grad=False``) and replaces the GNN's per-type energy shifts and scales by those of
  the remainder: the hierarchical training of the paper, phase 2.
- :func:`DecomposedGNNModel`: the same with the inner builder named by ``gnn_builder`` and its
  arguments given flat, so that a Hydra override of ``training_module.model._target_`` wraps the
  model of any template without moving its keys (what the campaign's ``decomposition`` methods use).
- :func:`BodyTermsModel`: the body terms alone with per-type shifts (phase 1, and a pure pair
  potential with ``three_body=False``).

Body-term settings have no defaults here: they come filled from the configuration schema
(``methods.<name>.decomposition.body``; validated by :func:`gnnff_stability.config.validate_config`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_method
from nequip.data import AtomicDataDict
from nequip.model.utils import model_builder
from nequip.nn import (
    AtomwiseReduce,
    ForceStressOutput,
    PerTypeScaleShift,
    SequentialGraphNetwork,
)

from .body_terms import BodyTermsEnergy
from .cutoffs import AUTO, BODY_KEYS, check_body, pair_cutoffs

__all__ = ["PREFIT_FORMAT", "BodyTermsModel", "DecomposedGNNModel", "DecomposedModel", "load_prefit"]

logger = logging.getLogger(__name__)

PREFIT_FORMAT = "gnnff_stability.body_terms/2"


def load_prefit(path: str | Path) -> dict[str, Any]:
    """Read a pre-fit file of :func:`gnnff_stability.models.prefit.prefit_body_terms`.

    Returns
    -------
    dict
        ``settings`` (type_names + :data:`~.cutoffs.BODY_KEYS`, cutoffs per pair), ``state_dict`` (of
        :class:`BodyTermsEnergy`), ``per_type_energy_shifts`` (eV/atom by type),
        ``remainder_forces_rms`` (eV/Å), ``metrics``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no body-term pre-fit file at {path}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != PREFIT_FORMAT:
        raise ValueError(f"{path} is not a body-term pre-fit file (format {PREFIT_FORMAT!r})")
    return blob


@model_builder
def BodyTermsModel(
    type_names: Sequence[str],
    r_max: float,
    body: Mapping[str, Any],
    per_type_energy_shifts: float | Mapping[str, float] | None = None,
    per_type_energy_shifts_trainable: bool = True,
    do_derivatives: bool = True,
):
    """The body terms alone: ``E = sum_i shift[t_i] + E_NN2 + E_NN3``.

    ``r_max``: the neighbour-list radius (Å), at least every two-body cutoff. ``body``: the body-term
    settings (every key of :data:`~.cutoffs.BODY_KEYS`, cutoffs as numbers or per pair).
    ``per_type_energy_shifts`` (eV/atom, default 0) are trainable unless told otherwise.
    """
    settings = check_body(body, type_names)
    if max(settings["r_cut"].values()) > float(r_max):
        raise ValueError(f"body-term cutoffs {settings['r_cut']} exceed r_max {r_max} Å")
    body = BodyTermsEnergy(type_names=type_names, **settings)
    shift = PerTypeScaleShift(
        type_names=type_names,
        field=AtomicDataDict.PER_ATOM_ENERGY_KEY,
        out_field=AtomicDataDict.PER_ATOM_ENERGY_KEY,
        scales=None,
        shifts=0.0 if per_type_energy_shifts is None else per_type_energy_shifts,
        shifts_trainable=per_type_energy_shifts_trainable,
        irreps_in=body.irreps_out,
    )
    total = AtomwiseReduce(
        field=AtomicDataDict.PER_ATOM_ENERGY_KEY, out_field=AtomicDataDict.TOTAL_ENERGY_KEY,
        reduce="sum", irreps_in=shift.irreps_out,
    )
    energy = SequentialGraphNetwork({"body_terms": body, "per_type_energy_shift": shift, "total_energy_sum": total})
    return ForceStressOutput(energy, do_derivatives)


def _inner_builder_kwargs(gnn: Mapping[str, Any], type_names, r_max) -> tuple[Any, dict[str, Any]]:
    if not isinstance(gnn, Mapping) or "_target_" not in gnn:
        raise ValueError(f"gnn must be a builder config with a `_target_`, got {gnn!r}")
    kwargs = dict(gnn)
    builder = get_method(kwargs.pop("_target_"))
    for key in ("seed", "model_dtype", "compile_mode"):  # the outer builder owns them
        kwargs.pop(key, None)
    if "type_names" in kwargs and list(kwargs["type_names"]) != list(type_names):
        raise ValueError(f"gnn.type_names {list(kwargs['type_names'])} differ from type_names {list(type_names)}")
    if "r_max" in kwargs and float(kwargs["r_max"]) != float(r_max):
        raise ValueError(f"gnn.r_max {kwargs['r_max']} differs from r_max {r_max}")
    kwargs["type_names"], kwargs["r_max"] = list(type_names), float(r_max)
    return builder, kwargs


@model_builder
def DecomposedModel(
    type_names: Sequence[str],
    r_max: float,
    gnn: Mapping[str, Any],
    body: Mapping[str, Any] | None = None,
    prefit: str | None = None,
    freeze: bool = True,
    prefit_stats: bool = True,
):
    """A GNN plus the two- and three-body terms, ``E = E_GNN + E_NN2 + E_NN3``.

    Parameters
    ----------
    type_names, r_max
        Type names and the GNN's cutoff (Å); passed to the inner builder.
    gnn
        The inner builder's config: ``_target_`` (a nequip-style builder whose model ends in an
        ``AtomwiseReduce`` named ``total_energy_sum``, e.g. ``nequip.model.NequIPGNNModel``,
        ``allegro.model.AllegroModel``) and its arguments; ``seed`` / ``model_dtype`` come from
        this builder.
    body
        Body-term settings (every key of :data:`~.cutoffs.BODY_KEYS`; required without ``prefit``).
        With ``prefit`` they are read from the file (any given here must agree with it; ``r_cut:
        auto`` agrees with the cutoffs phase 1 took from the data).
    prefit
        Pre-fit file (phase 1). Its parameters are loaded; the body terms must fit in ``r_max``.
    freeze
        With ``prefit``: freeze the body terms (``requires_grad=False``; default True). Without
        ``prefit`` everything trains jointly.
    prefit_stats
        With ``prefit``: give the GNN the per-type energy shifts fitted in phase 1 and the force
        RMS of the remainder as its energy scale, in place of ``gnn.per_type_energy_shifts`` /
        ``gnn.per_type_energy_scales`` (default True: the GNN starts on the remainder's scale).
    """
    blob = None
    if prefit is not None:
        blob = load_prefit(prefit)
        recorded = blob["settings"]
        if list(recorded["type_names"]) != list(type_names):
            raise ValueError(f"pre-fit {prefit} has type_names {recorded['type_names']}, model has {list(type_names)}")
        settings = check_body({k: recorded[k] for k in BODY_KEYS}, type_names)
        mismatched = {k: (v, settings[k]) for k, v in dict(body or {}).items()
                      if not _same_setting(k, v, settings, type_names)}
        if mismatched:
            raise ValueError(f"body settings disagree with the pre-fit file {prefit} (given, recorded): {mismatched}")
    elif body is None:
        raise ValueError("DecomposedModel needs `body` (the body-term settings) or a `prefit` file")
    else:
        settings = check_body(body, type_names)
    worst = max(settings["r_cut"], key=settings["r_cut"].get)
    if settings["r_cut"][worst] > float(r_max):
        raise ValueError(f"body-term cutoff r_cut.{worst} = {settings['r_cut'][worst]} Å exceeds the model's "
                         f"r_max {r_max} Å")
    builder, kwargs = _inner_builder_kwargs(gnn, type_names, r_max)
    if blob is not None and prefit_stats:
        kwargs["per_type_energy_shifts"] = {k: float(v) for k, v in blob["per_type_energy_shifts"].items()}
        kwargs["per_type_energy_scales"] = float(blob["remainder_forces_rms"])
    inner = builder(**kwargs)
    energy_model = getattr(inner, "func", None)
    if not isinstance(energy_model, SequentialGraphNetwork) or "total_energy_sum" not in energy_model._modules:
        raise ValueError(
            f"the gnn builder {gnn['_target_']} does not build ForceStressOutput(SequentialGraphNetwork"
            "(..., total_energy_sum)); the body terms cannot be inserted before its energy sum"
        )
    names = list(energy_model._modules)
    before = energy_model._modules[names[names.index("total_energy_sum") - 1]]
    terms = BodyTermsEnergy(type_names=type_names, irreps_in=before.irreps_out, **settings)
    if blob is not None:
        terms.load_state_dict(blob["state_dict"])
        if freeze:
            terms.requires_grad_(False)
        logger.info("body terms loaded from %s (%s)", prefit, "frozen" if freeze else "trainable")
    energy_model.insert("body_terms", terms, before="total_energy_sum")
    return ForceStressOutput(energy_model, inner.do_derivatives)


@model_builder
def DecomposedGNNModel(
    gnn_builder: str,
    type_names: Sequence[str],
    r_max: float,
    body: Mapping[str, Any] | None = None,
    prefit: str | None = None,
    freeze: bool = True,
    prefit_stats: bool = True,
    **gnn_kwargs: Any,
):
    """:func:`DecomposedModel` with the inner builder's arguments given flat.

    ``gnn_builder`` is the inner builder's import path (e.g. ``nequip.model.NequIPGNNModel``); every
    argument not named here goes to it. A template's ``training_module.model`` block becomes a
    decomposed model with two overrides: ``_target_`` set to this builder and ``gnn_builder`` set to
    the old target.
    """
    return DecomposedModel(
        type_names=type_names, r_max=r_max, gnn={"_target_": gnn_builder, **gnn_kwargs}, body=body,
        prefit=prefit, freeze=freeze, prefit_stats=prefit_stats,
    )


def _same_setting(key: str, value: Any, settings: Mapping[str, Any], type_names: Sequence[str]) -> bool:
    if key not in BODY_KEYS:
        return False
    if key == "r_cut" and value == AUTO:
        return True  # resolved from the data in phase 1
    if key == "r_cut_three_body" and value is None:
        return settings["r_cut_three_body"] == settings["r_cut"]
    if key in ("r_cut", "r_cut_three_body"):
        try:
            return pair_cutoffs(value, type_names, key) == settings[key]
        except ValueError:
            return False
    if key == "hidden":
        return [int(h) for h in value] == list(settings["hidden"])
    if key == "polynomial_cutoff_p":
        return float(value) == float(settings[key])
    return value == settings[key]
