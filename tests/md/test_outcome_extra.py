"""Edges of the crash rules: combined halt bits, the threshold itself, the halt-code range, and the
minimum-distance search at its limits (expected values: hand-built cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnnff_stability.md.outcome import (
    HALT_FORCE,
    HALT_LOST_ATOMS,
    HALT_NONFINITE,
    halt_code,
    halt_crash,
    min_distance_A,
)


def test_halt_bits_add_up():
    assert halt_code(90, 96, float("nan"), 1000.0) == HALT_LOST_ATOMS + HALT_NONFINITE == 5
    assert halt_code(90, 96, 2000.0, 1000.0) == HALT_LOST_ATOMS + HALT_FORCE == 3
    assert halt_code(96, 96, 10.0, 1000.0, finite=False) == HALT_NONFINITE


def test_a_force_at_the_threshold_is_not_a_crash():
    """"above fmax_crash_eV_per_A" is strict: exactly 1000 eV/Å keeps running."""
    assert halt_code(96, 96, 1000.0, 1000.0) == 0
    assert halt_code(96, 96, math.nextafter(1000.0, math.inf), 1000.0) == HALT_FORCE


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5, 6, 7])
def test_every_sum_of_halt_bits_has_a_reason(code):
    crash = halt_crash(40, code, n_atoms=90, n_atoms_initial=96, fmax_eV_per_A=2e3, fmax_crash_eV_per_A=1e3)
    assert crash.step == 40
    assert ("lost atoms: 90 of 96 left" in crash.reason) == bool(code & HALT_LOST_ATOMS)
    assert ("non-finite model energy or forces" in crash.reason) == bool(code & HALT_NONFINITE)
    assert ("max |F| 2000 eV/A above fmax_crash_eV_per_A 1000" in crash.reason) == bool(code & HALT_FORCE)
    assert crash.reason.count("; ") == code.bit_count() - 1


@pytest.mark.parametrize("code", [0, -1, 8, 12])
def test_a_code_that_is_no_sum_of_halt_bits_is_refused(code):
    with pytest.raises(ValueError, match=f"halt code must be a sum of the HALT_\\* bits 1, 2, 4, got {code}"):
        halt_crash(1, code, n_atoms=None, n_atoms_initial=96, fmax_eV_per_A=None, fmax_crash_eV_per_A=1e3)


def test_unknown_counts_read_as_question_marks():
    crash = halt_crash(7, HALT_LOST_ATOMS | HALT_FORCE, n_atoms=None, n_atoms_initial=96,
                       fmax_eV_per_A=None, fmax_crash_eV_per_A=1e3)
    assert crash.reason == "lost atoms: ? of 96 left; max |F| ? eV/A above fmax_crash_eV_per_A 1000"


def test_min_distance_limits():
    cell, pbc = np.eye(3) * 10.0, [True] * 3
    two = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 2.5]])
    assert min_distance_A(two, cell, pbc, 2.0) == pytest.approx(1.5)
    assert min_distance_A(two, cell, pbc, 1.0) == math.inf  # nothing within the search radius
    assert min_distance_A(two, cell, pbc, 0.0) == math.inf  # no search
    assert min_distance_A(two[:1], cell, pbc, 5.0) == math.inf  # one atom (its images are 10 Å away)
    # integer positions and a list cell are converted, not rejected
    assert min_distance_A([[0, 0, 0], [0, 0, 1]], [[4, 0, 0], [0, 4, 0], [0, 0, 4]], (1, 1, 1), 2.0) == 1.0
