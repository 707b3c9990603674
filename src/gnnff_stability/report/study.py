"""A method against the baseline, cell by cell, with intervals that respect the training seeds.

Table 2's intervals resample a cell's runs as if they were independent. Runs that share a trained model
(one training seed, several velocity seeds) are not: the model, not the velocities, decides most of
what happens. :func:`method_contrast` therefore resamples hierarchically (training seeds with
replacement, then the runs of each drawn seed with replacement) and reports, per cell, each method's
share of unstable runs (``fail`` or ``crash``) and mean S_index, and the method-minus-baseline
difference of both with a 95 % percentile interval. With three training seeds the intervals are wide;
they say how much the data can resolve, which is the point.

``python -m gnnff_stability.report.study results/tables/tableA4.csv corr`` prints the comparison
(markdown) for a campaign's Table A4.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gnnff_stability.families import model_label

__all__ = ["contrast_markdown", "hierarchical_bootstrap", "main", "method_contrast"]

_CELL = ["model", "family", "layers", "ratio", "temp_K"]


def hierarchical_bootstrap(values: pd.Series, groups: pd.Series, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap means of ``values``: draw the groups with replacement, then the values of
    each drawn group with replacement, and average all drawn values (groups of equal size weigh
    equally)."""
    by_group = [np.asarray(v, dtype=float) for _, v in values.groupby(groups.to_numpy())]
    if not by_group:
        return np.full(n_boot, np.nan)
    out = np.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(0, len(by_group), size=len(by_group))
        draws = [g[rng.integers(0, g.size, size=g.size)] for g in (by_group[k] for k in picked)]
        out[b] = np.concatenate(draws).mean()
    return out


def method_contrast(table_a4: pd.DataFrame, baseline: str, method: str, *, n_boot: int = 2000,
                    seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """``method`` against ``baseline`` in every cell both have runs in.

    Parameters
    ----------
    table_a4
        One row per run (``tableA4.csv``): ``model``, ``layers``, ``method``, ``seed`` (training seed),
        ``ratio``, ``temp_K``, ``classification``, ``s_index``. Runs without a classification are left
        out.
    baseline, method
        Method names.

    Returns
    -------
    pandas.DataFrame
        Per cell: ``n_<m>`` and ``seeds_<m>`` (runs, training seeds), ``unstable_<m>`` (share of runs
        classified fail or crash), ``s_index_<m>`` (mean) for both methods; ``d_unstable`` and
        ``d_s_index`` (method minus baseline) with ``_lo`` / ``_hi``, the hierarchical bootstrap's
        percentile interval.
    """
    missing = {"model", "family", "layers", "method", "seed", "ratio", "temp_K", "classification", "s_index"} - set(table_a4)
    if missing:
        raise ValueError(f"Table A4 lacks the column(s) {sorted(missing)}")
    known = set(table_a4["method"])
    for name in (baseline, method):
        if name not in known:
            raise ValueError(f"method {name!r} has no runs; the table has {sorted(known)}")
    runs = table_a4[table_a4["classification"].isin(["stable", "fail", "crash"])].copy()
    runs["unstable"] = (runs["classification"] != "stable").astype(float)
    rng = np.random.default_rng(seed)
    alpha = (1.0 - level) / 2.0
    rows = []
    for cell, sub in runs.groupby(_CELL, sort=True):
        parts = {name: sub[sub["method"] == name] for name in (baseline, method)}
        if any(p.empty for p in parts.values()):
            continue
        row = dict(zip(_CELL, cell))
        boots = {}
        for name, part in parts.items():
            row[f"n_{name}"] = len(part)
            row[f"seeds_{name}"] = part["seed"].nunique()
            for q in ("unstable", "s_index"):
                row[f"{q}_{name}"] = float(part[q].mean())
                boots[(name, q)] = hierarchical_bootstrap(part[q], part["seed"], n_boot, rng)
        for q in ("unstable", "s_index"):
            diff = boots[(method, q)] - boots[(baseline, q)]
            row[f"d_{q}"] = row[f"{q}_{method}"] - row[f"{q}_{baseline}"]
            row[f"d_{q}_lo"], row[f"d_{q}_hi"] = (float(np.quantile(diff, alpha)),
                                                   float(np.quantile(diff, 1.0 - alpha)))
        rows.append(row)
    return pd.DataFrame(rows)


def contrast_markdown(table: pd.DataFrame, baseline: str, method: str) -> str:
    """A readable markdown table of :func:`method_contrast`'s output."""
    head = ["model", "Hf:O", "T K", f"runs (seeds) {baseline} / {method}", f"unstable {baseline}",
            f"unstable {method}", "Δ unstable [95 %]", f"S {baseline}", f"S {method}", "ΔS [95 %]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        lines.append("| " + " | ".join([
            f"{model_label(r['model'], r['family'])} L{int(r['layers'])}",
            f"1:{float(r['ratio']):g}", f"{int(r['temp_K'])}",
            f"{r[f'n_{baseline}']} ({r[f'seeds_{baseline}']}) / {r[f'n_{method}']} ({r[f'seeds_{method}']})",
            f"{r[f'unstable_{baseline}']:.2f}", f"{r[f'unstable_{method}']:.2f}",
            f"{r['d_unstable']:+.2f} [{r['d_unstable_lo']:+.2f}, {r['d_unstable_hi']:+.2f}]",
            f"{r[f's_index_{baseline}']:.3f}", f"{r[f's_index_{method}']:.3f}",
            f"{r['d_s_index']:+.3f} [{r['d_s_index_lo']:+.3f}, {r['d_s_index_hi']:+.3f}]",
        ]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table_a4", type=Path, help="a campaign's tableA4.csv")
    parser.add_argument("method", help="the method to compare")
    parser.add_argument("--baseline", default="baseline", help="the reference method (default: baseline)")
    args = parser.parse_args(argv)
    if not args.table_a4.exists():
        raise SystemExit(f"{args.table_a4} does not exist: run the campaign (make_tables) first")
    table = method_contrast(pd.read_csv(args.table_a4), args.baseline, args.method)
    sys.stdout.write(contrast_markdown(table, args.baseline, args.method) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
