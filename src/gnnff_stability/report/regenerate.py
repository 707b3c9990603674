"""Regenerate the paper's tables and figures from whatever per-run results exist.

This is what ``snakemake paper_figures`` runs: its inputs are the result files that exist when the
workflow is planned, so it never trains or simulates, and every missing result becomes a missing table
cell or an empty panel. It writes into its own files, under the campaign's
:data:`gnnff_stability.paths.PAPER_FIGURES`, never over the outputs of ``make_tables`` / ``make_figures``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gnnff_stability import paths
from gnnff_stability.settings import MaterialSettings

from .collect import run_files
from .figures import make_figures
from .tables import build_tables

__all__ = ["regenerate_outputs"]

logger = logging.getLogger(__name__)


def regenerate_outputs(
    runs: Iterable[Mapping[str, Any]],
    available: Iterable[str],
    outputs: Mapping[str, str | Path],
    campaign: str,
    material: MaterialSettings,
    temp_K: int | None = None,
    overhead_benchmark: str | Path | Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Write every table (CSV and markdown) and every figure (PNG and PDF) from existing results.

    Parameters
    ----------
    runs
        Run-table records (keys and resolved method columns).
    available
        The result files to read (the rule's inputs: those that exist).
    outputs
        The declared file of every table and figure by output name (``table2_csv``,
        ``fig3_corr_vs_stability_png``: :func:`gnnff_stability.paths.table_files` and
        :func:`~gnnff_stability.paths.figure_files`).
    campaign
        The campaign whose results root holds the results.
    material
        The material (per-pair columns and panels, ratio labels; :func:`~.tables.build_tables`).
    temp_K
        Set-point temperature of the one-temperature figures (``figures.temp_K``; None: the lowest).
    overhead_benchmark
        The benchmark CSVs of Table 3's per-step overheads (``figures.overhead_benchmark``).

    Returns
    -------
    dict
        ``tables`` (name -> DataFrame), ``figures`` (files written) and ``n_scored`` (runs that
        have a stability score).
    """
    available = list(available)
    table = run_files(runs, available, campaign)
    scored = int(table["score"].notna().sum())
    logger.info("%d of %d runs have a stability score", scored, len(table))
    tables = build_tables(table, outputs, material=material, overhead_benchmark=overhead_benchmark)
    pair_reference = paths.bind(campaign).PAIR_REFERENCE
    reference = pair_reference if str(Path(pair_reference)) in {str(Path(p)) for p in available} else None
    figures = make_figures(table, outputs, material=material, temp_K=temp_K, pair_reference=reference)
    return {"tables": tables, "figures": figures, "n_scored": scored}
