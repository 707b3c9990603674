"""Snakemake entry point of ``paper_figures``: every table and figure from the results that exist."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.report.regenerate import regenerate_outputs
from gnnff_stability.settings import FigureSettings, MaterialSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
regenerate_outputs(
    snakemake.params.runs,  # noqa: F821
    snakemake.input,  # noqa: F821
    dict(snakemake.output.items()),  # noqa: F821
    snakemake.params.campaign,  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    temp_K=FigureSettings.from_config(snakemake.params.figures).temp_K,  # noqa: F821
    overhead_benchmark=snakemake.input.get("overhead_benchmark", []),  # noqa: F821
)
