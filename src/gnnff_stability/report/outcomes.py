"""The classification of every run at a glance: a figure (a grid coloured stable / fail / crash) and
one summary line per run for the console.

Rows are trained models (model, layers, method), columns are cells and temperatures (Hf:O ratio, T_set);
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
        Row labels (model L method), column labels (Hf:O, T), an RGB array ``[n_rows, n_cols, 3]``
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


def run_summary_lines(table_a4: pd.DataFrame) -> list[str]:
    """One line per run from Table A4 (``tableA4.csv``): its keys, classification, S_index, mean T."""

    def number(value: Any, fmt: str) -> str:
        return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else fmt.format(value)

    lines = []
    for r in table_a4.to_dict("records"):
        outcome = r.get("classification") if isinstance(r.get("classification"), str) else "no result"
        if outcome == "crash" and not pd.isna(r.get("crash_step")):
            outcome = f"crash at step {int(r['crash_step'])}"
        lines.append(
            f"{model_label(r['model'], r['family'])} L{r['layers']} {r['method']} seed {r['seed']} "
            f"Hf:O 1:{float(r['ratio']):g} cell {r.get('cell_seed', 0)} {r['temp_K']} K v{r['vseed']}: "
            f"{outcome}, S {number(r.get('s_index'), '{:.4f}')}, T {number(r.get('temp_mean_K'), '{:.4g}')} K"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m gnnff_stability.report.outcomes results/demo/tables/tableA4.csv``: print the run lines."""
    import sys  # noqa: PLC0415

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m gnnff_stability.report.outcomes <tableA4.csv>")
    path = Path(args[0])
    if not path.exists():
        raise SystemExit(f"{path} does not exist: run the campaign first")
    for line in run_summary_lines(pd.read_csv(path)):
        print(line)  # noqa: T201 (a console entry point)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
