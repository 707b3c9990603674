"""Correlation-coefficient schedules at chosen epochs against their closed forms."""

from __future__ import annotations

import pytest

from gnnff_stability.train.schedulers import CorrCoefficientScheduler, corr_coefficient


@pytest.mark.parametrize("epoch", [0, 1, 7, 99, 250])
def test_fixed_is_c_max(epoch):
    assert corr_coefficient(epoch, "fixed", 0.02, 0.1, 100, 300) == 0.1


@pytest.mark.parametrize(
    "epoch, expected",
    [(0, 0.0), (5, 0.05), (10, 0.1), (15, 0.1)],  # c_min 0 -> c_max 0.1 over 11 epochs
)
def test_linear(epoch, expected):
    assert corr_coefficient(epoch, "linear", 0.0, 0.1, 100, max_epochs=11) == pytest.approx(expected)


def test_linear_single_epoch_is_c_max():
    assert corr_coefficient(0, "linear", 0.0, 0.1, 100, max_epochs=1) == 0.1


@pytest.mark.parametrize(
    "epoch, expected",
    # Eq. 5 with c_min 0.01, c_max 0.1, t_cycle 100, worked out by hand:
    # c = 0.1 - 0.045 (1 + cos(pi (t mod 100) / 100))
    [
        (0, 0.01),  # start of a cycle: 0.1 - 0.045 * 2
        (50, 0.055),  # cos(pi/2) = 0
        (25, 0.0231802),  # cos(pi/4) = 0.7071068: 0.1 - 0.045 * 1.7071068
        (99, 0.0999778),  # cos(0.99 pi) = -0.9995066: 0.1 - 0.045 * 0.0004934
        (100, 0.01),  # restart
        (175, 0.0868198),  # cos(0.75 pi) = -0.7071068: 0.1 - 0.045 * 0.2928932
    ],
)
def test_cosine_eq5(epoch, expected):
    assert corr_coefficient(epoch, "cosine", 0.01, 0.1, 100, 300) == pytest.approx(expected, abs=1e-7)


def test_cosine_rises_monotonically_within_a_cycle():
    values = [corr_coefficient(t, "cosine", 0.0, 0.1, 10, 10) for t in range(10)]
    assert all(b > a for a, b in zip(values, values[1:]))


def test_callback_sets_the_module_coefficient():
    class Trainer:
        current_epoch = 50
        max_epochs = 200

    class Module:
        corr_coeff = -1.0

    module = Module()
    CorrCoefficientScheduler("cosine", 0.0, 0.1, 100).on_train_epoch_start(Trainer(), module)
    assert module.corr_coeff == pytest.approx(0.05)


def test_unknown_scheduler_is_refused():
    with pytest.raises(ValueError, match="unknown scheduler 'step'"):
        corr_coefficient(0, "step", 0.0, 0.1, 100, 10)
