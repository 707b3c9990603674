"""A training module that records what a training starts from and what it sees (paired-design tests).

:class:`RecordingCorrLightningModule` is the campaign's training module with two records written to
nequip-train's output directory, and nothing else changed:

- ``initial_weights.pt``: the model's and the EMA copy's state at the start of the fit, before any
  optimiser step;
- ``batches.json``: for every training step, ``[epoch, [total energy of each frame in the batch]]``;
  the energies (COMB labels, distinct for distinct frames) identify the frames of the training file.

A test selects it with the model-preset override ``training_module._target_`` (:data:`TARGET`); the
``nequip-train`` process must find ``tests/`` on its ``PYTHONPATH``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gnnff_stability.train.module import CorrLightningModule

TARGET = f"{__name__}.RecordingCorrLightningModule"
INITIAL_WEIGHTS = "initial_weights.pt"
BATCHES = "batches.json"


class RecordingCorrLightningModule(CorrLightningModule):
    """:class:`~gnnff_stability.train.module.CorrLightningModule` that writes :data:`INITIAL_WEIGHTS`
    and :data:`BATCHES` to the CSV logger's directory (nequip-train's output directory)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._batches: list = []

    def _out(self) -> Path:
        return Path(self.trainer.logger.save_dir)

    def on_fit_start(self) -> None:
        state = {key: value.detach().clone() for key, value in self.state_dict().items()
                 if isinstance(value, torch.Tensor)}
        torch.save(state, self._out() / INITIAL_WEIGHTS)
        super().on_fit_start()

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        energies = batch["total_energy"].detach().reshape(-1).tolist()
        self._batches.append([int(self.current_epoch), energies])

    def on_fit_end(self) -> None:
        super().on_fit_end()
        (self._out() / BATCHES).write_text(json.dumps(self._batches))
