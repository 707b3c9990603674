"""Snakemake entry point of ``prefit_body_terms``: phase 1 of a decomposition method."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.models.prefit import prefit_body_terms
from gnnff_stability.settings import MaterialSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
decomposition = snakemake.params.decomposition  # noqa: F821
loss = snakemake.params.loss_coeffs  # noqa: F821
prefit_body_terms(
    snakemake.input.train,  # noqa: F821
    snakemake.output.prefit,  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material).species,  # noqa: F821
    decomposition["body"],
    valid=snakemake.input.valid,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    energy_weight=loss["total_energy"],
    force_weight=loss["forces"],
    **decomposition["prefit"],
)
