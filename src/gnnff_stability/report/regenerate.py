"""Regenerate the paper's tables and figures from whatever per-run results exist.

This is what ``snakemake paper_figures`` runs: its inputs are the result files that exist when the
workflow is planned, so it never trains or simulates, and every missing result becomes a missing table
cell or an empty panel. It writes into its own directory (:data:`gnnff_stability.paths.PAPER_FIGURES`),
never over the outputs of ``make_tables`` / ``make_figures``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gnnff_stability import paths

from .collect import run_files
from .figures import make_figures
from .tables import build_tables

__all__ = ["regenerate_outputs"]

logger = logging.getLogger(__name__)


def regenerate_outputs(
    runs: Iterable[Mapping[str, Any]],
    available: Iterable[str],
    tables_dir: str | Path,
    figures_dir: str | Path,
    temp_K: int | None = None,
) -> dict[str, Any]:
    """Write every table (CSV and markdown) and every figure (PNG and PDF) from existing results.

    Parameters
    ----------
    runs
        Run-table records (keys and resolved method columns).
    available
        The result files to read (the rule's inputs: those that exist).
    tables_dir, figures_dir
        Output directories (created).
    temp_K
        Set-point temperature of the one-temperature figures (``figures.temp_K``; None: the lowest).

    Returns
    -------
    dict
        ``tables`` (name -> DataFrame), ``figures`` (files written) and ``n_scored`` (runs that
        have a stability score).
    """
    available = list(available)
    table = run_files(runs, available)
    scored = int(table["score"].notna().sum())
    logger.info("%d of %d runs have a stability score", scored, len(table))
    tables = build_tables(table, tables_dir)
    available = [str(Path(p)) for p in available]
    reference = paths.PAIR_REFERENCE if str(Path(paths.PAIR_REFERENCE)) in available else None
    figures = make_figures(table, figures_dir, temp_K=temp_K, pair_reference=reference)
    return {"tables": tables, "figures": figures, "n_scored": scored}
