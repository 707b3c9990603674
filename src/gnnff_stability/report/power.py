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

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

__all__ = ["design_summary", "main", "paired_mde", "paired_power", "schoenfeld_events", "schoenfeld_mde",
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


def main(argv: Sequence[str]) -> int:
    """``python -m gnnff_stability.report.study power ...``: print a design's minimum detectable effects."""
    parser = argparse.ArgumentParser(prog="python -m gnnff_stability.report.study power",
                                     description="Minimum detectable effects of a design at the given "
                                     "power, and the training seeds a target effect needs.")
    parser.add_argument("--seeds", type=int, required=True, help="training seeds per arm")
    parser.add_argument("--runs-per-seed", type=int, required=True,
                        help="MD runs per trained model compared together (velocity seeds)")
    parser.add_argument("--event-fraction", type=float, required=True,
                        help="the pilot's share of runs that failed, in [0, 1]")
    parser.add_argument("--unstable-share", type=float, default=None,
                        help="the pilot's unstable share (default: the event fraction)")
    parser.add_argument("--sd-share-between", type=float, default=0.0,
                        help="between-model SD of the unstable share (default 0)")
    parser.add_argument("--sd-share-diff", type=float, default=None,
                        help="a pilot's SD of the seed-level paired difference in unstable share "
                        "(method_contrast's sd_unstable_diff); replaces the binomial estimate")
    parser.add_argument("--sd-failure-K", type=float, default=None,
                        help="the pilot's SD of the ramp's failure temperature across models, K")
    parser.add_argument("--target-hr", type=float, default=None, help="a hazard ratio to size for")
    parser.add_argument("--target-share", type=float, default=None,
                        help="a difference in unstable share to size for")
    parser.add_argument("--target-K", type=float, default=None,
                        help="a difference in failure temperature (K) to size for")
    parser.add_argument("--alpha", type=float, default=0.05, help="two-sided test level (default 0.05)")
    parser.add_argument("--power", type=float, default=0.8, help="power (default 0.8)")
    args = parser.parse_args(argv)
    share = args.unstable_share if args.unstable_share is not None else args.event_fraction
    try:
        res = design_summary(seeds=args.seeds, runs_per_seed=args.runs_per_seed,
                             event_fraction=args.event_fraction, unstable_share=share,
                             sd_failure_K=args.sd_failure_K, sd_share_between=args.sd_share_between,
                             target_hr=args.target_hr, target_share=args.target_share,
                             target_K=args.target_K, sd_share_diff=args.sd_share_diff,
                             alpha=args.alpha, power=args.power)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    pw, a = 100 * args.power, args.alpha
    lines = [f"design: {args.seeds} training seeds per arm x {args.runs_per_seed} runs per model, "
             f"two-sided alpha {a:g}, power {pw:g} %",
             f"expected events (both arms): {res['events']:.1f} (event fraction {args.event_fraction:g})",
             f"minimum detectable hazard ratio (Schoenfeld): {res['mde_hr']:.2f} "
             f"(or {1 / res['mde_hr']:.2f} for a harmful effect)" if np.isfinite(res["mde_hr"])
             else "minimum detectable hazard ratio: none (no events expected)",
             f"minimum detectable difference in unstable share (paired t over seeds, SD of a seed's "
             f"difference {res['sd_share_diff']:.3f}): "
             + (f"{res['mde_share']:.3f}" if res["mde_share"] <= 1.0 else
                f"none (a difference of {res['mde_share']:.2f} would be needed; a share moves by at most 1)")]
    if np.isfinite(res["mde_K"]):
        lines.append(f"minimum detectable difference in failure temperature (paired t, SD of a seed's "
                     f"difference {res['sd_K_diff']:.0f} K): {res['mde_K']:.0f} K")
    if "seeds_for_hr" in res:
        lines.append(f"hazard ratio {args.target_hr:g}: {res['events_for_hr']:.0f} events, "
                     f"{res['seeds_for_hr']} training seeds per arm")
    if "seeds_for_share" in res:
        lines.append(f"difference in unstable share {args.target_share:g}: "
                     f"{res['seeds_for_share']} training seeds per arm")
    if "seeds_for_K" in res:
        lines.append(f"difference in failure temperature {args.target_K:g} K: "
                     f"{res['seeds_for_K']} training seeds per arm")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
