"""Snakemake entry point: the paper's figures (PNG and PDF) from every run's results.

output: one file per figure and format (names from gnnff_stability.figures.FIGURE_NAMES), all in one
directory; params: runs (run records with file paths), methods (the methods config); log[0].
"""

from pathlib import Path

import pandas as pd

from gnnff_stability.figures import make_figures
from gnnff_stability.logs import setup_script_logging

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
make_figures(
    pd.DataFrame(snakemake.params.runs),  # noqa: F821
    Path(snakemake.output[0]).parent,  # noqa: F821
    method_info=snakemake.params.methods,  # noqa: F821
)
