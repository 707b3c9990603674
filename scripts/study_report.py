"""Snakemake entry point of ``study_report``: the study table and Kaplan-Meier figure from Tables A4 and S1."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.report.study import write_campaign_study
from gnnff_stability.settings import MaterialSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
write_campaign_study(
    snakemake.input.table_a4,  # noqa: F821
    snakemake.input.table_s1,  # noqa: F821
    dict(snakemake.output.items()),  # noqa: F821
    arms=snakemake.params.arms,  # noqa: F821
    md=snakemake.params.md,  # noqa: F821
    material=MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
)
