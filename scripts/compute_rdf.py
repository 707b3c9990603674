"""Snakemake entry point: partial RDFs of a run beside its reference MD, and their distances.

input: dump, ref_dump, status (optional: the stable part ends at its crash_step);
output: rdf (CSV), metrics (JSON); params: r_max, n_bins; log[0].
"""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.rdf import compute_rdf_comparison

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
compute_rdf_comparison(
    snakemake.input.dump,
    snakemake.input.ref_dump,
    snakemake.output.rdf,
    snakemake.output.metrics,
    r_max=float(snakemake.params.r_max),
    n_bins=int(snakemake.params.n_bins),
    status=snakemake.input.get("status"),
)
