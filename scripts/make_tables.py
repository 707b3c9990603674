"""Snakemake entry point of ``make_tables``: the paper's tables (CSV and markdown) from the inputs."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.report.collect import run_files
from gnnff_stability.report.tables import build_tables
from gnnff_stability.settings import MaterialSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
build_tables(
    run_files(snakemake.params.runs, snakemake.input, snakemake.params.campaign),  # noqa: F821
    dict(snakemake.output.items()),  # noqa: F821
    material=MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    overhead_benchmark=snakemake.input.get("overhead_benchmark", []),  # noqa: F821
)
