"""Snakemake entry point of ``paper_figures``: every table and figure from the results that exist.

params: runs (run records with file paths), methods, models (config blocks), tables, figures
(output directories); log[0].
"""

import pandas as pd

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.report import regenerate_outputs

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
regenerate_outputs(
    pd.DataFrame(snakemake.params.runs),  # noqa: F821
    snakemake.params.methods,  # noqa: F821
    snakemake.params.tables,  # noqa: F821
    snakemake.params.figures,  # noqa: F821
    model_families=snakemake.params.models,  # noqa: F821
)
