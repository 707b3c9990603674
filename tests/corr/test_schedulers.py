"""Correlation-coefficient schedules at chosen epochs against their closed forms."""

from __future__ import annotations

import math

import pytest

from gnnff_stability.schedulers import CorrCoefficientScheduler, corr_coefficient


@pytest.mark.parametrize("epoch", [0, 1, 7, 99, 250])
def test_fixed_is_c_max(epoch):
    assert corr_coefficient(epoch, "fixed", c_min=0.02, c_max=0.1) == 0.1


@pytest.mark.parametrize(
    "epoch, expected",
    [(0, 0.0), (5, 0.05), (10, 0.1), (15, 0.1)],  # c_min 0 -> c_max 0.1 over 11 epochs
)
def test_linear(epoch, expected):
    assert corr_coefficient(epoch, "linear", 0.0, 0.1, max_epochs=11) == pytest.approx(expected)


def test_linear_single_epoch_is_c_max():
    assert corr_coefficient(0, "linear", 0.0, 0.1, max_epochs=1) == 0.1


@pytest.mark.parametrize(
    "epoch, expected",
    [
        (0, 0.01),  # start of a cycle: c_min
        (50, 0.01 + 0.09 / 2),  # half a cycle: midpoint
        (25, 0.1 - 0.09 / 2 * (1 + math.cos(math.pi / 4))),
        (99, 0.1 - 0.09 / 2 * (1 + math.cos(math.pi * 0.99))),  # just before the restart
        (100, 0.01),  # restart
        (175, 0.1 - 0.09 / 2 * (1 + math.cos(math.pi * 0.75))),
    ],
)
def test_cosine_eq5(epoch, expected):
    assert corr_coefficient(epoch, "cosine", 0.01, 0.1, t_cycle=100) == pytest.approx(expected)


def test_cosine_rises_monotonically_within_a_cycle():
    values = [corr_coefficient(t, "cosine", 0.0, 0.1, t_cycle=10) for t in range(10)]
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


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(scheduler="step"), "scheduler"),
        (dict(scheduler="cosine", c_min=0.2, c_max=0.1), "c_min"),
        (dict(scheduler="cosine", c_min=-0.1), "c_min"),
        (dict(scheduler="cosine", t_cycle=0), "t_cycle"),
    ],
)
def test_bad_schedules_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        corr_coefficient(0, **kwargs)
