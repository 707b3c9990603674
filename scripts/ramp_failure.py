"""Snakemake entry point of ``ramp_failure``: where one temperature ramp first crashed or failed."""

from gnnff_stability.analysis.metrics import write_ramp_failure
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import MDSettings, RampMetricSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
write_ramp_failure(
    snakemake.input.thermo,  # noqa: F821
    snakemake.input.status,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    MDSettings.from_config(snakemake.params.md),  # noqa: F821
    RampMetricSettings.from_config(snakemake.params.ramp),  # noqa: F821
)
