"""Sharpness-aware minimisation (SAM) as a Lightning training-module mixin for ``nequip-train``.

SAM (Foret et al. 2021, "Sharpness-Aware Minimization for Efficiently Improving Generalization")
minimises ``max_{||e|| <= rho} L(w + e)``. One step takes two forward/backward passes:

1. the gradient ``g = dL/dw`` at the current weights ``w``;
2. an ascent to ``w + e`` with ``e = rho * g / ||g||`` (``||.||`` the global 2-norm over all
   trained parameters), and the gradient ``g_sam = dL/dw`` there;
3. ``w`` is restored and the base optimiser steps from ``w`` with ``g_sam``.

The adaptive variant (ASAM, Kwon et al. 2021) scales the ascent of every weight element-wise by
``T = |w| + eta``: ``e = rho * T^2 g / ||T g||``, which makes the radius invariant to a rescaling
of the weights; it usually wants a larger ``rho`` (ASAM uses 0.5 to 2). As in ASAM's reference
implementation, biases are not scaled (``T = 1`` for them, inside the norm too): a parameter is a
bias when its own name (the last component of its dotted name in the module) contains ``bias``.

Allegro-Legato (Ibayashi et al. 2023) trained Allegro with SAM to lengthen the time to failure of
large MD runs, at about +75 % training time; its main configuration uses ``rho = 0.005`` and it
scans 0.001-0.05.

When the module also has the correlation loss (:class:`CorrSAMLightningModule`), the loss whose
gradient sets the ascent direction is the whole training loss, decorrelation penalty included.

How it sits in Lightning
------------------------
nequip's training module uses Lightning's automatic optimisation: Lightning builds a closure that
runs ``training_step``, ``zero_grad`` and ``backward`` and passes it to the module's
``optimizer_step``, which nequip's :class:`~nequip.train.EMALightningModule` overrides to step the
optimiser and then update the EMA weights. :class:`SAMMixin` overrides ``optimizer_step`` too and
hands its parent a closure that runs Lightning's closure twice (at ``w`` and at ``w + e``) and
restores ``w``. So the parent steps the optimiser once, from ``w``, with the gradient taken at
``w + e``; gradient clipping and ``on_before_optimizer_step`` see that gradient; the EMA is updated
once per step; and learning-rate schedulers are untouched. Everything in ``training_step``,
including a penalty a subclass adds there (the correlation loss of
:class:`~gnnff_stability.train.module.CorrLightningModule`), is part of the loss at both passes.

The second (ascent) pass must not count as a training batch: during it ``self.log`` is muted and
afterwards the running training metrics (nequip's loss ``MetricsManager`` and ``train_metrics``)
are put back to their state after the first pass, so the logged training loss is that at ``w``.
Subclasses with more per-step state extend :meth:`SAMMixin.sam_accumulators` /
:meth:`SAMMixin.sam_restore_accumulators` (accumulators to restore after the ascent pass) and
:meth:`SAMMixin.sam_replay_state` / :meth:`SAMMixin.sam_set_replay_state` (random state to replay,
so that both passes see the same random draws).

Logged per epoch (CSV column): ``sam/grad_norm``, the mean over steps of the norm the ascent
divides by (``||g||`` at ``w``, or ``||T g||`` adaptive).

Hydra: ``training_module._target_: gnnff_stability.train.sam.SAMLightningModule`` (or
``CorrSAMLightningModule``) with ``sam: {rho: 0.005, adaptive: false}``; ``sam: null`` trains
without SAM, exactly like the parent module. Unset keys take the defaults of the configuration
schema's ``methods.<name>.sam`` block, the only place they are stated (:func:`sam_defaults`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from nequip.train import EMALightningModule

from .module import CorrLightningModule

__all__ = [
    "CorrSAMLightningModule",
    "SAMLightningModule",
    "SAMMixin",
    "is_bias",
    "sam_defaults",
    "sam_perturbation",
    "validate_sam",
]

logger = logging.getLogger(__name__)

def sam_defaults() -> dict[str, Any]:
    """The defaults of the schema's ``methods.<name>.sam`` block: ``{rho, adaptive, eta, eps}``."""
    from gnnff_stability.config import load_schema

    block = load_schema()["properties"]["methods"]["additionalProperties"]["properties"]["sam"]["oneOf"][1]
    return {key: prop["default"] for key, prop in block["properties"].items()}


