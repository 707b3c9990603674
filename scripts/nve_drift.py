"""Snakemake entry point of ``nve_drift``: the NVE energy drift of one run's thermo and status."""

from gnnff_stability.analysis.metrics import write_nve_drift
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import MDSettings, NVEMetricSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
write_nve_drift(
    snakemake.input.thermo,  # noqa: F821
    snakemake.input.status,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    MDSettings.from_config(snakemake.params.md),  # noqa: F821
    NVEMetricSettings.from_config(snakemake.params.nve),  # noqa: F821
)
