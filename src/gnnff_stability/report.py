"""Regenerate the paper's tables and figures from whatever per-run results exist.

This is what ``snakemake paper_figures`` runs: it reads the result files named in the run table,
never trains or simulates, and turns every missing result into a missing table cell or an empty
panel, so it can be run at any point of a campaign.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from gnnff_stability.figures import make_figures
from gnnff_stability.tables import build_tables

__all__ = ["regenerate_outputs"]

logger = logging.getLogger(__name__)


def regenerate_outputs(
    runs: pd.DataFrame,
    method_info: Mapping[str, Any],
    tables_dir: str | Path,
    figures_dir: str | Path,
    *,
    model_families: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write every table (CSV and markdown) and every figure (PNG and PDF) from existing results.

    Parameters
    ----------
    runs
        The run table with result paths (:func:`gnnff_stability.grid.with_paths`).
    method_info, model_families
        The config's ``methods`` and ``models`` blocks.
    tables_dir, figures_dir
        Output directories (created).

    Returns
    -------
    dict
        ``tables`` (name -> DataFrame), ``figures`` (files written) and ``n_scored`` (runs that
        have a stability score).
    """
    runs = pd.DataFrame(runs)
    scored = int(sum(Path(p).exists() for p in runs["score"])) if "score" in runs else 0
    logger.info("%d of %d runs have a stability score", scored, len(runs))
    tables = build_tables(runs, method_info, tables_dir, model_families=model_families)
    figures = make_figures(runs, figures_dir, method_info=method_info)
    return {"tables": tables, "figures": figures, "n_scored": scored}
