"""Snakemake entry point of ``make_figures``: the paper's figures (PNG and PDF) from the inputs."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.report.collect import run_files
from gnnff_stability.report.figures import make_figures
from gnnff_stability.settings import FigureSettings, MaterialSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
reference = snakemake.input.get("pair_reference")  # noqa: F821 (declared only for COMB data)
make_figures(
    run_files(snakemake.params.runs, snakemake.input, snakemake.params.campaign),  # noqa: F821
    dict(snakemake.output.items()),  # noqa: F821
    material=MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    temp_K=FigureSettings.from_config(snakemake.params.figures).temp_K,  # noqa: F821
    pair_reference=reference[0] if reference else None,
)
