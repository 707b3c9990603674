"""Snakemake entry point of the ``select_frames`` checkpoint: one active-learning round's frames."""

from gnnff_stability.data.active import select_round
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import HarvestSettings, MaterialSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
select_round(
    snakemake.params.runs,  # noqa: F821
    HarvestSettings.from_config(snakemake.params.harvest),  # noqa: F821
    int(snakemake.wildcards.round),  # noqa: F821
    dict(snakemake.output.items()),  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material).species,  # noqa: F821
    committee_models=list(snakemake.input.committee),  # noqa: F821
    device=snakemake.params.device,  # noqa: F821
)
