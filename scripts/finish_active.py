"""Snakemake entry point of ``finish_active``: an active method's model and metrics from its last round."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.train.active import finish_active

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
finish_active(
    snakemake.params.run,  # noqa: F821
    list(snakemake.input.rounds),  # noqa: F821
    snakemake.input.stop[0] if snakemake.input.stop else None,  # noqa: F821
    {k: snakemake.input[k] for k in ("model", "metrics", "epochs")},  # noqa: F821
    dict(snakemake.output.items()),  # noqa: F821
)
