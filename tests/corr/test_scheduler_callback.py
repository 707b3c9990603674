"""The coefficient callback sets ``corr_coeff`` before every epoch of a real Lightning run, from the
trainer's epoch and max_epochs (expected values: the schedules' closed forms)."""

from __future__ import annotations

import math

import lightning
import pytest
import torch

from gnnff_stability.train.schedulers import CorrCoefficientScheduler


class _Recorder(lightning.LightningModule):
    """A one-parameter regression that records the coefficient it sees in each epoch."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.corr_coeff = float("nan")
        self.seen: list[float] = []

    def on_train_epoch_start(self):  # runs after the callbacks' hook of the same name
        self.seen.append(self.corr_coeff)

    def training_step(self, batch, batch_idx):
        return ((self.w - batch[0]) ** 2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)


def _fit(scheduler: CorrCoefficientScheduler, max_epochs: int) -> list[float]:
    module = _Recorder()
    trainer = lightning.Trainer(max_epochs=max_epochs, callbacks=[scheduler], accelerator="cpu", devices=1,
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False)
    trainer.fit(module)
    return module.seen


@pytest.mark.parametrize("max_epochs", [2, 5])
def test_linear_schedule_reaches_c_max_at_the_last_epoch(max_epochs):
    seen = _fit(CorrCoefficientScheduler("linear", 0.02, 0.1, 100), max_epochs)
    expected = [0.02 + 0.08 * t / (max_epochs - 1) for t in range(max_epochs)]
    assert seen == pytest.approx(expected, rel=1e-12)


def test_cosine_schedule_restarts_every_cycle():
    seen = _fit(CorrCoefficientScheduler("cosine", 0.01, 0.1, 3), 5)
    expected = [0.1 - 0.09 / 2 * (1 + math.cos(math.pi * (t % 3) / 3)) for t in range(5)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert seen[0] == pytest.approx(0.01) and seen[3] == pytest.approx(0.01)


def test_run_without_an_epoch_limit_takes_the_linear_schedule_at_c_max():
    """max_epochs=-1 (Lightning: no limit; here 3 steps of one batch): the linear ramp has no end to
    reach, so the coefficient is c_max throughout (the schedule's max_epochs == 1 case)."""
    module = _Recorder()
    trainer = lightning.Trainer(max_epochs=-1, max_steps=3, callbacks=[CorrCoefficientScheduler("linear", 0.02, 0.1, 100)],
                                accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module)
    assert module.seen == pytest.approx([0.1, 0.1, 0.1], rel=1e-12)
