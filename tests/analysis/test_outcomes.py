"""The classification grid and the per-run summary lines, on hand-built results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.report.outcomes import CLASS_COLOURS, outcome_grid, run_summary_lines


def _res(rows):
    keys = ("model", "layers", "method", "ratio", "temp_K", "classification")
    return pd.DataFrame([dict(zip(keys, r)) | {"family": r[0]} for r in rows])  # presets named as families


def test_grid_colours_and_labels():
    res = _res([
        ("nequip", 4, "baseline", "1.10", 1200, "crash"),
        ("nequip", 4, "baseline", "1.10", 1200, "crash"),
        ("nequip", 4, "baseline", "1.10", 1200, "stable"),  # three velocity seeds: 2 crash, 1 stable
        ("nequip", 4, "baseline", "2.00", 1200, "stable"),
        ("nequip", 4, "corr", "1.10", 1200, "fail"),
        ("nequip", 4, "corr", "2.00", 1200, np.nan),  # not scored yet
    ])
    rows, columns, colours, labels = outcome_grid(res)
    assert rows == ["NequIP L4 baseline", "NequIP L4 corr"]
    assert columns == ["1:1.1, 1200 K", "1:2, 1200 K"]
    assert labels == [["crash 2/3", "stable"], ["fail", "missing"]]
    mixed = (2 * np.array(CLASS_COLOURS["crash"]) + np.array(CLASS_COLOURS["stable"])) / 3
    np.testing.assert_allclose(colours[0, 0], mixed)
    np.testing.assert_allclose(colours[1, 0], CLASS_COLOURS["fail"])
    np.testing.assert_allclose(colours[1, 1], CLASS_COLOURS["missing"])


def test_summary_lines():
    table = pd.DataFrame([
        dict(model="allegro", family="allegro", layers=3, method="baseline", seed=0, ratio="1.10", cell_seed=0, temp_K=1200,
             vseed=0, classification="crash", crash_step=150, s_index=0.0, temp_mean_K=2.0e27),
        dict(model="nequip", family="nequip", layers=2, method="corr", seed=1, ratio="2.00", cell_seed=0, temp_K=1200,
             vseed=2, classification=np.nan, crash_step=np.nan, s_index=np.nan, temp_mean_K=np.nan),
    ])
    assert run_summary_lines(table, axis="Hf:O") == [
        "Allegro L3 baseline seed 0 Hf:O 1:1.1 cell 0 1200 K v0: crash at step 150, S 0.0000, T 2e+27 K",
        "NequIP L2 corr seed 1 Hf:O 1:2 cell 0 1200 K v2: no result, S —, T — K",
    ]


def test_main_names_a_missing_table(tmp_path):
    from gnnff_stability.report.outcomes import main

    with pytest.raises(SystemExit, match="does not exist"):
        main([str(tmp_path / "tableA4.csv")])


def test_a_cell_outside_the_grid_is_blank():
    """A method excluded from a cell (grid.exclude) has no run there: a white cell, not an error."""
    res = _res([
        ("nequip", 2, "baseline", "1.10", 1200, "stable"),
        ("nequip", 2, "baseline", "2.00", 1200, "fail"),
        ("nequip", 2, "sam", "1.10", 1200, "crash"),
    ])
    _, columns, colours, labels = outcome_grid(res)
    assert columns == ["1:1.1, 1200 K", "1:2, 1200 K"]
    assert labels == [["stable", "fail"], ["crash", "not in grid"]]
    np.testing.assert_allclose(colours[1, 1], (1.0, 1.0, 1.0))
