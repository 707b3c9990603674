"""The classification of every run at a glance: a figure (a grid coloured stable / fail / crash) and
one summary line per run for the console.

Rows are trained models (model, layers, method), columns are cells and temperatures (ratio, T_set);
a cell of several runs (seeds, vacancy draws, velocity seeds) shows the share of each class.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnff_stability.families import model_label

from .labels import axis_of_config, ratio_label

__all__ = ["CLASS_COLOURS", "outcome_grid", "run_summary_lines"]

logger = logging.getLogger(__name__)

#: Colour of each classification (and of a run with no result yet).
CLASS_COLOURS: dict[str, tuple[float, float, float]] = {
    "stable": (0.30, 0.69, 0.29),
    "fail": (1.00, 0.60, 0.00),
    "crash": (0.84, 0.15, 0.16),
    "missing": (0.85, 0.85, 0.85),
}


def outcome_grid(res: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray, list[list[str]]]:
    """The classification grid of collected results.

    Parameters
    ----------
    res
        :func:`gnnff_stability.report.collect.collect_results` output (``classification`` NaN where a
        run has no score).

    Returns
    -------
    rows, columns, colours, labels
        Row labels (model L method), column labels (``1:<ratio>, <T> K``), an RGB array ``[n_rows, n_cols, 3]``
        mixing the class colours by the share of runs in each class, and the cell texts
        (``"stable"``, ``"crash 2/3"``, ...).
    """
    keys = res[["model", "layers", "method", "family"]].drop_duplicates(["model", "layers", "method"]).sort_values(
        ["model", "layers", "method"])
    cols = res[["ratio", "temp_K"]].drop_duplicates().sort_values(["temp_K", "ratio"])
    rows = [f"{model_label(m, fam)} L{int(layer)} {meth}" for m, layer, meth, fam in keys.itertuples(index=False)]
    columns = [f"1:{float(r):g}, {int(t)} K" for r, t in cols.itertuples(index=False)]
    colours = np.zeros((len(rows), len(columns), 3))
    labels: list[list[str]] = []
    for i, (model, layers, method, _) in enumerate(keys.itertuples(index=False)):
        line = []
        for j, (ratio, temp) in enumerate(cols.itertuples(index=False)):
            sel = (res["model"] == model) & (res["layers"] == layers) & (res["method"] == method)
            sel &= (res["ratio"] == ratio) & (res["temp_K"] == temp)
            classes = [c if isinstance(c, str) else "missing" for c in res.loc[sel, "classification"]]
            if not classes:  # a cell the grid does not run for this model (grid.exclude)
                colours[i, j] = (1.0, 1.0, 1.0)
                line.append("not in grid")
                continue
            counts = {c: classes.count(c) for c in CLASS_COLOURS if c in classes}
            n = max(len(classes), 1)
            colours[i, j] = sum(np.array(CLASS_COLOURS[c]) * k / n for c, k in counts.items())
            worst = next((c for c in ("crash", "fail", "stable", "missing") if c in counts), "missing")
            line.append(worst if counts.get(worst) == len(classes) else f"{worst} {counts[worst]}/{len(classes)}")
        labels.append(line)
    return rows, columns, colours, labels


def run_summary_lines(table_a4: pd.DataFrame, *, axis: str) -> list[str]:
    """One line per run from Table A4 (``tableA4.csv``): its keys, classification, S_index, mean T; the
    cell's ratio printed along ``axis`` (:func:`~.labels.ratio_axis`: ``"Hf:O 1:1.55"``)."""

    def number(value: Any, fmt: str) -> str:
        return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else fmt.format(value)

    lines = []
    for r in table_a4.to_dict("records"):
        outcome = r.get("classification") if isinstance(r.get("classification"), str) else "no result"
        if outcome == "crash" and not pd.isna(r.get("crash_step")):
            outcome = f"crash at step {int(r['crash_step'])}"
        lines.append(
            f"{model_label(r['model'], r['family'])} L{r['layers']} {r['method']} seed {r['seed']} "
            f"{ratio_label(axis, r['ratio'])} cell {r.get('cell_seed', 0)} {r['temp_K']} K v{r['vseed']}: "
            f"{outcome}, S {number(r.get('s_index'), '{:.4f}')}, T {number(r.get('temp_mean_K'), '{:.4g}')} K"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m gnnff_stability.report.outcomes results/demo/tables/tableA4.csv [--config FILE]``: print
    the run lines (ratios along the configuration's material axis; ``ratio`` without ``--config``)."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m gnnff_stability.report.outcomes",
                                     description="One line per run of a campaign's Table A4.")
    parser.add_argument("table_a4", type=Path, help="a campaign's tableA4.csv")
    parser.add_argument("--config", type=Path, default=None,
                        help="the campaign's configuration (its material names the ratio axis)")
    args = parser.parse_args(argv)
    path = args.table_a4
    if not path.exists():
        raise SystemExit(f"{path} does not exist: run the campaign first")
    for line in run_summary_lines(pd.read_csv(path), axis=axis_of_config(args.config)):
        print(line)  # noqa: T201 (a console entry point)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
