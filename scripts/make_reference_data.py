"""Snakemake entry point: reference data (train/valid/test extended XYZ and meta.json).

output: train, valid, test, meta (and optionally ood); params: data (the `data` config); threads; log[0].
The ``__main__`` guard matters: COMB trajectories run in spawned worker processes, which import this
file again under another name.
"""

from gnnff_stability.data import make_reference_data
from gnnff_stability.logs import setup_script_logging

if __name__ == "__main__":
    setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
    make_reference_data(
        dict(snakemake.params.data),  # noqa: F821
        snakemake.output.train,  # noqa: F821
        snakemake.output.valid,  # noqa: F821
        snakemake.output.test,  # noqa: F821
        snakemake.output.meta,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
        ood=snakemake.output.get("ood"),  # noqa: F821
    )
