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


# Eq. 5, c(t) = c_max - (c_max - c_min) / 2 · (1 + cos(π (t mod T) / T)), worked out by hand:
# with c_min 0.01, c_max 0.1, T 100 the prefactor is 0.045, and
#   t = 0:   cos 0 = 1             → 0.1 - 0.045 · 2          = 0.01
#   t = 25:  cos(π/4) = 0.7071068  → 0.1 - 0.045 · 1.7071068  = 0.0231802
#   t = 50:  cos(π/2) = 0          → 0.1 - 0.045              = 0.055
#   t = 75:  cos(3π/4) = -0.7071068 → 0.1 - 0.045 · 0.2928932 = 0.0868198
#   t = 99:  cos(0.99π) = -0.9995066 → 0.1 - 0.045 · 0.0004934 = 0.0999778
#   t = 100: restart (t mod T = 0) → 0.01;  t = 175 → as t = 75
@pytest.mark.parametrize(
    "epoch, expected",
    [(0, 0.01), (25, 0.0231802), (50, 0.055), (75, 0.0868198), (99, 0.0999778), (100, 0.01),
     (175, 0.0868198)],
)
def test_cosine_eq5(epoch, expected):
    assert corr_coefficient(epoch, "cosine", 0.01, 0.1, 100, 300) == pytest.approx(expected, abs=1e-7)


# The paper's settings (c_min 0, c_max 0.1, T 100): prefactor 0.05.
#   t = 25 → 0.1 - 0.05 · 1.7071068 = 0.0146447; t = 50 → 0.05; t = 75 → 0.0853553;
#   t = 999 (the last epoch of 1000) → 0.1 - 0.05 · 0.0004934 = 0.0999753
@pytest.mark.parametrize(
    "epoch, expected", [(0, 0.0), (25, 0.0146447), (50, 0.05), (75, 0.0853553), (999, 0.0999753)]
)
def test_cosine_with_the_papers_settings(epoch, expected):
    assert corr_coefficient(epoch, "cosine", 0.0, 0.1, 100, 1000) == pytest.approx(expected, abs=1e-7)


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


def test_negative_epoch_is_refused_with_its_value():
    with pytest.raises(ValueError, match=r"epoch must be >= 0, got -1"):
        corr_coefficient(-1, "linear", 0.0, 1.0, 10, 10)
