"""Snakemake entry point of ``run_md``: one MD run of a trained model on one start cell."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.md import MDRunFiles, run_md
from gnnff_stability.settings import MaterialSettings, MDSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
run_md(
    snakemake.input.model,  # noqa: F821
    snakemake.input.cell,  # noqa: F821
    snakemake.params.temp_K,  # noqa: F821
    snakemake.params.seed,  # noqa: F821
    MDSettings.from_config(snakemake.params.md),  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    MDRunFiles.from_mapping(dict(snakemake.output.items())),  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    family=snakemake.params.family,  # noqa: F821
)
