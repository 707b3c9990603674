"""Snakemake entry point: COMB reference MD of one cell at one temperature (dump + thermo.csv).

input: cell; output: dump, thermo; params: temp_K, seed, settings (the `refmd` config); log[0].
"""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.refmd import run_reference_md

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
run_reference_md(
    snakemake.input.cell,  # noqa: F821
    float(snakemake.params.temp_K),  # noqa: F821
    int(snakemake.params.seed),  # noqa: F821
    dict(snakemake.params.settings),  # noqa: F821
    snakemake.output.dump,  # noqa: F821
    snakemake.output.thermo,  # noqa: F821
)
