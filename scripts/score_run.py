"""Snakemake entry point of ``score_run``: stability.json and sn.csv of one MD run."""

from gnnff_stability.analysis.score import score_run
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import MaterialSettings, StabilitySettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
score_run(
    snakemake.input.dump,  # noqa: F821
    snakemake.input.thermo,  # noqa: F821
    snakemake.input.status,  # noqa: F821
    snakemake.input.cell,  # noqa: F821
    StabilitySettings.from_config(snakemake.params.stability),  # noqa: F821
    snakemake.output.score,  # noqa: F821
    snakemake.output.sn,  # noqa: F821
    material=MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    temp_K=snakemake.params.temp_K,  # noqa: F821
)
