"""Snakemake entry point: score one MD run (stability.json and sn.csv).

input: dump, thermo, status, cell; output: score, sn; params: stability (dict), temp_K; log[0].
"""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.stability import score_run

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
score_run(
    snakemake.input.dump,
    snakemake.input.thermo,
    snakemake.input.status,
    snakemake.input.cell,
    dict(snakemake.params.stability),
    snakemake.output.score,
    snakemake.output.sn,
    temp_K=snakemake.params.temp_K,
)
