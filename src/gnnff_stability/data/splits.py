"""How many frames each split of the reference data gets (pure arithmetic, no I/O).

Shared by :func:`gnnff_stability.config.validate_config`, which refuses a split that leaves the training
set empty before any job starts, and :func:`gnnff_stability.data.reference.split_frames`, which splits.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["split_counts"]


def split_counts(n_frames: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Train, valid and test frame counts of ``n_frames`` frames split by ``fractions``.

    Valid and test get ``round(fraction * n_frames)`` frames (at least one each), train the rest (which
    may come out below 1: the caller decides what that means).
    """
    n_valid = max(1, round(float(fractions[1]) * n_frames))
    n_test = max(1, round(float(fractions[2]) * n_frames))
    return n_frames - n_valid - n_test, n_valid, n_test
