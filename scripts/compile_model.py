"""Snakemake entry point: compile a packaged model with nequip-compile (AOTInductor)."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.training import compile_model

setup_script_logging(snakemake.log[0])  # noqa: F821
compile_model(
    package_path=snakemake.input.model,  # noqa: F821
    out_path=snakemake.output.compiled,  # noqa: F821
    target=snakemake.params.target,  # noqa: F821
    device=snakemake.params.device,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
