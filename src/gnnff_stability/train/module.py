"""The training module of every campaign run: nequip's EMA module plus the feature-decorrelation loss.

:class:`CorrLightningModule` is what the Hydra templates (``train/templates/<family>.yaml``) select with
``training_module._target_``. With ``corr: null`` it trains the plain baseline; otherwise it adds the
correlation penalty of :mod:`.corr` on the features of :mod:`.features`, with the coefficient schedule
of :mod:`.schedulers`, and logs the coefficient, the penalty and per-epoch wall times with nequip's
metrics (they land in the CSV log).

Loss weighting
--------------
nequip's ``MetricsManager`` normalises the energy and force coefficients to sum to 1, so its
``weighted_sum`` is ``(c_e L_e + c_f L_f) / S`` with ``S = c_e + c_f``. The correlation term is added
**outside** it, in :meth:`CorrLightningModule.training_step`, with the effective weight
``c_corr / S``::

    loss = weighted_sum + (c_corr / S) L_corr = (c_e L_e + c_f L_f + c_corr L_corr) / S

i.e. the paper's total loss divided by the constant ``S`` (2 for ``c_e = c_f = 1``): the relative
weights are exactly the paper's, and Adam (invariant to a constant loss scale) takes the same steps.
Both the raw ``c_corr`` (``loss_coeff/corr``) and the effective ``c_corr / S``
(``loss_coeff/corr_effective``) are logged every epoch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import torch
from nequip.train import EMALightningModule

from gnnff_stability.settings import CorrSettings

from .corr import DEFAULT_EPS
from .features import FeatureRecorder
from .schedulers import CorrCoefficientScheduler, corr_coefficient

__all__ = ["CorrLightningModule"]

logger = logging.getLogger(__name__)

_SOLE_MODEL_KEY = "sole_model"


def _loss_coeff_sum(loss: Mapping[str, Any] | None) -> float:
    """Sum ``S`` of the raw loss coefficients of a nequip loss config (before its normalisation)."""
    if loss is None:
        return 1.0
    if "coeffs" in loss and loss["coeffs"] is not None:
        values = [v for v in dict(loss["coeffs"]).values() if v is not None]
    elif "metrics" in loss:
        values = [m.get("coeff") for m in loss["metrics"] if m.get("coeff") is not None]
    else:  # nequip's EnergyForceLoss default coefficients
        values = [1.0, 1.0]
    total = float(sum(values))
    if not total > 0:
        raise ValueError(f"the loss coefficients must sum to a positive number, got {values}")
    return total


class CorrLightningModule(EMALightningModule):
    """nequip's EMA training module with the feature-decorrelation penalty (Zeng et al. 2025).

    Parameters
    ----------
    family
        Model family of the trained model (``nequip``, ``allegro``): where its features are.
    corr
        ``None`` for the baseline, or the fields of :class:`gnnff_stability.settings.CorrSettings`
        (``selection``, ``scheduler``, ``c_min``, ``c_max``, ``t_cycle``, ``sample_edges``), as resolved in
        the run table and passed by the trainer; checked by the configuration, not here.
    corr_seed
        Seed of the edge sampling (a generator owned by the module; not checkpointed, so a resumed
        run draws a different but equally random sample).
    **kwargs
        Everything ``nequip.train.EMALightningModule`` takes (``model``, ``loss``, ...).

    Notes
    -----
    The hooks are registered in ``on_fit_start`` and removed in ``on_fit_end`` (a hooked model cannot
    be pickled by ``nequip-package``) and they record only inside :meth:`training_step`; validation
    and test passes are untouched. Logged every epoch (CSV columns): ``train_loss_epoch/corr``
    (mean over steps of the summed penalty), ``train_loss_epoch/corr_layer{l}``,
    ``loss_coeff/corr``, ``loss_coeff/corr_effective``, ``time/epoch_s`` (epoch start to epoch end,
    validation included) and ``time/train_s`` (training batches only). Nothing extra is logged per
    step (a Lightning ``log`` call per step costs more than the penalty at the embedded size).
    """

    def __init__(self, family: str, corr: Mapping[str, Any] | None = None, corr_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.family = str(family)
        self.corr_settings = None if corr is None else CorrSettings.from_config(corr)
        self.corr_seed = int(corr_seed)
        self.loss_coeff_sum = _loss_coeff_sum(kwargs.get("loss"))
        self.corr_coeff = 0.0
        self._recorder: FeatureRecorder | None = None
        self._generator: torch.Generator | None = None
        self._corr_epoch_sum: torch.Tensor | None = None
        self._corr_epoch_steps = 0
        self._rows_checked = False
        self._pending_samples = None
        self._pending_corr = None
        self._t_epoch = math.nan
        self._t_last_batch = math.nan
        if self.corr_settings is not None:
            s = self.corr_settings
            self.corr_coeff = corr_coefficient(0, s.scheduler, s.c_min, s.c_max, s.t_cycle, max_epochs=1)
            # fail at build time, not after the first epoch, if the selection does not fit the model
            FeatureRecorder(self.model[_SOLE_MODEL_KEY], self.family, s.selection)

    @property
    def corr_coeff_effective(self) -> float:
        """``c_corr / S``: the weight of ``L_corr`` next to nequip's normalised ``weighted_sum``."""
        return self.corr_coeff / self.loss_coeff_sum

    def configure_callbacks(self):
        if self.corr_settings is None:
            return []
        s = self.corr_settings
        return [CorrCoefficientScheduler(s.scheduler, s.c_min, s.c_max, s.t_cycle)]

    def on_fit_start(self) -> None:
        if self.corr_settings is not None:
            self._recorder = FeatureRecorder(
                self.model[_SOLE_MODEL_KEY], self.family, self.corr_settings.selection
            ).attach()
            logger.info(
                "correlation loss on %s: %s",
                self.corr_settings.selection,
                ", ".join(tap.path for tap in self._recorder.taps),
            )

    def on_fit_end(self) -> None:
        if self._recorder is not None:
            self._recorder.remove()
            self._recorder = None

    def on_train_epoch_start(self) -> None:
        self._t_epoch = time.perf_counter()
        self._corr_epoch_sum = None
        self._corr_epoch_steps = 0

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self._t_last_batch = time.perf_counter()

    def forward(self, inputs):
        """nequip's forward; inside a training step the penalty is queued right after it.

        Computing the penalty here, before nequip's loss reads its metrics back to the host, lets
        a GPU run its kernels while the host is still queueing the rest of the step.
        """
        output = super().forward(inputs)
        if self._pending_samples is not None:
            samples, self._pending_samples = self._pending_samples, None
            self._pending_corr = self._recorder.losses(samples, DEFAULT_EPS)
        return output

    def training_step(self, batch, batch_idx: int, dataloader_idx: int = 0):
        recorder = self._recorder
        if recorder is None:
            return super().training_step(batch, batch_idx, dataloader_idx)
        if self._generator is None or self._generator.device != batch["pos"].device:
            self._generator = torch.Generator(device=batch["pos"].device)
            self._generator.manual_seed(self.corr_seed)
        # sample rows before the forward pass: the hooks gather only the sample
        samples = recorder.samples(batch, self.corr_settings.sample_edges, self._generator)
        self._pending_samples = samples
        try:
            with recorder.recording(samples):
                loss = super().training_step(batch, batch_idx, dataloader_idx)
            corr_loss, per_layer, _ = self._pending_corr
        finally:
            self._pending_samples = None
            self._pending_corr = None
        if not self._rows_checked:
            recorder.check_rows(batch)
            self._rows_checked = True
        recorder.clear()
        per_layer = per_layer.detach()
        self._corr_epoch_sum = per_layer if self._corr_epoch_sum is None else self._corr_epoch_sum + per_layer
        self._corr_epoch_steps += 1
        if self.corr_coeff == 0.0:
            return loss
        return loss + self.corr_coeff_effective * corr_loss

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        now = time.perf_counter()
        self.log("time/epoch_s", now - self._t_epoch)
        self._log_progress(now - self._t_epoch)
        self.log("time/train_s", self._t_last_batch - self._t_epoch)
        if self.corr_settings is not None:
            self.log("loss_coeff/corr", self.corr_coeff)
            self.log("loss_coeff/corr_effective", self.corr_coeff_effective)
            if self._corr_epoch_sum is not None and self._recorder is not None:
                mean = self._corr_epoch_sum / max(self._corr_epoch_steps, 1)
                self.log("train_loss_epoch/corr", mean.sum())
                for tap, value in zip(self._recorder.taps, mean):
                    self.log(f"train_loss_epoch/corr_layer{tap.layer}", value)

    def _log_progress(self, epoch_s: float) -> None:
        """One progress line per epoch in the training log: epochs done, s/epoch, time left, c_corr."""
        trainer = self._trainer
        if trainer is None:
            return
        done, total = trainer.current_epoch + 1, trainer.max_epochs or 0
        left = max(total - done, 0) * epoch_s
        logger.info("epoch %d/%d  %.2f s/epoch  ETA %.0f s  c_corr %.4g", done, total, epoch_s, left,
                    self.corr_coeff)
