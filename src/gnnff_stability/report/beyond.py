"""Table S1, "stability beyond the paper": the benchmark stability metrics of every trained model.

One row per trained model (model × layers × method × seed) with its NVE energy drift (LAMBench /
MLIPAudit) and its temperature-ramp failure (MLIP Arena), read from ``nve_drift.json`` and
``ramp_failure.json`` (:mod:`gnnff_stability.analysis.metrics`). A missing file gives empty cells,
never an error, and a metric switched off in the config leaves its columns empty.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gnnff_stability.grid import METHOD_COLUMNS, TRAIN_KEYS

from .collect import _read_json
from .markdown import MISSING_MD, _col, _int_col, _model_col, to_markdown

__all__ = ["TABLE_S1_COLUMNS", "table_s1", "table_s1_markdown"]

#: Columns of Table S1 after the training keys: (column, result file, key in that file).
_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("nve_protocol", "nve", "protocol"),
    ("nve_classification", "nve", "classification"),
    ("drift_meV_per_atom_per_ps", "nve", "drift_meV_per_atom_per_ps"),
    ("normalised_drift", "nve", "normalised_drift"),
    ("ramp_classification", "ramp", "classification"),
    ("ramp_failure_K", "ramp", "failure_set_point_K"),
    ("ramp_failure_kinetic_K", "ramp", "failure_kinetic_K"),
    ("ramp_rate_K_per_ps", "ramp", "rate_K_per_ps"),
    ("ramp_steady_lag_K", "ramp", "steady_lag_K"),
    ("ramp_failure_kind", "ramp", "failure_kind"),
    ("ramp_completed_fraction", "ramp", "completed_fraction"),
)
TABLE_S1_COLUMNS: tuple[str, ...] = (*TRAIN_KEYS, "family", *(c for c, _, _ in _SOURCES))
_TEXT = {"nve_protocol", "nve_classification", "ramp_classification", "ramp_failure_kind"}


def table_s1(runs: pd.DataFrame) -> pd.DataFrame:
    """Table S1 from the run table with its result paths.

    Parameters
    ----------
    runs
        One row per MD run: the training keys, the resolved method columns, and the path columns
        ``nve`` and ``ramp`` (:data:`gnnff_stability.paths.RUN_FILES`; ``None`` or absent: missing).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE_S1_COLUMNS`, one row per trained model, sorted by the training keys.
        Drift in meV/atom/ps (signed slope), the normalised drift dimensionless, the ramp's failure
        set point and the kinetic temperature there in K (NaN if it survived or is missing), its rate
        (K/ps) and settled lag (K), the completed fraction in [0, 1].
    """
    runs = pd.DataFrame(runs)
    keep = [c for c in (*TRAIN_KEYS, *METHOD_COLUMNS, "nve", "ramp") if c in runs.columns]
    models = runs[keep].drop_duplicates(list(TRAIN_KEYS)).sort_values(list(TRAIN_KEYS))
    cache: dict[str, dict | None] = {}
    rows: list[dict[str, Any]] = []
    for rec in models.to_dict("records"):
        row = {k: rec[k] for k in TRAIN_KEYS}
        row["family"] = rec["family"]
        for column, source, key in _SOURCES:
            data = _read_json(rec.get(source), cache)
            value = None if data is None else data.get(key)
            if column in _TEXT:
                row[column] = value if isinstance(value, str) else ""
            else:
                row[column] = np.nan if value is None else float(value)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TABLE_S1_COLUMNS))


def table_s1_markdown(df: pd.DataFrame) -> str:
    """Table S1 as markdown ("—" for a missing cell)."""
    spec = [("model", _model_col), ("L", _int_col("layers")), ("method", _col("method", kind="text")),
            ("seed", _int_col("seed")),
            ("NVE protocol", _col("nve_protocol", kind="text")),
            ("NVE run", _col("nve_classification", kind="text")),
            ("drift meV/atom/ps", _col("drift_meV_per_atom_per_ps", 4, "num")),
            ("normalised drift", _col("normalised_drift", 3, "num")),
            ("ramp run", _col("ramp_classification", kind="text")),
            ("ramp failure K (set point)", _col("ramp_failure_K", 0, "num")),
            ("kinetic K at failure", _col("ramp_failure_kinetic_K", 0, "num")),
            ("ramp K/ps", _col("ramp_rate_K_per_ps", 0, "num")),
            ("settled lag K", _col("ramp_steady_lag_K", 0, "num")),
            ("failed by", _col("ramp_failure_kind", kind="text")),
            ("ramp completed", _col("ramp_completed_fraction", 3, "num"))]
    note = ("NVE drift: least-squares slope of the total energy over the NVE part after the "
            "warm-up (metrics.nve.warmup_fraction), per atom (LAMBench / MLIPAudit); normalised "
            "drift: |fitted slope| × duration / std(KE) over the NVE part (MLIPAudit). NVE protocol "
            "'lambench': LAMBench's (Maxwell-Boltzmann start at 300 K, 10,000 steps of 1 fs, the "
            "first 20 % dropped); 'short window': this campaign's shorter run after a Langevin "
            "equilibration, comparable between its models only. Ramp: set point at which a "
            f"linearly heated Langevin run first crashed or failed, {MISSING_MD} if it survived (MLIP Arena), "
            "and the kinetic temperature there (mean over the last window before the failure). The "
            "kinetic temperature trails the set point; the settled lag of the Langevin relaxation of "
            "the kinetic energy is rate x damping / 2 (a solid trails by up to twice that), so the "
            "set point overstates the temperature the model failed at. See docs/analysis.md.")
    return f"## Table S1: stability beyond the paper\n\n{note}\n\n" + to_markdown(df, spec)
