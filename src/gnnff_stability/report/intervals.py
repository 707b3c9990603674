"""Interval estimators of the study: t over seed-level differences, a cluster bootstrap, Wilson and
Newcombe for counts (SciPy), and the hierarchical bootstrap the study used before (kept to show that
it under-covers, ``tests/analysis/test_study_coverage.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .survival import MIN_CLUSTERS

__all__ = ["hierarchical_bootstrap", "newcombe_interval", "paired_interval", "t_interval", "wilson_interval"]


def hierarchical_bootstrap(values: pd.Series, groups: pd.Series, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap means of ``values``: draw the groups with replacement, then the values of
    each drawn group with replacement, and average all drawn values (groups of equal size weigh
    equally). Kept to show its failure: over three groups its percentile interval under-covers."""
    by_group = [np.asarray(v, dtype=float) for _, v in values.groupby(groups.to_numpy())]
    if not by_group:
        return np.full(n_boot, np.nan)
    out = np.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(0, len(by_group), size=len(by_group))
        draws = [g[rng.integers(0, g.size, size=g.size)] for g in (by_group[k] for k in picked)]
        out[b] = np.concatenate(draws).mean()
    return out


# ------------------------------------------------------------------------------------------ intervals
def t_interval(diffs: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and t-interval of the mean along the last axis (``n - 1`` degrees of freedom).

    Parameters
    ----------
    diffs
        Seed-level differences, shape [..., n] with n >= 2.

    Returns
    -------
    mean, lo, hi
        Arrays of shape [...].
    """
    x = np.asarray(diffs, dtype=float)
    n = x.shape[-1]
    if n < 2:
        raise ValueError(f"a t-interval needs at least 2 values, got {n}")
    mean = x.mean(axis=-1)
    half = stats.t.ppf(0.5 + level / 2.0, n - 1) * x.std(axis=-1, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_interval(diffs: np.ndarray, *, level: float = 0.95, method: str = "t", n_boot: int = 4000,
                    rng: np.random.Generator | None = None) -> tuple[float, float, float, str]:
    """Mean of seed-level paired differences with its interval.

    Parameters
    ----------
    diffs
        One method-minus-baseline difference per training seed, shape [n]; non-finite values are left out.
    level
        Interval level.
    method
        ``"t"`` (default): the t-interval (``n - 1`` degrees of freedom). ``"bootstrap"``: the percentile
        cluster bootstrap (the seeds drawn with replacement), allowed only from
        :data:`~gnnff_stability.report.survival.MIN_CLUSTERS` seeds on; even there it covers about 90 %
        at a nominal 95 % (``tests/analysis/test_study_coverage.py``), so the t-interval stays the default.
    n_boot, rng
        Bootstrap draws and generator (``method="bootstrap"`` only).

    Returns
    -------
    mean, lo, hi, how
        ``how`` names the interval (``"t, n seeds"``, ``"cluster bootstrap, n seeds"``); ``lo``/``hi``
        are NaN for fewer than 2 finite differences.
    """
    if method not in ("t", "bootstrap"):
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
    x = np.asarray(diffs, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, math.nan, "no seed pair"
    if n < 2:
        return float(x[0]), math.nan, math.nan, "1 seed"
    if method == "t":
        mean, lo, hi = t_interval(x, level)
        return float(mean), float(lo), float(hi), f"t, {n} seeds"
    if n < MIN_CLUSTERS:
        raise ValueError(f"a cluster bootstrap needs at least {MIN_CLUSTERS} training seeds, got {n}; "
                         "use method='t'")
    rng = rng if rng is not None else np.random.default_rng(0)
    boots = x[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return (float(x.mean()), float(np.quantile(boots, alpha)), float(np.quantile(boots, 1.0 - alpha)),
            f"cluster bootstrap, {n} seeds")


def wilson_interval(count: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``count / n`` (SciPy); NaN for ``n = 0``."""
    if n <= 0:
        return math.nan, math.nan
    ci = stats.binomtest(int(count), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def newcombe_interval(count1: int, n1: int, count0: int, n0: int, level: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``count1/n1 - count0/n0``, from the two Wilson intervals."""
    p1, p0 = count1 / n1, count0 / n0
    l1, u1 = wilson_interval(count1, n1, level)
    l0, u0 = wilson_interval(count0, n0, level)
    d = p1 - p0
    return (float(d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)),
            float(d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)))


# ------------------------------------------------------------------------------------------ contrasts
