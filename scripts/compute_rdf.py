"""Snakemake entry point of ``compute_rdf``: partial RDFs of a run beside its reference MD."""

from gnnff_stability.analysis.rdf import compute_rdf_comparison
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import MaterialSettings, RDFSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
compute_rdf_comparison(
    snakemake.input.dump,  # noqa: F821
    snakemake.input.ref_dump,  # noqa: F821
    snakemake.output.rdf,  # noqa: F821
    snakemake.output.metrics,  # noqa: F821
    RDFSettings.from_config(snakemake.params.rdf),  # noqa: F821
    material=MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    status=snakemake.input.status,  # noqa: F821
)
