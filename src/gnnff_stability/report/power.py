"""How large an effect a study can see, and how many training seeds a target effect needs.

Three endpoints, two-sided tests at level ``alpha``, power ``power``:

- **Hazard ratio** (time to failure): Schoenfeld's formula. A comparison of two arms with allocation
  fraction ``a`` (0.5 for equal arms) needs ``D = (z_{1-alpha/2} + z_{power})^2 / (a (1-a) ln(HR)^2)``
  events; a study that expects ``D`` events detects ``HR = exp(-(z_{1-alpha/2} + z_{power}) /
  sqrt(a (1-a) D))`` (a protective effect; its inverse for a harmful one). The expected events are
  ``2 x seeds x runs_per_seed x event_fraction``. The formula treats runs as independent; runs of one
  model are not, so read it as the best case.
- **Difference in unstable share and in failure temperature**: a paired t-test over training seeds, as
  the study's intervals are computed (:func:`gnnff_stability.report.study.paired_interval`). With ``n``
  seeds and ``sd_diff`` the SD of one seed's method-minus-baseline difference, the detectable difference
  ``delta`` solves ``P(|T| > t_{1-alpha/2, n-1}) = power`` for ``T`` non-central t with ``n - 1`` degrees of
  freedom and non-centrality ``delta sqrt(n) / sd_diff`` (SciPy's ``nct``).
- The SD of a seed's difference in unstable share, from a pilot rate ``p`` with ``m`` runs per seed and
  a between-model SD ``tau`` of the share: ``sqrt(2 p (1-p) / m + 2 tau^2)`` (two independent arms; a
  pairing that correlates them shrinks it). The SD of a difference in failure temperature from the SD
  ``s`` of one arm's failure temperature across models: ``sqrt(2) s`` (again without the pairing's
  help).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, stats

__all__ = ["design_summary", "paired_mde", "paired_power", "schoenfeld_events", "schoenfeld_mde",
           "seeds_needed", "share_sd_diff", "temperature_sd_diff"]


def _check(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1), got {power}")


def schoenfeld_events(hr: float, *, alpha: float = 0.05, power: float = 0.8,
                      allocation: float = 0.5) -> float:
    """Events a two-arm comparison needs to detect hazard ratio ``hr`` (Schoenfeld's formula)."""
    _check(alpha, power)
    if not (hr > 0 and hr != 1):
        raise ValueError(f"the hazard ratio must be positive and not 1, got {hr}")
    if not 0.0 < allocation < 1.0:
        raise ValueError(f"allocation must lie in (0, 1), got {allocation}")
    z = stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power)
    return float(z**2 / (allocation * (1.0 - allocation) * math.log(hr) ** 2))


def schoenfeld_mde(events: float, *, alpha: float = 0.05, power: float = 0.8,
                   allocation: float = 0.5) -> float:
    """The smallest protective hazard ratio (< 1) ``events`` events detect; NaN for no events."""
    _check(alpha, power)
    if not events > 0:
        return math.nan
    z = stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power)
    return float(math.exp(-z / math.sqrt(allocation * (1.0 - allocation) * events)))


