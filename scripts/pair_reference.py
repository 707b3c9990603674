"""Snakemake entry point of ``pair_reference``: the reference potential's pair force on an isolated pair."""

from gnnff_stability.data.pair_reference import write_pair_reference
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import CombSettings, MaterialSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
write_pair_reference(
    snakemake.output.curve,  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    CombSettings.from_config(snakemake.params.comb),  # noqa: F821
)