def validate_sam(sam: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Check SAM settings and fill the schema's defaults (``None`` stays ``None``: no SAM).

    Keys (meanings and defaults: the configuration schema's ``methods.<name>.sam``)
    ----
    rho : float > 0
        Radius of the ascent step in parameter space.
    adaptive : bool
        ASAM's element-wise scaling ``T = |w| + eta`` of the weights.
    eta : float >= 0
        ASAM's offset, so that zero weights still move; unused unless adaptive.
    eps : float > 0
        Added to the gradient norm before dividing.
    """
    if sam is None:
        return None
    if not isinstance(sam, Mapping):
        raise ValueError(f"sam settings must be a mapping or None, got {type(sam).__name__}: {sam!r}")
    defaults = sam_defaults()
    unknown = set(sam) - set(defaults)
    if unknown:
        raise ValueError(f"unknown sam settings {sorted(unknown)}; allowed: {sorted(defaults)}")
    out = {**defaults, **dict(sam)}
    if not isinstance(out["adaptive"], bool):
        raise ValueError(f"sam.adaptive must be true or false, got {out['adaptive']!r}")
    for key in ("rho", "eta", "eps"):
        try:
            out[key] = float(out[key])
        except (TypeError, ValueError):
            raise ValueError(f"sam.{key} must be a number, got {out[key]!r}") from None
    if not out["rho"] > 0:
        raise ValueError(f"sam.rho must be > 0, got {out['rho']}")
    if not out["eta"] >= 0:
        raise ValueError(f"sam.eta must be >= 0, got {out['eta']}")
    if not out["eps"] > 0:
        raise ValueError(f"sam.eps must be > 0, got {out['eps']}")
    return out


def is_bias(name: str) -> bool:
    """Whether the parameter called ``name`` (dotted, as ``named_parameters`` gives it) is a bias."""
    return "bias" in name.rsplit(".", 1)[-1]


@torch.no_grad()
def sam_perturbation(
    params: Iterable[torch.nn.Parameter],
    rho: float,
    adaptive: bool,
    eta: float,
    eps: float,
    unscaled: Iterable[torch.nn.Parameter] = (),
) -> tuple[list[tuple[torch.nn.Parameter, torch.Tensor]], torch.Tensor | None]:
    """The SAM ascent ``e`` for every parameter that has a gradient.

    ``e = rho * g / ||g||`` (plain) or ``e = rho * T^2 g / ||T g||`` with ``T = |w| + eta``
    (adaptive), the norm taken over all parameters together (one global radius). ``T = 1`` for the
    parameters in ``unscaled`` (ASAM leaves the biases unscaled), so their ``e`` is plain SAM's
    ``rho * g`` over the same global norm.

    Parameters
    ----------
    params
        Parameters; those with ``grad is None`` (frozen or unused) are skipped.
    rho, adaptive, eta, eps
        See :func:`validate_sam`.
    unscaled
        Parameters that the adaptive scaling leaves alone (the biases; see :func:`is_bias`).

    Returns
    -------
    ascent : list of (parameter, e)
        ``e`` has the parameter's shape, dtype and device. Empty when no parameter has a gradient.
    norm : torch.Tensor or None
        The float64 scalar ``||g||`` (plain) or ``||T g||`` (adaptive) that ``e`` divides by.
    """
    pairs = [(p, p.grad) for p in params if p.grad is not None]
    if not pairs:
        return [], None
    skip = {id(p) for p in unscaled}
    weights = [adaptive and id(p) not in skip for p, _ in pairs]
    scaled = [(p.abs() + eta) * g if w else g for (p, g), w in zip(pairs, weights)]
    device = pairs[0][1].device
    norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(s.to(torch.float64)).to(device) for s in scaled])
    )
    scale = rho / (norm + eps)
    out = []
    for (p, g), s, w in zip(pairs, scaled, weights):
        e = ((p.abs() + eta) * s if w else g) * scale.to(g.dtype)
        out.append((p, e))
    return out, norm


def _metric_managers(module: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in (getattr(module, "loss", None), getattr(module, "train_metrics", None)) if m is not None]


def _metric_states(manager: torch.nn.Module) -> list[tuple[Any, dict, int]]:
    from torchmetrics import Metric

    return [(m, m._copy_state_dict(), m._update_count) for m in manager.modules() if isinstance(m, Metric)]


def _restore_metric_states(states: list[tuple[Any, dict, int]]) -> None:
    for metric, state, count in states:
        for name, value in state.items():
            setattr(metric, name, value)
        metric._update_count = count
        metric._computed = None


if TYPE_CHECKING:
    from lightning import LightningModule as _MixinBase
else:
    _MixinBase = object


class SAMMixin(_MixinBase):
    """SAM for a Lightning module with automatic optimisation (put it first among the bases).

    Parameters
    ----------
    sam
        ``None`` (no SAM) or the settings of :func:`validate_sam`.
    *args, **kwargs
        The other base's arguments.

    Notes
    -----
    - Gradient accumulation (``accumulate_grad_batches > 1``) is refused: the first pass would add
      to the accumulated gradient.
    - The ascent covers the parameters of the optimiser's param groups that have a gradient;
      frozen parameters (``requires_grad=False``) never move.
    - ``w`` is restored by copy, bit for bit, not by subtracting ``e``.
    """

    def __init__(self, *args, sam: Mapping[str, Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sam_settings = validate_sam(sam)
        self._sam_muted = False
        self._sam_norm_sum: torch.Tensor | None = None
        self._sam_steps = 0

    # ---- hooks for subclasses with per-step state --------------------------------------------

    def sam_accumulators(self) -> Any:
        """Running per-epoch state to put back after the ascent pass (default: the training metrics)."""
        return [state for manager in _metric_managers(self) for state in _metric_states(manager)]

    def sam_restore_accumulators(self, state: Any) -> None:
        """Put back what :meth:`sam_accumulators` returned."""
        _restore_metric_states(state)

    def sam_replay_state(self) -> Any:
        """Random state, read before the first pass, to replay in the ascent pass (default: none)."""
        return None

    def sam_set_replay_state(self, state: Any) -> None:
        """Reset the random state to what :meth:`sam_replay_state` returned."""

    # ---- Lightning ----------------------------------------------------------------------------

    def log(self, *args, **kwargs) -> None:
        if self._sam_muted:
            return
        super().log(*args, **kwargs)

    def on_fit_start(self) -> None:
        if self.sam_settings is not None:
            accumulate = getattr(self.trainer, "accumulate_grad_batches", 1)
            if accumulate != 1:
                raise ValueError(f"SAM needs accumulate_grad_batches == 1, got {accumulate}")
            if not self.automatic_optimization:
                raise ValueError("SAM runs inside Lightning's automatic optimisation; it is switched off")
            logger.info("sharpness-aware minimisation: %s", self.sam_settings)
        super().on_fit_start()

    def on_train_epoch_start(self) -> None:
        self._sam_norm_sum, self._sam_steps = None, 0
        super().on_train_epoch_start()

    def on_train_epoch_end(self) -> None:
        if self._sam_norm_sum is not None:
            self.log("sam/grad_norm", self._sam_norm_sum / self._sam_steps)
        super().on_train_epoch_end()

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure: Callable | None = None):
        if self.sam_settings is None or optimizer_closure is None:
            return super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        s = self.sam_settings
        params = [p for group in getattr(optimizer, "optimizer", optimizer).param_groups for p in group["params"]]
        biases = [p for name, p in self.named_parameters() if is_bias(name)] if s["adaptive"] else []

        def sam_closure():
            replay = self.sam_replay_state()
            loss = optimizer_closure()  # training_step, zero_grad, backward at w
            result = getattr(optimizer_closure, "_result", None)
            accumulators = self.sam_accumulators()
            ascent, norm = sam_perturbation(params, s["rho"], s["adaptive"], s["eta"], s["eps"], biases)
            if norm is not None:
                self._sam_norm_sum = norm if self._sam_norm_sum is None else self._sam_norm_sum + norm
                self._sam_steps += 1
            saved = [(p, p.detach().clone()) for p, _ in ascent]
            with torch.no_grad():
                for p, e in ascent:
                    p.add_(e)
            self.sam_set_replay_state(replay)
            self._sam_muted = True
            try:
                optimizer_closure()  # the same at w + e: the gradient SAM steps with
            finally:
                self._sam_muted = False
                with torch.no_grad():
                    for p, w in saved:
                        p.copy_(w)
                self.sam_restore_accumulators(accumulators)
                if result is not None:
                    optimizer_closure._result = result  # Lightning reports the loss at w
            return loss

        return super().optimizer_step(epoch, batch_idx, optimizer, sam_closure)


class SAMLightningModule(SAMMixin, EMALightningModule):
    """nequip's EMA training module trained with SAM.

    Parameters
    ----------
    sam
        ``None`` or ``{rho, adaptive, eta, eps}`` (:func:`validate_sam`).
    **kwargs
        Everything :class:`nequip.train.EMALightningModule` takes (``model``, ``loss``, ...).
    """

    def __init__(self, sam: Mapping[str, Any] | None = None, **kwargs):
        super().__init__(sam=sam, **kwargs)


class CorrSAMLightningModule(SAMMixin, CorrLightningModule):
    """The correlation-loss module (:class:`~gnnff_stability.train.module.CorrLightningModule`) with SAM.

    The penalty is part of the loss at both passes and is computed on the same sampled edges
    (the edge-sampling generator is replayed for the ascent pass); the per-epoch penalty log counts
    the first pass only.

    Parameters
    ----------
    sam
        ``None`` or ``{rho, adaptive, eta, eps}`` (:func:`validate_sam`).
    **kwargs
        Everything :class:`~gnnff_stability.train.module.CorrLightningModule` takes (``corr``,
        ``corr_seed``, ``model``, ``loss``, ...).
    """

    def __init__(self, sam: Mapping[str, Any] | None = None, **kwargs):
        super().__init__(sam=sam, **kwargs)

    def sam_accumulators(self) -> Any:
        return super().sam_accumulators(), self._corr_epoch_sum, self._corr_epoch_steps

    def sam_restore_accumulators(self, state: Any) -> None:
        base, self._corr_epoch_sum, self._corr_epoch_steps = state
        super().sam_restore_accumulators(base)

    def sam_replay_state(self) -> Any:
        return None if self._generator is None else (self._generator.device, self._generator.get_state())

    def sam_set_replay_state(self, state: Any) -> None:
        if state is None:
            self._generator = None  # recreated from corr_seed by training_step, as in the first pass
        else:
            device, rng = state
            if self._generator is not None and self._generator.device == device:
                self._generator.set_state(rng)
