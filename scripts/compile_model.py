"""Snakemake entry point of ``compile_model``: nequip-compile (AOTInductor) of a packaged model."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.train.deploy import compile_model

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
compile_model(
    snakemake.input.model,  # noqa: F821
    snakemake.output.compiled,  # noqa: F821
    target=snakemake.params.target,  # noqa: F821
    device=snakemake.params.device,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
