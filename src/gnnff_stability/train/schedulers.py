"""Schedules of the correlation-loss coefficient ``c_corr(t)`` over training epochs.

``t`` is the 0-based epoch index (Lightning's ``trainer.current_epoch``); the coefficient is set
before each epoch by :class:`CorrCoefficientScheduler` (a Lightning callback), so it is a pure
function of ``t`` and a resumed run continues the schedule where it stopped.

- ``fixed``: ``c = c_max`` at every epoch (the paper's "fixed 0.1").
- ``linear``: ``c = c_min + (c_max - c_min) * t / (max_epochs - 1)``, reaching ``c_max`` at the last
  epoch (``c_max`` throughout when ``max_epochs == 1``).
- ``cosine`` (Eq. 5 of the paper):
  ``c = c_max - (c_max - c_min) / 2 * (1 + cos(pi * (t mod t_cycle) / t_cycle))``, rising from
  ``c_min`` at the start of each cycle towards ``c_max`` and restarting every ``t_cycle`` epochs.
  The paper uses ``c_min = 0``, ``c_max = 0.1``, ``t_cycle = 100``.
"""

from __future__ import annotations

import logging
import math

import lightning

__all__ = ["CorrCoefficientScheduler", "corr_coefficient"]

logger = logging.getLogger(__name__)


def corr_coefficient(
    epoch: int,
    scheduler: str,
    c_min: float,
    c_max: float,
    t_cycle: int,
    max_epochs: int,
) -> float:
    """Correlation-loss coefficient before epoch ``epoch`` (0-based).

    Parameters
    ----------
    epoch
        Epoch index ``t >= 0``.
    scheduler
        ``"fixed"``, ``"linear"`` or ``"cosine"`` (see the module docstring for the formulas).
    c_min, c_max
        Smallest and largest coefficient (dimensionless; ``c_min <= c_max`` is checked by the
        configuration).
    t_cycle
        Cosine cycle length in epochs.
    max_epochs
        Total epochs of the run (linear schedule only).

    Returns
    -------
    float
        ``c_corr(t)``.
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if scheduler == "fixed":
        return float(c_max)
    if scheduler == "linear":
        if max_epochs <= 1:
            return float(c_max)
        fraction = min(epoch / (max_epochs - 1), 1.0)
        return float(c_min + (c_max - c_min) * fraction)
    if scheduler == "cosine":
        phase = (epoch % t_cycle) / t_cycle
        return float(c_max - (c_max - c_min) / 2.0 * (1.0 + math.cos(math.pi * phase)))
    raise ValueError(f"unknown scheduler {scheduler!r}; the configuration schema lists the allowed ones")


class CorrCoefficientScheduler(lightning.Callback):
    """Set ``pl_module.corr_coeff`` from the schedule at the start of every training epoch.

    The training module (:class:`gnnff_stability.train.module.CorrLightningModule`) adds this callback
    itself (``configure_callbacks``) when the correlation loss is on, and logs the coefficient with
    its epoch metrics. ``max_epochs`` is read from the trainer.

    Parameters
    ----------
    scheduler, c_min, c_max, t_cycle
        See :func:`corr_coefficient`.
    """

    def __init__(self, scheduler: str, c_min: float, c_max: float, t_cycle: int):
        self.scheduler = scheduler
        self.c_min = float(c_min)
        self.c_max = float(c_max)
        self.t_cycle = int(t_cycle)

    def coefficient(self, epoch: int, max_epochs: int) -> float:
        return corr_coefficient(epoch, self.scheduler, self.c_min, self.c_max, self.t_cycle, max_epochs)

    def on_train_epoch_start(self, trainer: lightning.Trainer, pl_module) -> None:
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
        pl_module.corr_coeff = self.coefficient(trainer.current_epoch, max_epochs)
        logger.debug("epoch %d: corr coefficient %.6g", trainer.current_epoch, pl_module.corr_coeff)
