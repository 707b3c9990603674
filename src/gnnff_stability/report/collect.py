"""Every run's result files read into one frame, and the statistics the tables report.

:func:`collect_results` reads the files named in the run table (a missing or unreadable file gives NaN,
never an error) and keeps the run table's resolved method columns, so the tables and figures never
interpret a method preset themselves. :func:`bootstrap_mean` is the mean with its 95 % percentile
bootstrap interval reported for every cell.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnff_stability.grid import METHOD_COLUMNS, RUN_KEYS, with_paths
from gnnff_stability.paths import RUN_FILES, ratio_token
from gnnff_stability.settings import MaterialSettings

__all__ = ["KEY_COLUMNS", "METRICS_KEYS", "bootstrap_mean", "collect_results", "rdf_keys", "run_files",
           "score_keys"]

logger = logging.getLogger(__name__)

KEY_COLUMNS: tuple[str, ...] = RUN_KEYS

#: Quantities read from each file kind (the JSON key is the column name).
METRICS_KEYS = ("emae_meV_per_atom", "fmae_meV_per_A", "corr_value", "s_per_epoch", "epochs",
                "train_wall_s", "label_budget", "active_wall_s")


def score_keys(pair_names: Sequence[str]) -> tuple[str, ...]:
    """Quantities read from each ``stability.json``: one ``rmin_<pair>_A`` per name of ``pair_names``."""
    return ("s_index", "classification", "crash_step", "crashed", "atoms_lost", "temp_mean_K",
            "temp_max_K", "fmax_eV_per_A", *(f"rmin_{p}_A" for p in pair_names),
            "n_snapshots", "n_planned", "ttf_legato_steps", "ttf_arena_fraction", "steps_done", "fail_step")


def rdf_keys(pair_names: Sequence[str]) -> tuple[str, ...]:
    """Quantities read from each RDF metrics JSON: ``js_<pair>``, ``js_mean``, ``mae_<pair>``, ``mae_mean``."""
    return (*(f"js_{p}" for p in pair_names), "js_mean", *(f"mae_{p}" for p in pair_names), "mae_mean")


_N_BOOT = 2000


def _ratio_token(value: Any) -> str | float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.nan
    return ratio_token(value)


def _read_json(path: Any, cache: dict[str, dict | None]) -> dict | None:
    if path is None or (isinstance(path, float) and math.isnan(path)) or path == "":
        return None
    key = str(path)
    if key not in cache:
        try:
            cache[key] = json.loads(Path(key).read_text())
        except FileNotFoundError:
            cache[key] = None
        except (OSError, ValueError) as exc:
            logger.warning("could not read %s (%s); treating it as missing", key, exc)
            cache[key] = None
    return cache[key]


def collect_results(runs: pd.DataFrame, *, material: MaterialSettings) -> pd.DataFrame:
    """Read every run's result files into one frame; missing files give NaN.

    Parameters
    ----------
    runs
        One row per MD run with the key columns :data:`KEY_COLUMNS`, the resolved method columns
        :data:`gnnff_stability.grid.METHOD_COLUMNS`, and file-path columns
        ``metrics`` (training metrics.json), ``score`` (stability.json) and ``rdf_metrics`` (the
        RDF metrics JSON; a ``rdf`` column ending in ``.json`` is accepted instead). Missing
        columns and missing files are allowed.
    material
        The species: the pairs of the per-pair columns (``rmin_<pair>_A``, ``js_<pair>``, ``mae_<pair>``).

    Returns
    -------
    pandas.DataFrame
        The key and method columns (``ratio`` as the two-decimal token, ``layers``/``seed``/``temp_K``/
        ``cell_seed``/``vseed`` as nullable integers), the quantities of :data:`METRICS_KEYS`,
        :func:`score_keys` and :func:`rdf_keys`, and ``has_metrics``, ``has_score``, ``has_rdf``.
    """
    score_cols, rdf_cols = score_keys(material.pair_names), rdf_keys(material.pair_names)
    missing = [k for k in KEY_COLUMNS if k not in runs.columns]
    if missing:
        raise ValueError(
            f"runs lacks key column(s) {missing}; expected {list(KEY_COLUMNS)}, "
            f"found {list(runs.columns)}"
        )
    missing = [k for k in METHOD_COLUMNS if k not in runs.columns]
    if missing:
        raise ValueError(
            f"runs lacks the resolved method column(s) {missing}: build the run table with "
            "gnnff_stability.grid.expand_grid"
        )
    out = runs[[*KEY_COLUMNS, *METHOD_COLUMNS]].copy()
    for col in ("baseline", "corr", "sam", "decomposition", "active"):
        out[col] = out[col].astype(bool)
    out["model"] = out["model"].astype(str)
    out["method"] = out["method"].astype(str)
    out["ratio"] = [_ratio_token(v) for v in out["ratio"]]
    for col in ("layers", "seed", "cell_seed", "temp_K", "vseed"):
        out[col] = pd.to_numeric(out[col], errors="coerce").round().astype("Int64")

    rdf_col = "rdf_metrics" if "rdf_metrics" in runs.columns else None
    if rdf_col is None and "rdf" in runs.columns:
        rdf_col = "rdf"
    cache: dict[str, dict | None] = {}
    sources = (("metrics", "metrics", METRICS_KEYS), ("score", "score", score_cols),
               ("rdf", rdf_col, rdf_cols))
    for flag, col, keys in sources:
        records = []
        for path in (runs[col] if col in runs.columns else [None] * len(runs)):
            if flag == "rdf" and isinstance(path, str) and not path.endswith(".json"):
                path = None
            records.append(_read_json(path, cache))
        out[f"has_{flag}"] = [r is not None for r in records]
        for key in keys:
            out[key] = [np.nan if r is None or r.get(key) is None else r.get(key) for r in records]
    for key in (*METRICS_KEYS, *score_cols, *rdf_cols):
        if key == "classification":
            continue
        out[key] = pd.to_numeric(out[key], errors="coerce").astype(float)
    logger.info("collected %d runs: %d with metrics, %d with scores, %d with RDF metrics",
                len(out), int(out["has_metrics"].sum()), int(out["has_score"].sum()),
                int(out["has_rdf"].sum()))
    return out.reset_index(drop=True)



def bootstrap_mean(values: Iterable[float], *, seed: int = 0, n_boot: int = _N_BOOT,
                   level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean and percentile-bootstrap interval of the mean of the finite values.

    Returns
    -------
    mean, lo, hi, n
        ``lo``/``hi`` are NaN for fewer than 2 values; everything but ``n`` is NaN for none.
    """
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, np.nan, np.nan, n
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return mean, float(np.quantile(boots, alpha)), float(np.quantile(boots, 1.0 - alpha)), n


def run_files(runs: Iterable[Mapping[str, Any]] | pd.DataFrame, available: Iterable[str],
              campaign: str) -> pd.DataFrame:
    """The run table with its result paths (:func:`gnnff_stability.grid.with_paths`), keeping only the
    files in ``available`` (a rule's ``input``): every other path cell becomes ``None``, i.e. a
    missing result, so nothing outside a rule's declared inputs is read.

    Parameters
    ----------
    runs
        Run-table records: the keys and the resolved method columns (the rule's ``params``).
    available
        Paths of the result files the caller may read.
    campaign
        The campaign whose results root holds the files.
    """
    table = with_paths(pd.DataFrame(list(runs) if not isinstance(runs, pd.DataFrame) else runs), campaign)
    allowed = {str(Path(p)) for p in available}
    for column in RUN_FILES:
        table[column] = [p if str(Path(p)) in allowed else None for p in table[column]]
    return table
