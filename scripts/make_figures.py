"""Snakemake entry point of ``make_figures``: the paper's figures (PNG and PDF) from the inputs."""

from pathlib import Path

from gnnff_stability import paths
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.report.collect import run_files
from gnnff_stability.report.figures import make_figures
from gnnff_stability.settings import FigureSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
make_figures(
    run_files(snakemake.params.runs, snakemake.input),  # noqa: F821
    Path(snakemake.output[0]).parent,  # noqa: F821
    temp_K=FigureSettings.from_config(snakemake.params.figures).temp_K,  # noqa: F821
    pair_reference=paths.PAIR_REFERENCE if paths.PAIR_REFERENCE in snakemake.input else None,  # noqa: F821
)
