"""Training overheads per step from a benchmark, printed in Table 3 beside the campaign's epoch times.

Table 3's own overhead compares epoch wall times of separate training jobs, so it moves with whatever
else the machine ran at the time (two runs of the same demo gave the Allegro corr overhead as +4 % and
+26 %). ``benchmarks/bench_corr_overhead.py`` and ``benchmarks/bench_stabilisers.py`` measure the same
cost per training step, the modes interleaved on the same batches, from the same initial weights; their
``--csv`` rows (one per model and mode: ``family``, ``layers``, ``size``, ``device``, ``mode``, ``ratio``
and, for the correlation loss, a 95 % interval ``ratio_lo95`` / ``ratio_hi95``) are what
``figures.overhead_benchmark`` points Table 3 at (a list of files; a later row of the same model and
mode replaces an earlier one).

A benchmark row stands for a campaign method when the family and the layer count agree and the method
has exactly one stabiliser (or none) whose mode the benchmark times: the correlation loss (``corr``),
SAM (``sam``; adaptive SAM ``sam_adaptive``), the ZBL prior (``zbl``) and the energy decomposition
(``decomposed``). Combinations have no benchmark row. The benchmark's model width is its ``size``
(the sizes of ``config/config.yaml`` or ``config/paper.yaml``), which Table 3's caption names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["benchmark_mode", "benchmark_overhead", "read_overhead_benchmark"]

#: Columns a benchmark CSV must have.
REQUIRED_COLUMNS = ("family", "layers", "size", "device", "mode", "ratio")
#: The benchmark mode of a method with one stabiliser (SAM is resolved by its ``adaptive`` key).
_MODE_OF_STABILISER = {"corr": "corr", "zbl": "zbl", "decomposition": "decomposed"}


def read_overhead_benchmark(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame | None:
    """The rows of benchmark CSVs (``--csv`` of ``bench_corr_overhead.py`` / ``bench_stabilisers.py``), in
    the order given; ``None`` for no file.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    ValueError
        If a file lacks a column of :data:`REQUIRED_COLUMNS`.
    """
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    frames = []
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"figures.overhead_benchmark: no benchmark CSV at {path}")
        bench = pd.read_csv(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in bench.columns]
        if missing:
            raise ValueError(f"benchmark CSV {path} lacks the column(s) {missing}; expected the --csv rows of "
                             f"benchmarks/bench_corr_overhead.py or bench_stabilisers.py "
                             f"({list(REQUIRED_COLUMNS)})")
        frames.append(bench)
    return pd.concat(frames, ignore_index=True) if frames else None


def benchmark_mode(stabilisers: str, sam_settings: Mapping[str, Any] | None, paper_main: str = "corr") -> str | None:
    """The benchmark mode that times a method: ``baseline``, ``corr``, ``sam``, ``sam_adaptive``, ``zbl``,
    ``decomposed``; ``None`` for a combination or a stabiliser no benchmark times.

    Parameters
    ----------
    stabilisers
        The run table's ``stabilisers`` column (``""`` for the baseline, ``corr+sam`` for a combination).
    sam_settings
        The run table's ``sam_settings`` (its ``adaptive`` key picks ``sam_adaptive``).
    paper_main
        The run table's ``paper_main``: the benchmark times the paper's correlation loss (the configs'
        ``corr`` method), so an ablation on another feature selection or schedule gets no row.
    """
    if not stabilisers:
        return "baseline"
    if "+" in stabilisers or (stabilisers == "corr" and paper_main != "corr"):
        return None
    if stabilisers == "sam":
        return "sam_adaptive" if (sam_settings or {}).get("adaptive") else "sam"
    return _MODE_OF_STABILISER.get(stabilisers)


def benchmark_overhead(bench: pd.DataFrame | None, family: str, layers: Any, mode: str | None) -> dict[str, Any]:
    """The benchmark's overhead of ``mode`` over the baseline for one model, in percent.

    Returns
    -------
    dict
        ``bench_overhead_pct`` (100 × (ratio − 1), the median over interleaved rounds),
        ``bench_overhead_lo95`` / ``bench_overhead_hi95`` (its 95 % interval where the benchmark gives
        one, else NaN), ``bench_loss_share_pct`` (the correlation loss's share of the step's self-CPU
        time from the profiler, the figure that other load on the machine does not move; NaN for the
        other modes), ``bench_device`` and ``bench_size`` (``""`` without a row). The last row wins
        where a CSV holds several for the same model and mode (a rerun appends).
    """
    out: dict[str, Any] = {"bench_overhead_pct": np.nan, "bench_overhead_lo95": np.nan,
                           "bench_overhead_hi95": np.nan, "bench_loss_share_pct": np.nan,
                           "bench_device": "", "bench_size": ""}
    if bench is None or mode is None or pd.isna(layers):
        return out
    rows = bench[(bench["family"] == family) & (bench["layers"] == int(layers)) & (bench["mode"] == mode)]
    if rows.empty:
        return out
    row = rows.iloc[-1]
    out["bench_overhead_pct"] = 100.0 * (float(row["ratio"]) - 1.0)
    for bound in ("lo95", "hi95"):
        value = row.get(f"ratio_{bound}", np.nan)
        if not pd.isna(value):
            out[f"bench_overhead_{bound}"] = 100.0 * (float(value) - 1.0)
    share = row.get("profiler_share", np.nan)
    if not pd.isna(share):
        out["bench_loss_share_pct"] = 100.0 * float(share)
    out["bench_device"], out["bench_size"] = str(row["device"]), str(row["size"])
    return out
