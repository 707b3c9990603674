"""A method against the baseline, within the training-seed pairs the arms share, with intervals that hold.

The arms of a study share their training seeds (the data split and order, the start cells and the
velocity seeds), so every contrast is computed within a training-seed pair first and then summarised
over the seeds (:func:`method_contrast`):

- per cell and training seed, each arm's share of unstable runs (``fail`` or ``crash``) and mean S_index
  over its velocity seeds, and their method-minus-baseline difference;
- the mean of those seed-level differences with a 95 % interval (:func:`paired_interval`): the
  t-interval over the seed-level differences (``n - 1`` degrees of freedom). A percentile bootstrap
  over the seeds covers about 76 % instead of 95 % with three seeds and about 90 % with ten
  (``tests/analysis/test_study_coverage.py``); it is available from
  :data:`~gnnff_stability.report.survival.MIN_CLUSTERS` seeds on, never below, and is not the default;
- each arm's unstable share with its Wilson interval; where the seed-level differences in share do not
  vary (every seed gives the same difference, e.g. 0/9 against 0/9) or only one seed is shared, the
  t-interval has no width, and the Newcombe hybrid score interval of the difference of the pooled
  proportions (built from the two Wilson intervals) is reported instead, so no interval of counts has
  zero width.

:func:`failure_temperature_contrast` does the same for the temperature ramp's kinetic failure
temperature (Table S1, one ramp per trained model), :func:`study_table` puts the time-to-failure
endpoint (:mod:`.survival`), the paired contrasts and the minimum detectable effects (:mod:`.power`) in
one table, and :func:`write_study` writes it (CSV and markdown) with the Kaplan-Meier figure.

Command line::

    python -m gnnff_stability.report.study results/study/tables/tableA4.csv corr
    python -m gnnff_stability.report.study results/study/tables/tableA4.csv corr \\
        --config config/study.yaml --out results/study/study      # + study.csv, study.md, km.png
    python -m gnnff_stability.report.study power --seeds 10 --runs-per-seed 3 --event-fraction 0.2 \\
        --unstable-share 0.2 --sd-failure-K 150 --target-hr 0.5 --target-share 0.2 --target-K 100
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnff_stability.families import model_label
from gnnff_stability.settings import MaterialSettings

from .labels import axis_of_config, ratio_axis
from .intervals import hierarchical_bootstrap, newcombe_interval, paired_interval, t_interval, wilson_interval
from .power import paired_mde, schoenfeld_mde, share_sd_diff
from .survival import (
    CELL_KEYS,
    EVENT_CLASSES,
    hazard_ratio,
    kaplan_meier_figure,
    run_endpoints,
)

__all__ = ["contrast_markdown", "failure_temperature_contrast", "hierarchical_bootstrap", "main",
           "method_contrast", "newcombe_interval", "paired_interval", "study_markdown", "study_table",
           "t_interval", "wilson_interval", "write_campaign_study", "write_study"]

_CELL = ["model", "family", "layers", "ratio", "temp_K"]
#: The column of Table S1 read as the ramp's failure temperature (the kinetic temperature, K).
FAILURE_K_COLUMN = "ramp_failure_kinetic_K"


def _check_methods(table: pd.DataFrame, baseline: str, method: str) -> None:
    known = set(table["method"])
    for name in (baseline, method):
        if name not in known:
            raise ValueError(f"method {name!r} has no runs; the table has {sorted(known)}")


def _scored(table_a4: pd.DataFrame) -> pd.DataFrame:
    missing = {"model", "family", "layers", "method", "seed", "ratio", "temp_K", "classification",
               "s_index"} - set(table_a4)
    if missing:
        raise ValueError(f"Table A4 lacks the column(s) {sorted(missing)}")
    runs = table_a4[table_a4["classification"].isin(["stable", *EVENT_CLASSES])].copy()
    runs["unstable"] = runs["classification"].isin(EVENT_CLASSES).astype(float)
    return runs


def method_contrast(table_a4: pd.DataFrame, baseline: str, method: str, *, level: float = 0.95,
                    seed: int = 0, interval: str = "t") -> pd.DataFrame:
    """``method`` against ``baseline`` within training-seed pairs, in every cell both have runs in.

    Parameters
    ----------
    table_a4
        One row per run (``tableA4.csv``): ``model``, ``family``, ``layers``, ``method``, ``seed``
        (training seed), ``ratio``, ``temp_K``, ``classification``, ``s_index``. Runs without a
        classification are left out.
    baseline, method
        Method names.
    level
        Interval level.
    seed
        Seed of the cluster bootstrap (``interval="bootstrap"``, from 10 training seeds on).
    interval
        ``"t"`` or ``"bootstrap"`` (:func:`paired_interval`).

    Returns
    -------
    pandas.DataFrame
        Per cell: ``n_<m>``, ``seeds_<m>``, ``events_<m>`` (runs classified fail or crash),
        ``unstable_<m>`` with its Wilson interval ``unstable_<m>_lo`` / ``_hi``, ``s_index_<m>`` (mean)
        for both methods; ``pairs`` (training seeds with runs in both arms); ``d_unstable`` and
        ``d_s_index``, the mean over those seeds of the method-minus-baseline difference, with
        ``_lo`` / ``_hi`` and ``_how`` (the interval used, module docstring).
    """
    runs = _scored(table_a4)
    _check_methods(runs, baseline, method)
    rng = np.random.default_rng(seed)
    rows = []
    for cell, sub in runs.groupby(_CELL, sort=True):
        parts = {name: sub[sub["method"] == name] for name in (baseline, method)}
        if any(p.empty for p in parts.values()):
            continue
        row: dict[str, Any] = dict(zip(_CELL, cell))
        for name, part in parts.items():
            events = int(part["unstable"].sum())
            row[f"n_{name}"] = len(part)
            row[f"seeds_{name}"] = part["seed"].nunique()
            row[f"events_{name}"] = events
            row[f"unstable_{name}"] = events / len(part)
            row[f"unstable_{name}_lo"], row[f"unstable_{name}_hi"] = wilson_interval(events, len(part), level)
            row[f"s_index_{name}"] = float(part["s_index"].mean())
        by_seed = sub.groupby(["seed", "method"])[["unstable", "s_index"]].mean().unstack("method")
        by_seed = by_seed.dropna(subset=[("unstable", baseline), ("unstable", method)])
        row["pairs"] = len(by_seed)
        for q in ("unstable", "s_index"):
            diffs = (by_seed[(q, method)] - by_seed[(q, baseline)]).to_numpy(dtype=float)
            mean, lo, hi, how = paired_interval(diffs, level=level, method=interval, rng=rng)
            if q == "unstable" and not (np.isfinite(lo) and hi > lo):
                paired = sub[sub["seed"].isin(by_seed.index)]
                k = {name: paired.loc[paired["method"] == name, "unstable"] for name in (baseline, method)}
                lo, hi = newcombe_interval(int(k[method].sum()), len(k[method]),
                                           int(k[baseline].sum()), len(k[baseline]), level)
                how = f"Newcombe (pooled counts; {len(diffs)} seed(s), no seed-to-seed spread)"
            row[f"d_{q}"], row[f"d_{q}_lo"], row[f"d_{q}_hi"], row[f"d_{q}_how"] = mean, lo, hi, how
            row[f"sd_{q}_diff"] = float(np.std(diffs, ddof=1)) if diffs.size > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def failure_temperature_contrast(table_s1: pd.DataFrame, baseline: str, method: str, *,
                                 column: str = FAILURE_K_COLUMN, level: float = 0.95,
                                 seed: int = 0) -> pd.DataFrame:
    """The ramp's failure temperature of ``method`` minus ``baseline``, within training-seed pairs.

    Parameters
    ----------
    table_s1
        One row per trained model (Table S1): ``model``, ``layers``, ``method``, ``seed`` and ``column``
        (the kinetic temperature at the ramp's failure, K; NaN if the ramp survived or is missing).

    Returns
    -------
    pandas.DataFrame
        Per model and depth: ``failed_<m>`` (ramps with a failure temperature), ``failure_K_<m>`` (their
        mean), ``sd_failure_K_<m>`` (SD across models), ``pairs`` (seeds where both arms failed; a ramp
        that survived is censored and its pair is left out), ``d_failure_K`` with ``_lo`` / ``_hi`` /
        ``_how`` (:func:`paired_interval`).
    """
    missing = {"model", "layers", "method", "seed", column} - set(table_s1)
    if missing:
        raise ValueError(f"Table S1 lacks the column(s) {sorted(missing)}")
    _check_methods(table_s1, baseline, method)
    rng = np.random.default_rng(seed)
    rows = []
    for (model, layers), sub in table_s1.groupby(["model", "layers"], sort=True):
        values = sub.pivot_table(index="seed", columns="method", values=column, aggfunc="mean")
        if baseline not in values or method not in values:
            continue
        row: dict[str, Any] = {"model": model, "layers": layers}
        for name in (baseline, method):
            v = values[name].dropna()
            row[f"failed_{name}"] = len(v)
            row[f"failure_K_{name}"] = float(v.mean()) if len(v) else math.nan
            row[f"sd_failure_K_{name}"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
        both = values[[baseline, method]].dropna()
        row["pairs"] = len(both)
        diffs = (both[method] - both[baseline]).to_numpy(dtype=float)
        mean, lo, hi, how = paired_interval(diffs, level=level, rng=rng)
        row.update(d_failure_K=mean, d_failure_K_lo=lo, d_failure_K_hi=hi, d_failure_K_how=how,
                   sd_failure_K_diff=float(np.std(diffs, ddof=1)) if diffs.size > 1 else math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ the study
def study_table(table_a4: pd.DataFrame, baseline: str, methods: Sequence[str], *, dt_fs: float,
                steps_planned: int, table_s1: pd.DataFrame | None = None, level: float = 0.95,
                power: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """The study table: per cell and method, the time-to-failure, the paired contrasts and what the
    design can detect.

    Parameters
    ----------
    table_a4
        One row per run (see :func:`method_contrast`; ``crash_step``, ``fail_step``, ``steps_done`` or
        ``ttf_arena_fraction`` for the time to failure, :func:`~.survival.run_endpoints`).
    baseline, methods
        The reference method and the methods compared with it.
    dt_fs, steps_planned
        ``md.dt_fs`` and ``md.steps``.
    table_s1
        Table S1 (the ramp's failure temperature per model); ``None``: no failure-temperature column.
    level, power
        Interval level and the power of the minimum detectable effects (two-sided, ``1 - level``).

    Returns
    -------
    pandas.DataFrame
        One row per cell and method: the cell keys, ``method``, ``runs_baseline``/``runs_method``,
        ``events_baseline``/``events_method``, ``hr`` [``hr_lo``, ``hr_hi``], ``hr_p``, ``hr_errors``,
        ``hr_note``; ``d_failure_K`` [..], ``d_unstable`` [..], ``d_s_index`` [..] with their ``_how``;
        ``pairs``; ``mde_hr`` (Schoenfeld, from the cell's observed events), ``mde_unstable`` and
        ``mde_failure_K`` (paired t over the cell's seed pairs, from the observed SD of the seed-level
        differences; for the share at least that of :func:`~.power.share_sd_diff` at the pooled rate).
    """
    endpoints = run_endpoints(table_a4, dt_fs=dt_fs, steps_planned=steps_planned)
    alpha = 1.0 - level
    rows = []
    for method in methods:
        contrast = method_contrast(table_a4, baseline, method, level=level, seed=seed)
        temps = (failure_temperature_contrast(table_s1, baseline, method, level=level, seed=seed)
                 if table_s1 is not None else pd.DataFrame())
        for c in contrast.to_dict("records"):
            cell = endpoints
            for key in CELL_KEYS:
                cell = cell[cell[key] == c[key]]
            hr = hazard_ratio(cell, baseline, method, level=level)
            row: dict[str, Any] = {k: c[k] for k in _CELL}
            row["method"] = method
            row["baseline"] = baseline
            row.update(runs_baseline=hr[f"runs_{baseline}"], runs_method=hr[f"runs_{method}"],
                       events_baseline=hr[f"events_{baseline}"], events_method=hr[f"events_{method}"],
                       hr=hr["hr"], hr_lo=hr["hr_lo"], hr_hi=hr["hr_hi"], hr_p=hr["p"],
                       hr_errors=hr["errors"], hr_note=hr["note"], pairs=c["pairs"])
            for q in ("unstable", "s_index"):
                for suffix in ("", "_lo", "_hi", "_how"):
                    row[f"d_{q}{suffix}"] = c[f"d_{q}{suffix}"]
            trow = (temps[(temps["model"] == c["model"]) & (temps["layers"] == c["layers"])]
                    if len(temps) else temps)
            t = trow.iloc[0].to_dict() if len(trow) else {}
            for suffix in ("", "_lo", "_hi", "_how"):
                row[f"d_failure_K{suffix}"] = t.get(f"d_failure_K{suffix}", math.nan if suffix != "_how" else "")
            events = row["events_baseline"] + row["events_method"]
            row["mde_hr"] = schoenfeld_mde(events, alpha=alpha, power=power)
            n_pairs = int(c["pairs"])
            pooled = events / max(1, row["runs_baseline"] + row["runs_method"])
            per_seed = max(1, round(row["runs_baseline"] / max(1, c[f"seeds_{baseline}"])))
            sd_share = max(np.nan_to_num(c["sd_unstable_diff"]), share_sd_diff(pooled, per_seed))
            row["mde_unstable"] = (paired_mde(n_pairs, sd_share, alpha=alpha, power=power)
                                   if n_pairs >= 2 and sd_share > 0 else math.nan)
            sd_k = t.get("sd_failure_K_diff", math.nan)
            row["mde_failure_K"] = (paired_mde(int(t["pairs"]), sd_k, alpha=alpha, power=power)
                                    if t and t["pairs"] >= 2 and np.isfinite(sd_k) and sd_k > 0 else math.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def _ci(value: float, lo: float, hi: float, fmt: str) -> str:
    if not np.isfinite(value):
        return "—"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return format(value, fmt)
    return f"{format(value, fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def study_markdown(table: pd.DataFrame, *, axis: str) -> str:
    """The study table (:func:`study_table`) as markdown; the ratio column headed by ``axis``
    (:func:`~.labels.ratio_axis`, ``"Hf:O"``)."""
    head = ["model", axis, "T K", "arms", "runs", "events", "HR [95 %]", "Δ failure T K [95 %]",
            "Δ unstable [95 %]", "ΔS [95 %]", "MDE (HR / Δ unstable / Δ T K)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        hr = _ci(r["hr"], r["hr_lo"], r["hr_hi"], ".2f") if np.isfinite(r["hr"]) else (r["hr_note"] or "—")
        if np.isfinite(r["hr_p"]):
            hr += f" (p {r['hr_p']:.2g})"
        mde = " / ".join(_ci(v, math.nan, math.nan, f) for v, f in (
            (r["mde_hr"], ".2f"), (r["mde_unstable"], ".2f"), (r["mde_failure_K"], ".0f")))
        lines.append("| " + " | ".join([
            f"{model_label(r['model'], r['family'])} L{int(r['layers'])}", f"1:{float(r['ratio']):g}",
            f"{int(r['temp_K'])}", f"{r['baseline']} / {r['method']}",
            f"{r['runs_baseline']} / {r['runs_method']}", f"{r['events_baseline']} / {r['events_method']}",
            hr, _ci(r["d_failure_K"], r["d_failure_K_lo"], r["d_failure_K_hi"], "+.0f"),
            _ci(r["d_unstable"], r["d_unstable_lo"], r["d_unstable_hi"], "+.2f"),
            _ci(r["d_s_index"], r["d_s_index_lo"], r["d_s_index_hi"], "+.3f"), mde]) + " |")
    note = ("HR: hazard ratio of failure (method / baseline), Cox model stratified by training seed, "
            "p from its likelihood-ratio test. Δ: method minus baseline, the mean over training-seed "
            "pairs of the within-pair difference; intervals t-based over the seed pairs "
            "(Newcombe on pooled counts where the seed differences do not vary). MDE: the effect "
            "detectable with 80 % power at this design (gnnff_stability.report.power).")
    return "\n".join(lines) + "\n\n" + note


def write_study(table_a4: pd.DataFrame, baseline: str, methods: Sequence[str],
                out: str | Path | Mapping[str, str | Path], *, axis: str, dt_fs: float, steps_planned: int,
                table_s1: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write ``study.csv``, ``study.md`` and ``km.png`` (Kaplan-Meier per arm and cell).

    ``out`` is a folder (the three files go in it) or the declared file of each, by name ``csv``,
    ``md``, ``km`` (a rule's ``output``: :data:`gnnff_stability.paths.STUDY_FILES`). ``axis`` labels the
    ratio (:func:`~.labels.ratio_axis`, ``"Hf:O"``).
    """
    if isinstance(out, Mapping):
        missing = sorted({"csv", "md", "km"} - set(out))
        if missing:
            raise ValueError(f"no output file given for {missing}; expected csv, md and km")
        paths = {k: Path(out[k]) for k in ("csv", "md", "km")}
    else:
        paths = {"csv": Path(out) / "study.csv", "md": Path(out) / "study.md", "km": Path(out) / "km.png"}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    table = study_table(table_a4, baseline, methods, dt_fs=dt_fs, steps_planned=steps_planned,
                        table_s1=table_s1)
    table.to_csv(paths["csv"], index=False)
    paths["md"].write_text("## Study table\n\n" + study_markdown(table, axis=axis) + "\n")
    endpoints = run_endpoints(table_a4, dt_fs=dt_fs, steps_planned=steps_planned)
    kaplan_meier_figure(endpoints, paths["km"], axis=axis, methods=[baseline, *methods])
    return paths


def write_campaign_study(table_a4: str | Path, table_s1: str | Path | None, outputs: Mapping[str, str | Path], *,
                         arms: Sequence[Any], md: Mapping[str, Any],
                         material: MaterialSettings) -> dict[str, Path]:
    """:func:`write_study` from a campaign's table files (the ``study_report`` rule).

    Parameters
    ----------
    table_a4, table_s1
        The campaign's ``tableA4.csv`` and ``tableS1.csv`` (``None`` or an empty Table S1: no
        failure-temperature column).
    outputs
        The declared ``csv``, ``md`` and ``km`` files.
    arms
        ``(baseline, [methods])`` (:func:`gnnff_stability.grid.study_arms`).
    md
        The ``md`` block (``dt_fs``, ``steps``: the time axis and the censoring time).
    material
        The material whose OOD axis labels the ratio.
    """
    baseline, methods = arms[0], list(arms[1])
    s1 = None
    if table_s1 is not None:
        s1 = pd.read_csv(table_s1)
        if s1.empty or "ramp_failure_kinetic_K" not in s1.columns:
            s1 = None
    return write_study(pd.read_csv(table_a4), baseline, methods, outputs, axis=ratio_axis(material),
                       dt_fs=float(md["dt_fs"]), steps_planned=int(md["steps"]), table_s1=s1)


def contrast_markdown(table: pd.DataFrame, baseline: str, method: str, *, axis: str) -> str:
    """A readable markdown table of :func:`method_contrast`'s output; the ratio column headed by ``axis``."""
    head = ["model", axis, "T K", f"runs (seeds) {baseline} / {method}", f"unstable {baseline} [95 %]",
            f"unstable {method} [95 %]", "Δ unstable [95 %]", f"S {baseline}", f"S {method}", "ΔS [95 %]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        lines.append("| " + " | ".join([
            f"{model_label(r['model'], r['family'])} L{int(r['layers'])}",
            f"1:{float(r['ratio']):g}", f"{int(r['temp_K'])}",
            f"{r[f'n_{baseline}']} ({r[f'seeds_{baseline}']}) / {r[f'n_{method}']} ({r[f'seeds_{method}']})",
            _ci(r[f"unstable_{baseline}"], r[f"unstable_{baseline}_lo"], r[f"unstable_{baseline}_hi"], ".2f"),
            _ci(r[f"unstable_{method}"], r[f"unstable_{method}_lo"], r[f"unstable_{method}_hi"], ".2f"),
            _ci(r["d_unstable"], r["d_unstable_lo"], r["d_unstable_hi"], "+.2f"),
            f"{r[f's_index_{baseline}']:.3f}", f"{r[f's_index_{method}']:.3f}",
            _ci(r["d_s_index"], r["d_s_index_lo"], r["d_s_index_hi"], "+.3f"),
        ]) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ command line
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "power":
        from .power import main as power_main  # noqa: PLC0415

        return power_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="'power --help' sizes a study.")
    parser.add_argument("table_a4", type=Path, help="a campaign's tableA4.csv")
    parser.add_argument("method", help="the method to compare")
    parser.add_argument("--baseline", default="baseline", help="the reference method (default: baseline)")
    parser.add_argument("--dt-fs", type=float, default=None,
                        help="the campaign's md.dt_fs (the time axis of the time to failure; with --out)")
    parser.add_argument("--steps", type=int, default=None,
                        help="the campaign's md.steps (the censoring time of a stable run; with --out)")
    parser.add_argument("--out", type=Path, default=None,
                        help="a folder for study.csv, study.md and km.png (needs --dt-fs and --steps)")
    parser.add_argument("--table-s1", type=Path, default=None,
                        help="the campaign's tableS1.csv (the ramp's failure temperature)")
    parser.add_argument("--config", type=Path, default=None,
                        help="the campaign's configuration (its material names the ratio axis; default 'ratio')")
    args = parser.parse_args(argv)
    axis = axis_of_config(args.config)
    if not args.table_a4.exists():
        raise SystemExit(f"{args.table_a4} does not exist: run the campaign (make_tables) first")
    table_a4 = pd.read_csv(args.table_a4)
    table = method_contrast(table_a4, args.baseline, args.method)
    sys.stdout.write(contrast_markdown(table, args.baseline, args.method, axis=axis) + "\n")
    if args.out is not None:
        if args.dt_fs is None or args.steps is None:
            raise SystemExit("--out needs --dt-fs and --steps (the campaign's md.dt_fs and md.steps)")
        s1 = pd.read_csv(args.table_s1) if args.table_s1 is not None else None
        paths = write_study(table_a4, args.baseline, [args.method], args.out, axis=axis, dt_fs=args.dt_fs,
                            steps_planned=args.steps, table_s1=s1)
        sys.stdout.write("\n" + paths["md"].read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
