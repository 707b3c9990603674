"""Snakemake entry point: the paper's tables (CSV and markdown) from every run's results.

output: the table files, all in one directory (names from gnnff_stability.paths.TABLE_NAMES);
params: runs (run records with file paths), methods (the methods config), models (optional: the
models config, for model families); log[0]. Inputs are only there for scheduling: missing results
become missing cells.
"""

from pathlib import Path

import pandas as pd

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.tables import build_tables

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
build_tables(
    pd.DataFrame(snakemake.params.runs),
    snakemake.params.methods,
    Path(snakemake.output[0]).parent,
    model_families=getattr(snakemake.params, "models", None),
)
