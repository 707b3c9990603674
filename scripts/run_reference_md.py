"""Snakemake entry point of ``run_reference_md``: reference-potential MD of one cell at one temperature."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.md.refmd import run_reference_md
from gnnff_stability.settings import MaterialSettings, RefMDSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
run_reference_md(
    snakemake.input.cell,  # noqa: F821
    snakemake.params.temp_K,  # noqa: F821
    snakemake.params.seed,  # noqa: F821
    RefMDSettings.from_config(snakemake.params.refmd),  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    snakemake.params.over_coordination,  # noqa: F821
    snakemake.output.dump,  # noqa: F821
    snakemake.output.thermo,  # noqa: F821
)
