"""Snakemake entry point of ``pair_reference``: COMB's pair force on an isolated pair."""

from gnnff_stability.data.pair_reference import write_comb_pair_curve
from gnnff_stability.logs import setup_script_logging

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
comb = snakemake.params.comb  # noqa: F821
write_comb_pair_curve(snakemake.output.curve, comb["label_qeq_tol"], comb["over_coordination"])  # noqa: F821
