"""Snakemake entry point of ``run_ramp_md``: Langevin with a linearly ramped set point."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.md.files import MDRunFiles
from gnnff_stability.md.metric_runs import run_ramp_metric
from gnnff_stability.settings import MaterialSettings, MDSettings, RampMetricSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
run_ramp_metric(
    snakemake.input.model,  # noqa: F821
    snakemake.input.cell,  # noqa: F821
    MDSettings.from_config(snakemake.params.md),  # noqa: F821
    RampMetricSettings.from_config(snakemake.params.ramp),  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    MDRunFiles.from_mapping(dict(snakemake.output.items())),  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    family=snakemake.params.family,  # noqa: F821
)