def paired_power(delta: float, n_seeds: int, sd_diff: float, *, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test over ``n_seeds`` seed-level differences of SD ``sd_diff``
    when the true mean difference is ``delta``."""
    if n_seeds < 2:
        raise ValueError(f"a paired t-test needs at least 2 training seeds, got {n_seeds}")
    if not sd_diff > 0:
        raise ValueError(f"sd_diff must be > 0, got {sd_diff}")
    df = n_seeds - 1
    crit = stats.t.ppf(1.0 - alpha / 2.0, df)
    nc = delta * math.sqrt(n_seeds) / sd_diff
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def paired_mde(n_seeds: int, sd_diff: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference (> 0, in the unit of ``sd_diff``) the paired t-test over ``n_seeds``
    seeds detects with probability ``power``."""
    _check(alpha, power)
    if paired_power(0.0, n_seeds, sd_diff, alpha=alpha) >= power:
        return 0.0
    # a bracket of non-centralities a few units wide: SciPy's nct is NaN far out in its tail
    crit = stats.t.ppf(1.0 - alpha / 2.0, n_seeds - 1)
    hi = (crit + stats.norm.ppf(power) + 1.0) * sd_diff / math.sqrt(n_seeds)
    while paired_power(hi, n_seeds, sd_diff, alpha=alpha) < power:
        hi *= 2.0
    return float(optimize.brentq(lambda d: paired_power(d, n_seeds, sd_diff, alpha=alpha) - power,
                                 0.0, hi, xtol=1e-10 * sd_diff))


def seeds_needed(delta: float, sd_diff: float, *, alpha: float = 0.05, power: float = 0.8,
                 max_seeds: int = 100_000) -> int:
    """The fewest training seeds (>= 2) whose paired t-test detects ``delta`` with probability ``power``."""
    _check(alpha, power)
    if delta == 0:
        raise ValueError("a target difference of 0 cannot be detected; give a non-zero difference")
    n = 2
    while paired_power(abs(delta), n, sd_diff, alpha=alpha) < power:
        n += 1
        if n > max_seeds:
            raise ValueError(f"more than {max_seeds} training seeds are needed for {delta}")
    return n


def share_sd_diff(rate: float, runs_per_seed: int, sd_between: float = 0.0) -> float:
    """SD of one seed's difference in unstable share (module docstring)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"the pilot's unstable share must lie in [0, 1], got {rate}")
    if runs_per_seed < 1:
        raise ValueError(f"runs_per_seed must be >= 1, got {runs_per_seed}")
    return float(math.sqrt(2.0 * rate * (1.0 - rate) / runs_per_seed + 2.0 * sd_between**2))


def temperature_sd_diff(sd_failure_K: float) -> float:
    """SD of one seed's difference in failure temperature from one arm's SD across models, K."""
    return float(math.sqrt(2.0) * sd_failure_K)


def design_summary(*, seeds: int, runs_per_seed: int, event_fraction: float, unstable_share: float,
                   sd_failure_K: float | None = None, sd_share_between: float = 0.0,
                   target_hr: float | None = None, target_share: float | None = None,
                   target_K: float | None = None, sd_share_diff: float | None = None,
                   alpha: float = 0.05, power: float = 0.8) -> dict[str, Any]:
    """Minimum detectable effects of a design and, for each target given, the training seeds it needs.

    Parameters
    ----------
    seeds, runs_per_seed
        Training seeds per arm and MD runs per trained model (velocity seeds x cells compared together).
    event_fraction
        The pilot's share of runs that failed (time-to-failure events), in [0, 1].
    unstable_share
        The pilot's unstable share (for the SD of a seed's difference).
    sd_failure_K
        The pilot's SD of the ramp's failure temperature across models of one arm, K.
    sd_share_between
        Between-model SD of the unstable share.
    target_hr, target_share, target_K
        Effects to size the study for: a hazard ratio, a difference in unstable share, a difference in
        failure temperature (K).
    sd_share_diff
        The SD of a seed's paired difference in unstable share measured by a pilot
        (``sd_unstable_diff`` of :func:`gnnff_stability.report.study.method_contrast`); it replaces the
        one derived from ``unstable_share`` and ``sd_share_between``, and carries the pairing's help.

    Returns
    -------
    dict
        ``events`` (expected), ``mde_hr``, ``mde_share``, ``mde_K`` (NaN where not computable) and
        ``seeds_for_hr``, ``seeds_for_share``, ``seeds_for_K`` for the targets given.
    """
    if seeds < 2:
        raise ValueError(f"seeds must be >= 2 for a paired comparison, got {seeds}")
    if not 0.0 <= event_fraction <= 1.0:
        raise ValueError(f"event_fraction must lie in [0, 1], got {event_fraction}")
    events = 2.0 * seeds * runs_per_seed * event_fraction
    sd_share = (float(sd_share_diff) if sd_share_diff is not None
                else share_sd_diff(unstable_share, runs_per_seed, sd_share_between))
    sd_K = temperature_sd_diff(sd_failure_K) if sd_failure_K is not None else math.nan
    out: dict[str, Any] = {
        "seeds": seeds, "runs_per_seed": runs_per_seed, "alpha": alpha, "power": power,
        "events": events, "mde_hr": schoenfeld_mde(events, alpha=alpha, power=power),
        "sd_share_diff": sd_share,
        "mde_share": paired_mde(seeds, sd_share, alpha=alpha, power=power) if sd_share > 0 else math.nan,
        "sd_K_diff": sd_K,
        "mde_K": paired_mde(seeds, sd_K, alpha=alpha, power=power) if sd_K > 0 else math.nan,
    }
    if target_hr is not None:
        if not event_fraction > 0:
            raise ValueError("a pilot with no event cannot size a hazard-ratio study: give event_fraction > 0")
        need = schoenfeld_events(target_hr, alpha=alpha, power=power)
        out["events_for_hr"] = need
        out["seeds_for_hr"] = int(np.ceil(need / (2.0 * runs_per_seed * event_fraction)))
    if target_share is not None:
        out["seeds_for_share"] = seeds_needed(target_share, sd_share, alpha=alpha, power=power)
    if target_K is not None:
        if not sd_K > 0:
            raise ValueError("give sd_failure_K > 0 to size a failure-temperature study")
        out["seeds_for_K"] = seeds_needed(target_K, sd_K, alpha=alpha, power=power)
    return out
