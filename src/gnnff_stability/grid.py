"""Expand the campaign grid into the table of runs.

The grid in the configuration is the only place that lists runs. :func:`expand_grid` turns it into a
:class:`pandas.DataFrame` with one row per MD run; :func:`training_runs` reduces it to one row per trained
model. Every target path of the workflow is built from these tables with :mod:`gnnff_stability.paths`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gnnff_stability import paths
from gnnff_stability.config import method_applies

__all__ = ["RUN_KEYS", "TRAIN_KEYS", "expand_grid", "training_runs", "with_paths"]

TRAIN_KEYS = ("model", "layers", "method", "seed")
RUN_KEYS = (*TRAIN_KEYS, "ratio", "temp_K", "vseed")


def _matches(row: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    for key, wanted in rule.items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        value = row[key]
        if key == "ratio":
            if not any(abs(float(value) - float(a)) < 1e-9 for a in allowed):
                return False
        elif value not in allowed:
            return False
    return True


def expand_grid(config: Mapping[str, Any]) -> pd.DataFrame:
    """One row per MD run of a validated configuration.

    Parameters
    ----------
    config
        A configuration returned by :func:`gnnff_stability.config.validate_config`.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, layers, method, seed, ratio, temp_K, vseed`` (``ratio`` is O per Hf as float),
        sorted, without duplicates. Methods are paired only with the model families their feature
        selection names; ``grid.exclude`` rules remove the combinations they match.
    """
    grid = config["grid"]
    rows = []
    for model in grid["model"]:
        family = config["models"][model]["family"]
        methods = [m for m in grid["method"] if method_applies(config["methods"][m], family)]
        for layers, method, seed, ratio, temp, vseed in itertools.product(
            grid["layers"][model], methods, grid["seed"], grid["ratio"], grid["temp_K"], grid["vseed"]
        ):
            row = dict(
                model=model,
                layers=int(layers),
                method=method,
                seed=int(seed),
                ratio=round(float(ratio), 2),
                temp_K=int(temp),
                vseed=int(vseed),
            )
            if not any(_matches(row, rule) for rule in grid.get("exclude", [])):
                rows.append(row)
    runs = pd.DataFrame(rows, columns=list(RUN_KEYS))
    if runs.empty:
        raise ValueError(
            "the grid expands to no runs: every combination is excluded or no method applies to the "
            f"models {grid['model']}"
        )
    return runs.drop_duplicates().sort_values(list(RUN_KEYS)).reset_index(drop=True)


def training_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per trained model (model × layers × method × seed) of a run table."""
    return runs[list(TRAIN_KEYS)].drop_duplicates().reset_index(drop=True)


def with_paths(runs: pd.DataFrame) -> pd.DataFrame:
    """The run table with the paths of each run's outputs added as columns.

    Adds ``metrics`` (training metrics JSON), ``status`` (MD status JSON), ``score`` (stability JSON),
    ``sn`` (s_n series), ``thermo``, ``dump``, ``rdf`` and ``rdf_metrics``.
    """
    out = runs.copy()
    recs = out.to_dict("records")
    out["metrics"] = [paths.fill(paths.TRAIN, r) + "/metrics.json" for r in recs]
    out["epochs"] = [paths.fill(paths.TRAIN, r) + "/metrics_epoch.csv" for r in recs]
    md = [paths.fill(paths.MD, r) for r in recs]
    an = [paths.fill(paths.ANALYSIS, r) for r in recs]
    out["status"] = [d + "/status.json" for d in md]
    out["thermo"] = [d + "/thermo.csv" for d in md]
    out["dump"] = [d + "/dump.lammpstrj" for d in md]
    out["score"] = [d + "/stability.json" for d in an]
    out["sn"] = [d + "/sn.csv" for d in an]
    out["rdf"] = [d + "/rdf.csv" for d in an]
    out["rdf_metrics"] = [d + "/rdf_metrics.json" for d in an]
    return out
