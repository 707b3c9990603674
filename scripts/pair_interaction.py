"""Snakemake entry point of ``pair_interaction``: the learned pair force per bond type of one model."""

from gnnff_stability.analysis.pair_interaction import write_pair_interaction
from gnnff_stability.logs import setup_script_logging

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
write_pair_interaction(snakemake.input.model, snakemake.input.test, snakemake.output.pair)  # noqa: F821
