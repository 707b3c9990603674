"""Result paths of the campaign, written once.

Every path template here uses the workflow's wildcards (``model``, ``layers``, ``method``, ``seed``,
``ratio``, ``temp``, ``vseed``). The Snakemake rules declare their outputs with these templates, and the
aggregation steps fill them from the run table built by :func:`gnnff_stability.grid.expand_grid`, so no
path is typed twice and no script recovers values by parsing a path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ANALYSIS",
    "DATA",
    "FIGURES",
    "MD",
    "REFMD",
    "STRUCTURE",
    "TABLES",
    "TABLE_NAMES",
    "TRAIN",
    "fill",
    "ratio_token",
]

RESULTS = "results"
DATA = f"{RESULTS}/data/reference"
STRUCTURE = f"{RESULTS}/structures/HfO{{ratio}}"
TRAIN = f"{RESULTS}/train/{{model}}/L{{layers}}/{{method}}/seed{{seed}}"
_RUN = "{model}/L{layers}/{method}/seed{seed}/HfO{ratio}/T{temp}K/v{vseed}"
MD = f"{RESULTS}/md/{_RUN}"
ANALYSIS = f"{RESULTS}/analysis/{_RUN}"
REFMD = f"{RESULTS}/refmd/HfO{{ratio}}/T{{temp}}K"
TABLES = f"{RESULTS}/tables"
FIGURES = f"{RESULTS}/figures"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"

TABLE_NAMES = (
    "table1",
    "table2",
    "table3",
    "table4",
    "tableA1",
    "tableA2",
    "tableA3",
    "tableA4",
)


def ratio_token(o_per_hf: float) -> str:
    """Path token of an O-per-Hf ratio: two decimals, ``1.1 -> "1.10"``."""
    return f"{float(o_per_hf):.2f}"


def fill(template: str, run: Mapping[str, Any]) -> str:
    """Fill a path template from one row of the run table.

    The run table stores the temperature as ``temp_K`` and the ratio as a float; the path wildcards are
    ``temp`` and the two-decimal ``ratio`` token.
    """
    values = dict(run)
    if "temp_K" in values:
        values.setdefault("temp", int(values["temp_K"]))
    if "ratio" in values:
        values["ratio"] = ratio_token(values["ratio"])
    return template.format(**values)


def log_path(template: str) -> str:
    """The log file that mirrors a result directory template."""
    return template.replace(f"{RESULTS}/", f"{LOGS}/", 1)


def bench_path(template: str) -> str:
    """The benchmark file that mirrors a result directory template."""
    return template.replace(f"{RESULTS}/", f"{BENCH}/", 1)
